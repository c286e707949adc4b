"""Reads of companies and installations."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch

from .models import Company, Installation


def installation_get(*, installation_id: int) -> Installation | None:
    return Installation.objects.select_related("company").filter(pk=installation_id).first()


# --- which installation acts for a company ---------------------------------------------------------
#
# Background work (webhook subscriptions, record names, field metadata, a shared JSON panel's
# non-installed viewers) calls Pipedrive with one of the company's installations' tokens. One policy,
# here: an active installation; the one the caller already uses (``preferred_id``, e.g. the webhook
# owner) first, then admins (they see the most of the company's records), then the oldest.


def company_acting_installations(
    *, company_id: int, preferred_id: int | None = None, admins_only: bool = False, scope: str | None = None
) -> list[Installation]:
    """The company's active installations in the order they should act; ``admins_only`` and
    ``scope`` (an OAuth scope the token must carry) narrow the list."""
    rows = Installation.objects.select_related("company").filter(
        company_id=company_id, status=Installation.Status.ACTIVE
    )
    if admins_only:
        rows = rows.filter(is_admin=True)
    candidates = [row for row in rows if scope is None or row.has_scope(scope)]
    candidates.sort(key=lambda row: (row.pk != preferred_id, not row.is_admin, row.pk))
    return candidates


def company_hears_changes(*, company_id: int) -> bool:
    """Whether Pipedrive can tell this app about the company's changes: webhooks need an active admin
    installation with the ``admin`` scope. Until an admin installs, no change is recorded, and
    nothing tells a cached panel that its record changed."""
    # The same rule as ``company_acting_installations(admins_only=True, scope="admin")``, read without
    # loading (and decrypting) the installations' tokens: panels ask on every view.
    scopes = Installation.objects.filter(
        company_id=company_id, status=Installation.Status.ACTIVE, is_admin=True
    ).values_list("scopes", flat=True)
    return any("admin" in (granted or []) for granted in scopes)


def company_acting_installation(*, company_id: int, preferred_id: int | None = None) -> Installation | None:
    """The installation that acts for the company in the background, or None if none is active."""
    acting = company_acting_installations(company_id=company_id, preferred_id=preferred_id)
    return acting[0] if acting else None


@dataclass(frozen=True)
class InstalledUser:
    """Who installed, as the development landing page lists them (never a token)."""

    pipedrive_user_id: int
    name: str
    is_admin: bool
    status: str
    status_label: str


@dataclass(frozen=True)
class CompanyInstalls:
    pipedrive_company_id: int
    name: str
    domain: str
    pipedrive_url: str
    installations: tuple[InstalledUser, ...]


# Columns the overview reads: the encrypted token columns are never loaded, let alone decrypted.
_INSTALLATION_COLUMNS = ("id", "company_id", "pipedrive_user_id", "name", "is_admin", "status")


def installations_overview(*, limit: int = 50) -> list[CompanyInstalls]:
    """Companies and their installations, by name: for the development landing page only.

    A company exists while at least one of its users has the app installed (the last uninstall
    purges it), so the list shows an install appear and disappear.
    """
    installations = Installation.objects.only(*_INSTALLATION_COLUMNS).order_by("pipedrive_user_id", "pk")
    companies = (
        Company.objects.only("id", "pipedrive_company_id", "name", "domain", "api_domain")
        .prefetch_related(Prefetch("installations", queryset=installations))
        .order_by("name", "pk")[:limit]
    )
    return [
        CompanyInstalls(
            pipedrive_company_id=company.pipedrive_company_id,
            name=company.name,
            domain=company.domain,
            pipedrive_url=company.pipedrive_url,
            installations=tuple(
                InstalledUser(
                    pipedrive_user_id=installation.pipedrive_user_id,
                    name=installation.name,
                    is_admin=installation.is_admin,
                    status=installation.status,
                    status_label=installation.get_status_display(),
                )
                for installation in company.installations.all()
            ),
        )
        for company in companies
    ]
