"""Uninstall: one user's (Pipedrive's notice or the vendor's revocation), the company's purge with
the last one, and the purge of what the caches hold for it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

from django.db import transaction
from django.utils import timezone

from pipedrive_app.core import locks
from pipedrive_app.core.cache_purge import cache_delete_prefixes

from .. import signals
from ..models import Company, Installation, LifecycleEvent
from .oauth import oauth_client

logger = logging.getLogger(__name__)


def company_caches_purge(*, company_pk: int, pipedrive_company_id: int, pipedrive_user_id: int | None = None) -> int:
    """Delete what the caches hold for the company (or, with ``pipedrive_user_id``, for that user)."""
    answers = signals.company_cache_prefixes.send(
        sender=Company,
        company_pk=company_pk,
        pipedrive_company_id=pipedrive_company_id,
        pipedrive_user_id=pipedrive_user_id,
    )
    # Each receiver returns a list of prefixes (django-stubs types a receiver's answer as a string).
    prefixes = [prefix for _receiver, provided in answers for prefix in cast("list[str]", provided)]
    try:
        deleted = cache_delete_prefixes(prefixes)
    except Exception:  # a cache outage must not fail an uninstall; the entries expire by themselves
        logger.exception("company %s: cached data not purged", pipedrive_company_id)
        return 0
    logger.info("company %s: %d cached entr(ies) purged", pipedrive_company_id, deleted)
    return deleted


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
            transaction.on_commit(
                lambda: signals.installation_uninstalled.send(sender=Installation, company_id=company_pk)
            )
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
    signals.vendor_uninstall_starting.send(sender=Installation, installation=installation)
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
