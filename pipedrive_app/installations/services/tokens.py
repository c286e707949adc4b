"""Token lifecycle: refresh under a lease (single flight, no lock across the network), the token
source the API client uses, and the one way to get a client for an installation."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from pipedrive_app.core import locks
from pipedrive_app.pipedrive.client import PipedriveClient
from pipedrive_app.pipedrive.errors import InvalidGrant, PipedriveError
from pipedrive_app.pipedrive.oauth import PipedriveOAuth, TokenGrant
from pipedrive_app.pipedrive.ratelimit import Limits, RequestLimiter, local_store, redis_store

from ..models import Installation
from .errors import InstallationNotActive, NeedsReauth, TokenRefreshFailed, TokenRefreshPending
from .oauth import oauth_client

logger = logging.getLogger(__name__)

# --- Token lifecycle ----------------------------------------------------------------------------------
#
# Single flight without a lock across the network (core/locks.py, rule 3). A caller that finds the
# access token due claims the installation's refresh lease (one UPDATE, committed at once), calls the
# token endpoint outside any transaction, then stores the outcome in a short transaction that locks
# Company then Installation (the lock order) and releases the lease. Meanwhile everyone else keeps
# using the access token they have while it is still valid, or waits a bounded time for the
# holder's outcome. A failed or timed-out call is remembered for a few seconds
# (PIPEDRIVE_TOKEN_FAILURE_MEMORY_SECONDS), so N waiters cause one call, not N.

# An access token with less than this left is not handed out, even while a refresh is pending.
USABLE_FOR = timedelta(seconds=30)
_POLL_SECONDS = 0.1


def _refresh_margin() -> timedelta:
    return timedelta(seconds=settings.PIPEDRIVE_TOKEN_REFRESH_MARGIN)


def _lease_seconds() -> float:
    """Longer than one token call can last (connect plus read timeout), so a lease expires by
    itself only when its holder died."""
    return 2 * float(settings.PIPEDRIVE_HTTP_TIMEOUT) + 5


def _usable(installation: Installation, stale_access_token: str | None) -> bool:
    if not installation.access_token or installation.access_token_expires_at is None:
        return False
    if stale_access_token is not None and installation.access_token == stale_access_token:
        return False
    return installation.access_token_expires_at - timezone.now() > USABLE_FOR


def _refresh_needed(
    installation: Installation, *, stale_access_token: str | None, force: bool, since: datetime
) -> bool:
    if force:  # done, if someone else refreshed after we were asked
        return installation.last_refresh_at is None or installation.last_refresh_at < since
    if stale_access_token is not None:
        return installation.access_token == stale_access_token
    return installation.access_token_expires_within(_refresh_margin())


def _active_installation(installation_id: int) -> Installation:
    installation = Installation.objects.select_related("company").filter(pk=installation_id).first()
    if installation is None:
        raise InstallationNotActive("the installation no longer exists", status=None)
    if installation.status != Installation.Status.ACTIVE:
        raise _not_active(installation)
    return installation


def _lease_scope(installation_id: int) -> QuerySet[Installation]:
    return Installation.objects.filter(pk=installation_id)


def installation_token_refresh(  # noqa: C901  (the single-flight rules in one place: wait or claim, re-check)
    *,
    installation_id: int,
    stale_access_token: str | None = None,
    force: bool = False,
    wait_seconds: float | None = None,
) -> Installation:
    """Refresh the installation's tokens if still needed, single-flight across threads and processes.

    Without ``force``, refreshes only when the access token expires within the margin, or (with
    ``stale_access_token``) when the stored token is still the one Pipedrive just rejected.

    ``wait_seconds`` is the caller's time budget (a panel's): past it, ``TokenRefreshPending`` is
    raised (unless the stored token is still usable), and a token call this caller started goes on
    on a helper thread, which stores its outcome. Without it the caller waits as long as a lease can
    last. No transaction or row lock is open while the token endpoint is called.
    """
    since = timezone.now()
    budget = _lease_seconds() if wait_seconds is None else max(0.0, wait_seconds)
    deadline = time.monotonic() + budget
    while True:
        installation = _active_installation(installation_id)
        if not _refresh_needed(installation, stale_access_token=stale_access_token, force=force, since=since):
            return installation
        usable = _usable(installation, stale_access_token)
        blocked = installation.refresh_blocked_until
        if not force and blocked is not None and blocked > timezone.now():
            if usable:
                return installation
            raise TokenRefreshFailed(
                "the token endpoint failed moments ago; not called again yet "
                f"({installation.last_refresh_error[:200] or 'no detail'})",
                status=None,
            )
        lease_id = locks.lease_claim(
            _lease_scope(installation_id).filter(status=Installation.Status.ACTIVE),
            until_field="refresh_lease_until",
            owner_field="refresh_lease_id",
            seconds=_lease_seconds(),
        )
        if lease_id is not None:
            break
        if usable and not force:
            return installation  # a refresh is under way elsewhere; this token is still good
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TokenRefreshPending("a token refresh is under way and did not finish in time", status=None)
        time.sleep(min(_POLL_SECONDS, remaining))

    # This caller holds the lease. Look again: a previous holder may have stored a fresh token just
    # before the claim.
    holder = Installation.objects.select_related("company").filter(pk=installation_id).first()
    if (
        holder is None
        or holder.status != Installation.Status.ACTIVE
        or not _refresh_needed(holder, stale_access_token=stale_access_token, force=force, since=since)
    ):
        _lease_release(installation_id, lease_id)
        return _active_installation(installation_id)
    job = _RefreshJob(
        installation_id=installation_id,
        company_id=holder.company_id,
        lease_id=lease_id,
        refresh_token=holder.refresh_token or "",
    )
    locks.outside_transaction("token refresh")
    if wait_seconds is None:
        stored, failure = job.finish(job.call(oauth_client()))
    else:
        try:
            stored, failure = job.run_within(oauth_client(), deadline=deadline)
        except TokenRefreshPending:
            current = Installation.objects.select_related("company").filter(pk=installation_id).first()
            if not force and current is not None and current.is_active and _usable(current, stale_access_token):
                return current
            raise
    if failure is not None:
        if not force and isinstance(failure, TokenRefreshFailed) and _usable(stored, stale_access_token):
            return stored  # the endpoint failed, but the token we have is still good for a while
        raise failure
    return stored


def _lease_release(installation_id: int, lease_id: str) -> None:
    locks.lease_release(
        _lease_scope(installation_id),
        lease_id=lease_id,
        until_field="refresh_lease_until",
        owner_field="refresh_lease_id",
    )


class _Handoff:
    """Between a caller with a time budget and the helper thread making its token call."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.waiting = True
        self.outcome: TokenGrant | PipedriveError | None = None


