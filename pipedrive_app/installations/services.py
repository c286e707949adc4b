"""Install, refresh, uninstall and revoke: every write to companies and installations.

Row locks and the refresh lease come from ``core/locks.py`` and follow its lock order (Company,
then company-scoped rows, then Installation). No transaction is open while Pipedrive is called:
a token refresh claims a lease, calls the token endpoint, then stores the outcome in a short
transaction. In the default SQLite set-up, ``transaction_mode=IMMEDIATE`` serialises writers.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from pipedrive_app.core import locks
from pipedrive_app.core.cache_purge import cache_delete_prefixes
from pipedrive_app.pipedrive.client import PipedriveClient
from pipedrive_app.pipedrive.errors import (
    ApiDomainNotAllowed,
    InvalidGrant,
    OAuthError,
    PipedriveError,
    PipedriveUnavailable,
)
from pipedrive_app.pipedrive.oauth import PipedriveOAuth, TokenGrant
from pipedrive_app.pipedrive.ratelimit import Limits, RequestLimiter, local_store, redis_store
from pipedrive_app.pipedrive.types import CurrentUser

from .models import Company, CompanySettings, Installation, LifecycleEvent, OAuthState

logger = logging.getLogger(__name__)


# --- Errors the views and tasks act on ------------------------------------------------------------


class InstallError(Exception):
    """The install could not complete; ``message`` is safe to show the user.

    ``status`` is the HTTP status the callback answers with: 400 when the request itself was at fault
    (a code Pipedrive does not accept), 502 when Pipedrive failed or answered something unusable.
    """

    def __init__(self, message: str, *, retryable: bool = True, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status


class InvalidState(Exception):
    """The callback's ``state`` is forged, replayed, expired or from another browser."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InstallationNotActive(PipedriveError):
    """The installation is uninstalled or needs re-authorization; no API call can be made."""


class NeedsReauth(InstallationNotActive):
    """Pipedrive rejected the refresh token: the user must install the app again."""


class TokenRefreshFailed(PipedriveUnavailable):
    """The refresh could not be done now (network, 5xx); stored tokens are untouched."""


# --- Configuration ----------------------------------------------------------------------------------


def oauth_client() -> PipedriveOAuth:
    return PipedriveOAuth(
        oauth_url=settings.PIPEDRIVE_OAUTH_URL,
        client_id=settings.PIPEDRIVE_CLIENT_ID,
        client_secret=settings.PIPEDRIVE_CLIENT_SECRET,
        redirect_uri=settings.PIPEDRIVE_REDIRECT_URI,
        allowed_api_domains=settings.PIPEDRIVE_ALLOWED_API_DOMAINS,
        timeout=settings.PIPEDRIVE_HTTP_TIMEOUT,
    )


# Callables run (on commit) when an installation becomes active: webhook provisioning starts here.
# Apps that depend on installations register from their AppConfig.ready(); installations itself
# imports none of them, keeping the dependency arrows one way.
_activation_hooks: list[Callable[[int], None]] = []


def register_installation_activated_hook(hook: Callable[[int], None]) -> None:
    if hook not in _activation_hooks:
        _activation_hooks.append(hook)


def installation_activated(*, installation_id: int) -> None:
    """The one place where work starts after an install or reinstall has committed."""
    logger.info("installation %s activated", installation_id)
    for hook in list(_activation_hooks):
        hook(installation_id)


# Callables run (on commit) after a company's settings change: webhook reconciliation hooks in here.
_settings_changed_hooks: list[Callable[[int], None]] = []


def register_company_settings_changed_hook(hook: Callable[[int], None]) -> None:
    if hook not in _settings_changed_hooks:
        _settings_changed_hooks.append(hook)


# Callables run at the start of a vendor-side uninstall, while the installation's tokens still work:
# webhook subscriptions are deleted at Pipedrive here. A hook must not raise.
_before_vendor_uninstall_hooks: list[Callable[[Installation], None]] = []


def register_before_vendor_uninstall_hook(hook: Callable[[Installation], None]) -> None:
    if hook not in _before_vendor_uninstall_hooks:
        _before_vendor_uninstall_hooks.append(hook)


# Callables run (on commit) with the company's pk after one user's installation is uninstalled while
# the company keeps others: webhook ownership moves to another admin here.
_installation_uninstalled_hooks: list[Callable[[int], None]] = []


def register_installation_uninstalled_hook(hook: Callable[[int], None]) -> None:
    if hook not in _installation_uninstalled_hooks:
        _installation_uninstalled_hooks.append(hook)


