"""Reads of companies and installations."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch

from .models import Company, Installation


def installation_get(*, installation_id: int) -> Installation | None:
    return Installation.objects.select_related("company").filter(pk=installation_id).first()


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