@dataclass(frozen=True)
class _RefreshJob:
    installation_id: int
    company_id: int
    lease_id: str
    refresh_token: str

    def call(self, oauth: PipedriveOAuth) -> TokenGrant | PipedriveError:
        try:
            return oauth.refresh(refresh_token=self.refresh_token)
        except PipedriveError as exc:
            return exc

    def run_within(self, oauth: PipedriveOAuth, *, deadline: float) -> tuple[Installation, PipedriveError | None]:
        """The token call on a helper thread; the caller waits until ``deadline`` (monotonic)."""
        handoff = _Handoff()

        def helper() -> None:
            outcome = self.call(oauth)
            with handoff.lock:
                if handoff.waiting:
                    handoff.outcome = outcome
                    handoff.done.set()
                    return
            try:  # the caller has answered without us: store the outcome for the next one
                self.finish(outcome)
            except PipedriveError as exc:
                logger.info("installation %s: background token refresh ended: %s", self.installation_id, exc)
            except Exception:
                logger.exception("installation %s: background token refresh not stored", self.installation_id)
            finally:
                connections.close_all()  # this helper thread's own connections

        threading.Thread(target=helper, name=f"token-refresh-{self.installation_id}", daemon=True).start()
        handoff.done.wait(timeout=max(0.0, deadline - time.monotonic()))
        with handoff.lock:
            outcome = handoff.outcome
            if outcome is None:
                handoff.waiting = False
        if outcome is None:
            logger.warning(
                "installation %s: token endpoint slower than the caller's budget; refresh continues in the background",
                self.installation_id,
            )
            raise TokenRefreshPending("the token endpoint did not answer within the time budget", status=None)
        return self.finish(outcome)

    def finish(self, outcome: TokenGrant | PipedriveError) -> tuple[Installation, PipedriveError | None]:
        """Store the outcome in one short transaction (Company, then Installation) and free the lease."""
        now = timezone.now()
        failure: PipedriveError | None = None
        with transaction.atomic():
            company = locks.lock_company(pk=self.company_id)
            installation = locks.lock_installation(pk=self.installation_id)
            if company is None or installation is None:
                raise InstallationNotActive("the installation was uninstalled during the refresh", status=None)
            installation.company = company
            if installation.refresh_lease_id == self.lease_id:
                installation.refresh_lease_until = None
                installation.refresh_lease_id = ""
            if installation.status != Installation.Status.ACTIVE:
                # Uninstalled (or re-authorization needed) while we called: never bring tokens back.
                installation.save(update_fields=["refresh_lease_until", "refresh_lease_id", "updated_at"])
                failure = _not_active(installation)
            elif installation.refresh_token != self.refresh_token:
                # Someone stored a newer grant meanwhile (our lease had run out): theirs stands.
                installation.save(update_fields=["refresh_lease_until", "refresh_lease_id", "updated_at"])
            elif isinstance(outcome, InvalidGrant):
                logger.warning("installation %s: refresh token rejected; needs re-auth", installation.pk)
                installation.status = Installation.Status.NEEDS_REAUTH
                installation.access_token = None
                installation.access_token_expires_at = None
                installation.last_refresh_error = "Pipedrive rejected the refresh token; the user must reinstall."
                installation.refresh_failures += 1
                installation.save()
                failure = NeedsReauth("the installation needs re-authorization (refresh token rejected)", status=400)
            elif isinstance(outcome, PipedriveError):
                logger.warning("installation %s: token refresh failed: %s", installation.pk, outcome)
                installation.last_refresh_error = str(outcome)[:500]
                installation.refresh_failures += 1
                memory = float(settings.PIPEDRIVE_TOKEN_FAILURE_MEMORY_SECONDS)
                installation.refresh_blocked_until = now + timedelta(seconds=memory) if memory > 0 else None
                installation.save()
                failure = TokenRefreshFailed(f"token refresh failed: {outcome}", status=outcome.status)
            else:
                apply_grant(installation, outcome, now=now)
                installation.refresh_blocked_until = None
                installation.save()
                if company.api_domain != outcome.api_domain:
                    company.api_domain = outcome.api_domain
                    company.save(update_fields=["api_domain", "updated_at"])
                logger.info("installation %s: tokens refreshed", installation.pk)
        return installation, failure