# Callables naming the cache key prefixes that hold a company's data (or, with a user id, one
# user's): ``(company_pk, pipedrive_company_id, pipedrive_user_id or None) -> prefixes``. Apps that
# cache Pipedrive data register from AppConfig.ready(); uninstall deletes those entries after commit.
_cache_prefix_providers: list[Callable[[int, int, int | None], list[str]]] = []


def register_company_cache_prefixes(provider: Callable[[int, int, int | None], list[str]]) -> None:
    if provider not in _cache_prefix_providers:
        _cache_prefix_providers.append(provider)


def company_caches_purge(*, company_pk: int, pipedrive_company_id: int, pipedrive_user_id: int | None = None) -> int:
    """Delete what the caches hold for the company (or, with ``pipedrive_user_id``, for that user)."""
    prefixes = [
        prefix
        for provider in list(_cache_prefix_providers)
        for prefix in provider(company_pk, pipedrive_company_id, pipedrive_user_id)
    ]
    try:
        deleted = cache_delete_prefixes(prefixes)
    except Exception:  # a cache outage must not fail an uninstall; the entries expire by themselves
        logger.exception("company %s: cached data not purged", pipedrive_company_id)
        return 0
    logger.info("company %s: %d cached entr(ies) purged", pipedrive_company_id, deleted)
    return deleted


MIN_RETENTION_DAYS, MAX_RETENTION_DAYS = 1, 3650


class InvalidSettings(ValueError):
    """The submitted settings are not acceptable; the message says why and is safe to show."""


def company_settings_get_or_create(*, company: Company) -> CompanySettings:
    settings_row, _ = CompanySettings.objects.get_or_create(
        company=company, defaults={"tracked_entities": list(CompanySettings.DEFAULT_TRACKED_ENTITIES)}
    )
    return settings_row


def company_settings_update(
    *, company: Company, tracked_entities: list[str], history_retention_days: int, updated_by: Installation
) -> CompanySettings:
    """Save an admin's choices; the company's webhook subscriptions are reconciled after commit."""
    if not updated_by.is_admin or updated_by.company_id != company.pk or not updated_by.is_active:
        raise PermissionError("only an active admin of this company can change its settings")
    unknown = sorted(set(tracked_entities) - set(CompanySettings.TRACKABLE_ENTITIES))
    if unknown:
        raise InvalidSettings(f"unknown entities: {', '.join(unknown)}")
    if not MIN_RETENTION_DAYS <= history_retention_days <= MAX_RETENTION_DAYS:
        raise InvalidSettings(f"history must be kept between {MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS} days")
    ordered = [entity for entity in CompanySettings.TRACKABLE_ENTITIES if entity in set(tracked_entities)]
    with transaction.atomic():
        locks.lock_company(pk=company.pk)  # lock order: Company, then its settings row
        settings_row = locks.lock_company_row("installations.CompanySettings", company_id=company.pk)
        if settings_row is None:
            settings_row = CompanySettings(company=company)
        settings_row.tracked_entities = ordered
        settings_row.history_retention_days = history_retention_days
        settings_row.updated_by_user_id = updated_by.pipedrive_user_id
        settings_row.save()
        company_id = company.pk
        transaction.on_commit(lambda: [hook(company_id) for hook in list(_settings_changed_hooks)])
    return settings_row


# --- OAuth state ------------------------------------------------------------------------------------


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# The state is signed and carries its own issue time, so GET /oauth/install writes nothing: anyone
# may ask for states without filling the database. A row is written only when a state is used at
# the callback (after its signature, age and browser binding checked out), to refuse a replay.
_STATE_SALT = "installations.oauth-state"


def _state_signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_STATE_SALT)


def oauth_state_create(*, browser_key: str) -> str:
    """Issue a random, signed, time-limited, single-use state bound to ``browser_key`` (a secret
    kept in a cookie). Nothing is stored."""
    return _state_signer().sign(f"{secrets.token_urlsafe(16)}.{_digest(browser_key)[:32]}")


def oauth_state_consume(*, state: str, browser_key: str | None) -> None:
    """Accept a state this app issued to this browser, once, within its lifetime; else raise."""
    try:
        value = _state_signer().unsign(state, max_age=settings.PIPEDRIVE_OAUTH_STATE_TTL)
    except signing.SignatureExpired:
        raise InvalidState("state expired") from None
    except signing.BadSignature:
        raise InvalidState("unknown state") from None
    _, _, bound = value.partition(".")
    if not browser_key or not secrets.compare_digest(bound, _digest(browser_key)[:32]):
        raise InvalidState("state was issued to another browser")
    # Single use: the unique hash makes the second of two callbacks with one state fail.
    try:
        with transaction.atomic():
            OAuthState.objects.create(
                state_hash=_digest(state), browser_hash=_digest(browser_key), used_at=timezone.now()
            )
    except IntegrityError:
        raise InvalidState("state already used") from None


