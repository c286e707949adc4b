"""Install, refresh, uninstall and revoke: every write to companies and installations.

Row locks live here and only here (``select_for_update``, one row, by primary key), so two workers
never refresh the same token at once. In the default SQLite set-up, ``transaction_mode=IMMEDIATE``
gives the same guarantee through SQLite's writer lock.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

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
    """The install could not complete; ``message`` is safe to show the user."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


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
        settings_row = CompanySettings.objects.select_for_update().filter(company=company).first()
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


def oauth_state_create(*, browser_key: str) -> str:
    """Issue a random single-use state bound to ``browser_key`` (a secret kept in a cookie)."""
    state = secrets.token_urlsafe(32)
    OAuthState.objects.create(state_hash=_digest(state), browser_hash=_digest(browser_key))
    return state


def oauth_state_consume(*, state: str, browser_key: str | None) -> None:
    """Accept a state this app issued to this browser, once, within its lifetime; else raise."""
    now = timezone.now()
    row = OAuthState.objects.filter(state_hash=_digest(state)).first()
    if row is None:
        raise InvalidState("unknown state")
    if row.used_at is not None:
        raise InvalidState("state already used")
    if row.created_at < now - timedelta(seconds=settings.PIPEDRIVE_OAUTH_STATE_TTL):
        raise InvalidState("state expired")
    if not browser_key or not secrets.compare_digest(row.browser_hash, _digest(browser_key)):
        raise InvalidState("state was issued to another browser")
    # Conditional update: of two concurrent callbacks with one state, exactly one wins.
    if not OAuthState.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now):
        raise InvalidState("state already used")


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

    installation = Installation.objects.select_for_update().filter(company=company, pipedrive_user_id=me.id).first()
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


def _refresh_margin() -> timedelta:
    return timedelta(seconds=settings.PIPEDRIVE_TOKEN_REFRESH_MARGIN)


def installation_token_refresh(
    *, installation_id: int, stale_access_token: str | None = None, force: bool = False
) -> Installation:
    """Refresh the installation's tokens if still needed, single-flight across threads and processes.

    Without ``force``, refreshes only when the access token expires within the margin, or (with
    ``stale_access_token``) when the stored token is still the one Pipedrive just rejected. The row
    lock makes every other caller wait and then re-read the fresh token instead of refreshing again.
    """
    failure: PipedriveError | None = None
    with transaction.atomic():
        installation = Installation.objects.select_for_update().select_related("company").get(pk=installation_id)
        if installation.status != Installation.Status.ACTIVE:
            raise _not_active(installation)
        if not force:
            if stale_access_token is not None:
                if installation.access_token != stale_access_token:
                    return installation  # another caller refreshed while we waited for the lock
            elif not installation.access_token_expires_within(_refresh_margin()):
                return installation
        now = timezone.now()
        try:
            grant = oauth_client().refresh(refresh_token=installation.refresh_token or "")
        except InvalidGrant:
            logger.warning("installation %s: refresh token rejected; needs re-auth", installation.pk)
            installation.status = Installation.Status.NEEDS_REAUTH
            installation.access_token = None
            installation.access_token_expires_at = None
            installation.last_refresh_error = "Pipedrive rejected the refresh token; the user must reinstall."
            installation.refresh_failures += 1
            installation.save()
            failure = NeedsReauth("the installation needs re-authorization (refresh token rejected)", status=400)
        except PipedriveError as exc:
            logger.warning("installation %s: token refresh failed: %s", installation.pk, exc)
            installation.last_refresh_error = str(exc)[:500]
            installation.refresh_failures += 1
            installation.save(update_fields=["last_refresh_error", "refresh_failures", "updated_at"])
            failure = TokenRefreshFailed(f"token refresh failed: {exc}", status=exc.status)
        else:
            _apply_grant(installation, grant, now=now)
            installation.save()
            if installation.company.api_domain != grant.api_domain:
                installation.company.api_domain = grant.api_domain
                installation.company.save(update_fields=["api_domain", "updated_at"])
            logger.info("installation %s: tokens refreshed", installation.pk)
    if failure is not None:
        raise failure
    return installation


def _not_active(installation: Installation) -> InstallationNotActive:
    if installation.status == Installation.Status.NEEDS_REAUTH:
        return NeedsReauth("the installation needs re-authorization", status=None)
    return InstallationNotActive("the installation is uninstalled", status=None)


class InstallationTokenSource:
    """Hands the Pipedrive client a fresh token for one installation, refreshing when needed."""

    def __init__(self, installation: Installation) -> None:
        self._installation_id = installation.pk
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
        if not self._token or self._expires_at is None or self._expires_at - timezone.now() < _refresh_margin():
            self._remember(installation_token_refresh(installation_id=self._installation_id))
        return self._token

    def refresh_after_unauthorized(self, stale_token: str) -> str:
        self._remember(
            installation_token_refresh(installation_id=self._installation_id, stale_access_token=stale_token)
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


def installation_client(*, installation: Installation, interactive: bool = False) -> PipedriveClient:
    """The one way to get an API client for an installation; it keeps the token fresh and stays
    within Pipedrive's limits. ``interactive`` (panels) may spend the budget's reserve."""
    return PipedriveClient(
        api_domain=installation.company.api_domain,
        token_source=InstallationTokenSource(installation),
        timeout=settings.PIPEDRIVE_HTTP_TIMEOUT,
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
        company = Company.objects.select_for_update().filter(pipedrive_company_id=pipedrive_company_id).first()
        if company is None:
            return UninstallResult(installation_found=False, company_purged=False)
        installation = (
            Installation.objects.select_for_update()
            .filter(company=company, pipedrive_user_id=pipedrive_user_id)
            .first()
        )
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
            return UninstallResult(installation_found=installation is not None, company_purged=False)
        _company_purge(company=company, source=source)
    return UninstallResult(installation_found=installation is not None, company_purged=True)


def _company_purge(*, company: Company, source: LifecycleEvent.Source) -> None:
    """Delete the company (cascading to all its app data), keeping a record without personal data."""
    LifecycleEvent.objects.create(
        kind=LifecycleEvent.Kind.COMPANY_UNINSTALLED, source=source, pipedrive_company_id=company.pipedrive_company_id
    )
    company.delete()
    logger.info("company %s uninstalled; its app data was purged", company.pipedrive_company_id)


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
            remaining = Company.objects.select_for_update().filter(pk=company.pk).first()
            if remaining is not None:
                _company_purge(company=remaining, source=LifecycleEvent.Source.VENDOR)
                result = UninstallResult(installation_found=result.installation_found, company_purged=True)
    return result