def _not_active(installation: Installation) -> InstallationNotActive:
    if installation.status == Installation.Status.NEEDS_REAUTH:
        return NeedsReauth("the installation needs re-authorization", status=None)
    return InstallationNotActive("the installation is uninstalled", status=None)


class InstallationTokenSource:
    """Hands the Pipedrive client a fresh token for one installation, refreshing when needed."""

    def __init__(self, installation: Installation, *, wait_seconds: float | None = None) -> None:
        self._installation_id = installation.pk
        self._wait_seconds = wait_seconds  # a time budget for refreshes (panels); None: wait for the outcome
        self._token = installation.access_token or ""
        self._expires_at = installation.access_token_expires_at
        self._status = installation.status

    def access_token(self) -> str:
        if self._status != Installation.Status.ACTIVE:
            raise (
                NeedsReauth("the installation needs re-authorization")
                if (self._status == Installation.Status.NEEDS_REAUTH)
                else InstallationNotActive("the installation is uninstalled")
            )
        locks.outside_transaction("Pipedrive API call")
        if not self._token or self._expires_at is None or self._expires_at - timezone.now() < _refresh_margin():
            self._remember(
                installation_token_refresh(installation_id=self._installation_id, wait_seconds=self._wait_seconds)
            )
        return self._token

    def refresh_after_unauthorized(self, stale_token: str) -> str:
        self._remember(
            installation_token_refresh(
                installation_id=self._installation_id, stale_access_token=stale_token, wait_seconds=self._wait_seconds
            )
        )
        return self._token

    def _remember(self, installation: Installation) -> None:
        self._token = installation.access_token or ""
        self._expires_at = installation.access_token_expires_at
        self._status = installation.status


