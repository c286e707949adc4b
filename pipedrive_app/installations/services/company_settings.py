"""A company's settings: what its admins chose (tracked entities, history retention)."""

from __future__ import annotations

from django.db import transaction

from pipedrive_app.core import locks

from .. import signals
from ..models import Company, CompanySettings, Installation

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
        transaction.on_commit(lambda: signals.company_settings_changed.send(sender=Company, company_id=company_id))
    return settings_row
