"""Install: exchange the authorization code, identify the user, store company and installation."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pipedrive_app.core import locks
from pipedrive_app.pipedrive.client import PipedriveClient
from pipedrive_app.pipedrive.errors import ApiDomainNotAllowed, InvalidGrant, OAuthError, PipedriveError
from pipedrive_app.pipedrive.oauth import TokenGrant
from pipedrive_app.pipedrive.types import CurrentUser

from .. import signals
from ..models import Company, Installation, LifecycleEvent
from .company_settings import company_settings_get_or_create
from .errors import InstallError
from .oauth import oauth_client
from .tokens import apply_grant

logger = logging.getLogger(__name__)


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
    apply_grant(installation, grant, now=now)
    installation.save()
    LifecycleEvent.objects.create(
        kind=kind,
        source=LifecycleEvent.Source.OAUTH,
        pipedrive_company_id=company.pipedrive_company_id,
        pipedrive_user_id=me.id,
    )
    return installation


def installation_activated(*, installation_id: int) -> None:
    """The one place where work starts after an install or reinstall has committed: sends
    ``signals.installation_activated`` (webhook provisioning listens)."""
    logger.info("installation %s activated", installation_id)
    signals.installation_activated.send(sender=Installation, installation_id=installation_id)