def oauth_states_purge_expired() -> int:
    cutoff = timezone.now() - timedelta(seconds=settings.PIPEDRIVE_OAUTH_STATE_TTL) - timedelta(days=1)
    deleted, _ = OAuthState.objects.filter(created_at__lt=cutoff).delete()
    return deleted


# --- Install ----------------------------------------------------------------------------------------


class _FixedTokenSource:
    """Token source for the one call made during install, before anything is stored."""

    def __init__(self, token: str) -> None:
        self._token = token

    def access_token(self) -> str:
        return self._token

    def refresh_after_unauthorized(self, stale_token: str) -> str:
        from pipedrive_app.pipedrive.errors import PipedriveAuthError

        raise PipedriveAuthError("a freshly issued access token was rejected", status=401)


def installation_create_from_code(*, code: str) -> Installation:
    """Exchange ``code``, identify the user, then store company and installation in one transaction."""
    oauth = oauth_client()
    try:
        grant = oauth.exchange_code(code=code)
    except InvalidGrant:
        logger.info("install: authorization code rejected by the token endpoint")
        raise InstallError(
            "Pipedrive did not accept the authorization code (it may have expired or been used already). "
            "Please start the installation again.",
            status=400,
        ) from None
    except ApiDomainNotAllowed as exc:
        logger.warning("install: %s", exc)
        raise InstallError(
            "Pipedrive answered with an account address this app is not configured to trust.", retryable=False
        ) from None
    except OAuthError as exc:
        logger.error("install: token endpoint refused the exchange: %s", exc)
        raise InstallError("Pipedrive refused the installation request. Please try again.") from None
    except PipedriveError as exc:
        logger.error("install: token endpoint failed: %s", exc)
        raise InstallError("Pipedrive could not be reached to complete the installation. Please try again.") from None

    client = PipedriveClient(
        api_domain=grant.api_domain,
        token_source=_FixedTokenSource(grant.access_token),
        timeout=settings.PIPEDRIVE_HTTP_TIMEOUT,
    )
    try:
        me = client.get_current_user()
    except PipedriveError as exc:
        logger.error("install: /users/me failed: %s", exc)
        raise InstallError("Pipedrive could not tell us who you are. Please try again.") from None
    finally:
        client.close()
    if not me.id or not me.company_id:
        logger.error("install: /users/me answered without user or company id")
        raise InstallError("Pipedrive could not tell us who you are. Please try again.")

    installation = _installation_store(grant=grant, me=me)
    transaction.on_commit(lambda: installation_activated(installation_id=installation.pk))
    return installation


@transaction.atomic
def _installation_store(*, grant: TokenGrant, me: CurrentUser) -> Installation:
    now = timezone.now()
    company, created = Company.objects.select_for_update().get_or_create(
        pipedrive_company_id=me.company_id,
        defaults={"name": me.company_name or "", "domain": me.company_domain or "", "api_domain": grant.api_domain},
    )
    if not created:
        company.name = me.company_name or company.name
        company.domain = me.company_domain or company.domain
        company.api_domain = grant.api_domain
        company.save(update_fields=["name", "domain", "api_domain", "updated_at"])
    company_settings_get_or_create(company=company)

    installation = locks.lock_installation_of_user(company_id=company.pk, pipedrive_user_id=me.id)
    kind = LifecycleEvent.Kind.REINSTALLED if installation is not None else LifecycleEvent.Kind.INSTALLED
    if installation is None:
        installation = Installation(company=company, pipedrive_user_id=me.id)
    installation.name = me.name or ""
    installation.email = me.email or ""
    installation.is_admin = bool(me.is_admin)
    installation.locale = me.locale or ""
    installation.timezone_name = me.timezone_name or ""
    installation.status = Installation.Status.ACTIVE
    installation.installed_at = now
    installation.uninstalled_at = None
    _apply_grant(installation, grant, now=now)
    installation.save()
    LifecycleEvent.objects.create(
        kind=kind,
        source=LifecycleEvent.Source.OAUTH,
        pipedrive_company_id=company.pipedrive_company_id,
        pipedrive_user_id=me.id,
    )
    return installation


def _apply_grant(installation: Installation, grant: TokenGrant, *, now: datetime) -> None:
    installation.access_token = grant.access_token
    installation.refresh_token = grant.refresh_token
    installation.access_token_expires_at = now + timedelta(seconds=grant.expires_in)
    installation.refresh_token_used_at = now
    installation.last_refresh_at = now
    installation.last_refresh_error = ""
    installation.refresh_failures = 0
    if grant.scopes:
        installation.scopes = list(grant.scopes)


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