def installation_rate_limiter(*, installation: Installation, interactive: bool = False) -> RequestLimiter:
    """Burst limit per installation token and daily budget per company, in Redis when configured
    (``RATE_LIMIT_REDIS_URL``, by default ``CACHE_URL`` when that is Redis) so all processes share it."""
    company = installation.company
    scope = hashlib.sha256(f"{company.api_domain}|{company.pipedrive_company_id}".encode()).hexdigest()[:24]
    url = settings.RATE_LIMIT_REDIS_URL
    return RequestLimiter(
        redis_store(url) if url else local_store(),
        token_key=f"{scope}:{installation.pipedrive_user_id}",
        company_key=scope,
        limits=Limits(
            burst_limit=settings.PIPEDRIVE_BURST_LIMIT,
            burst_window=settings.PIPEDRIVE_BURST_WINDOW_SECONDS,
            daily_budget=settings.PIPEDRIVE_DAILY_TOKEN_BUDGET,
            reserve=settings.PIPEDRIVE_DAILY_TOKEN_RESERVE,
        ),
        interactive=interactive,
    )


def installation_client(
    *,
    installation: Installation,
    interactive: bool = False,
    token_wait_seconds: float | None = None,
    timeout: float | None = None,
) -> PipedriveClient:
    """The one way to get an API client for an installation; it keeps the token fresh and stays
    within Pipedrive's limits. ``interactive`` (panels) may spend the budget's reserve;
    ``token_wait_seconds`` and ``timeout`` bound a caller's wait for a token refresh and each call."""
    return PipedriveClient(
        api_domain=installation.company.api_domain,
        token_source=InstallationTokenSource(installation, wait_seconds=token_wait_seconds),
        timeout=settings.PIPEDRIVE_HTTP_TIMEOUT if timeout is None else timeout,
        rate_limiter=installation_rate_limiter(installation=installation, interactive=interactive),
    )


def installations_due_for_idle_refresh(*, now: datetime | None = None) -> list[int]:
    cutoff = (now or timezone.now()) - timedelta(days=settings.PIPEDRIVE_REFRESH_IDLE_DAYS)
    return list(
        Installation.objects.filter(status=Installation.Status.ACTIVE, refresh_token_used_at__lt=cutoff)
        .order_by("refresh_token_used_at")
        .values_list("pk", flat=True)
    )


def apply_grant(installation: Installation, grant: TokenGrant, *, now: datetime) -> None:
    installation.access_token = grant.access_token
    installation.refresh_token = grant.refresh_token
    installation.access_token_expires_at = now + timedelta(seconds=grant.expires_in)
    installation.refresh_token_used_at = now
    installation.last_refresh_at = now
    installation.last_refresh_error = ""
    installation.refresh_failures = 0
    if grant.scopes:
        installation.scopes = list(grant.scopes)