class TokenRefreshPending(TokenRefreshFailed):
    """The refresh did not finish within the caller's time budget; it goes on without the caller."""


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
                _apply_grant(installation, outcome, now=now)
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


# --- Uninstall ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UninstallResult:
    installation_found: bool
    company_purged: bool


def installation_uninstall(
    *, pipedrive_company_id: int, pipedrive_user_id: int, source: LifecycleEvent.Source
) -> UninstallResult:
    """Mark one user's installation uninstalled and erase its tokens; purge the company with the last.

    Idempotent: an unknown company or an installation already uninstalled changes nothing. The
    company row's deletion cascades to every row of app data that belongs to it; a LifecycleEvent
    without personal data records that it happened.
    """
    with transaction.atomic():
        company = locks.lock_company(pipedrive_company_id=pipedrive_company_id)
        if company is None:
            return UninstallResult(installation_found=False, company_purged=False)
        installation = locks.lock_installation_of_user(company_id=company.pk, pipedrive_user_id=pipedrive_user_id)
        if installation is not None and installation.status != Installation.Status.UNINSTALLED:
            installation.status = Installation.Status.UNINSTALLED
            installation.access_token = None
            installation.refresh_token = None
            installation.access_token_expires_at = None
            installation.uninstalled_at = timezone.now()
            installation.save()
            LifecycleEvent.objects.create(
                kind=LifecycleEvent.Kind.USER_UNINSTALLED,
                source=source,
                pipedrive_company_id=pipedrive_company_id,
                pipedrive_user_id=pipedrive_user_id,
            )
        remaining = company.installations.exclude(status=Installation.Status.UNINSTALLED).exists()
        if remaining:
            company_pk = company.pk
            transaction.on_commit(lambda: [hook(company_pk) for hook in list(_installation_uninstalled_hooks)])
            transaction.on_commit(
                lambda: company_caches_purge(
                    company_pk=company_pk,
                    pipedrive_company_id=pipedrive_company_id,
                    pipedrive_user_id=pipedrive_user_id,
                )
            )
            return UninstallResult(installation_found=installation is not None, company_purged=False)
        _company_purge(company=company, source=source)
    return UninstallResult(installation_found=installation is not None, company_purged=True)


def _company_purge(*, company: Company, source: LifecycleEvent.Source) -> None:
    """Delete the company (cascading to all its app data), keeping a record without personal data."""
    LifecycleEvent.objects.create(
        kind=LifecycleEvent.Kind.COMPANY_UNINSTALLED, source=source, pipedrive_company_id=company.pipedrive_company_id
    )
    company_pk, pipedrive_company_id = company.pk, company.pipedrive_company_id
    company.delete()
    # Cached panels and names (deal titles, people) go too, once the deletion has committed.
    transaction.on_commit(
        lambda: company_caches_purge(company_pk=company_pk, pipedrive_company_id=pipedrive_company_id)
    )
    logger.info("company %s uninstalled; its app data was purged", pipedrive_company_id)


def installation_uninstall_by_vendor(*, installation: Installation) -> UninstallResult:
    """Revoke the user's refresh token at Pipedrive (which uninstalls the app for them), then clean up.

    If revocation fails, nothing is erased locally so the operator can try again.
    """
    installation.refresh_from_db()
    for hook in list(_before_vendor_uninstall_hooks):
        hook(installation)
    if installation.refresh_token:
        oauth_client().revoke(token=installation.refresh_token, token_type_hint="refresh_token")
    return installation_uninstall(
        pipedrive_company_id=installation.company.pipedrive_company_id,
        pipedrive_user_id=installation.pipedrive_user_id,
        source=LifecycleEvent.Source.VENDOR,
    )


def company_uninstall_by_vendor(*, company: Company) -> UninstallResult:
    """Vendor-side uninstall of every installation of a company; the last one purges its data."""
    result = UninstallResult(installation_found=False, company_purged=False)
    for installation in list(company.installations.exclude(status=Installation.Status.UNINSTALLED).order_by("pk")):
        result = installation_uninstall_by_vendor(installation=installation)
    if not result.company_purged:
        # Only uninstalled rows were left (or were left by the time we got here): purge now.
        with transaction.atomic():
            remaining = locks.lock_company(pk=company.pk)
            if remaining is not None:
                _company_purge(company=remaining, source=LifecycleEvent.Source.VENDOR)
                result = UninstallResult(installation_found=result.installation_found, company_purged=True)
    return result
