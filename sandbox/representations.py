"""How the sandbox's records look on the wire: API v2 deals, persons, organizations, pipelines and
stages; v1 notes, users and webhooks.

Shapes follow Pipedrive's OpenAPI files (``vendor/pipedrive-openapi/``). Where Pipedrive itself
sends ``null`` for a field the files declare non-nullable (``org_id``, ``won_time``...), the field is
left out: the files are the contract (tests/sandbox/test_contract.py holds every response to them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from . import models


def rfc3339(value: datetime | None) -> str | None:
    """API v2 and webhooks v2 times: ``2025-01-01T10:20:00Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def v1_time(value: datetime | None) -> str | None:
    """API v1 times: ``2025-01-01 10:20:00`` in UTC."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _number(value: Decimal | float | int | str | None) -> int | float | None:
    """A JSON number; the model's default (an int) and a saved Decimal read alike."""
    if value is None:
        return None
    amount = Decimal(str(value))
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _without_nulls(record: Mapping[str, Any], *, nullable: Iterable[str] = ()) -> dict[str, Any]:
    keep = set(nullable)
    return {key: value for key, value in record.items() if value is not None or key in keep}


_DEAL_NULLABLE = ("probability", "lost_reason", "close_time", "origin_id", "channel", "channel_id")


def deal_v2(deal: models.Deal) -> dict[str, Any]:
    return _without_nulls(
        {
            "id": deal.pk,
            "title": deal.title,
            "creator_user_id": deal.creator_id,
            "owner_id": deal.owner_id,
            "person_id": deal.person_id,
            "org_id": deal.org_id,
            "pipeline_id": deal.pipeline_id,
            "stage_id": deal.stage_id,
            "value": _number(deal.value),
            "currency": deal.currency,
            "add_time": rfc3339(deal.add_time),
            "update_time": rfc3339(deal.update_time),
            "stage_change_time": rfc3339(deal.stage_change_time),
            "is_deleted": deal.is_deleted,
            "is_archived": False,
            "status": deal.status,
            "probability": deal.probability,
            "lost_reason": deal.lost_reason or None,
            "visible_to": deal.visible_to,
            "close_time": rfc3339(deal.close_time),
            "won_time": rfc3339(deal.won_time),
            "lost_time": rfc3339(deal.lost_time),
            "expected_close_date": _day(deal.expected_close_date),
            "label_ids": [],
            "origin": "API",
            "origin_id": None,
            "channel": None,
            "channel_id": None,
            "custom_fields": dict(deal.custom_fields or {}),
        },
        nullable=_DEAL_NULLABLE,
    )


def person_v2(person: models.Person) -> dict[str, Any]:
    first, _, last = person.name.partition(" ")
    return _without_nulls(
        {
            "id": person.pk,
            "name": person.name,
            "first_name": first,
            "last_name": last,
            "owner_id": person.owner_id,
            "org_id": person.org_id,
            "add_time": rfc3339(person.add_time),
            "update_time": rfc3339(person.update_time),
            "emails": list(person.emails or []),
            "phones": list(person.phones or []),
            "is_deleted": person.is_deleted,
            "visible_to": person.visible_to,
            "label_ids": [],
            "job_title": person.job_title or None,
            "custom_fields": dict(person.custom_fields or {}),
        }
    )


def organization_v2(org: models.Organization) -> dict[str, Any]:
    return _without_nulls(
        {
            "id": org.pk,
            "name": org.name,
            "owner_id": org.owner_id,
            "add_time": rfc3339(org.add_time),
            "update_time": rfc3339(org.update_time),
            "is_deleted": org.is_deleted,
            "visible_to": 3,
            "label_ids": [],
            "address": {"value": org.address} if org.address else None,
            "custom_fields": {},
        }
    )


def note_v1(note: models.Note, *, viewer_id: int | None = None) -> dict[str, Any]:
    """A note as ``/api/v1/notes`` answers (webhooks v2 send the same fields)."""
    user = note.user
    return _without_nulls(
        {
            "id": note.pk,
            "active_flag": not note.is_deleted,
            "add_time": v1_time(note.add_time),
            "update_time": v1_time(note.update_time),
            "content": note.content,
            "deal_id": note.deal_id,
            "person_id": note.person_id,
            "org_id": note.org_id,
            "user_id": note.user_id,
            "last_update_user_id": note.user_id,
            "deal": {"title": note.deal.title} if note.deal_id and note.deal else None,
            "person": {"name": note.person.name} if note.person_id and note.person else None,
            "organization": {"name": note.org.name} if note.org_id and note.org else None,
            "pinned_to_deal_flag": False,
            "pinned_to_person_flag": False,
            "pinned_to_organization_flag": False,
            "pinned_to_project_flag": False,
            "user": (
                {"email": user.email, "name": user.name, "is_you": user.pk == viewer_id} if user is not None else None
            ),
        }
    )


def entity_snapshot(instance: Any) -> dict[str, Any]:
    """The ``data`` a webhook carries for a record (the API's own shape)."""
    if isinstance(instance, models.Deal):
        return deal_v2(instance)
    if isinstance(instance, models.Person):
        return person_v2(instance)
    if isinstance(instance, models.Note):
        return note_v1(instance)
    if isinstance(instance, models.Organization):
        return organization_v2(instance)
    raise TypeError(f"no representation for {type(instance).__name__}")


def pipeline_v2(pipeline: models.Pipeline) -> dict[str, Any]:
    # The sandbox keeps no times for pipelines and stages: they exist since their company does.
    stamp = rfc3339(pipeline.company.created_at)
    return {
        "id": pipeline.pk,
        "name": pipeline.name,
        "order_nr": pipeline.order_nr,
        "is_deleted": False,
        "is_deal_probability_enabled": True,
        "add_time": stamp,
        "update_time": stamp,
    }


def stage_v2(stage: models.Stage) -> dict[str, Any]:
    stamp = rfc3339(stage.pipeline.company.created_at)
    return {
        "id": stage.pk,
        "order_nr": stage.order_nr,
        "name": stage.name,
        "is_deleted": False,
        "deal_probability": stage.deal_probability,
        "pipeline_id": stage.pipeline_id,
        "is_deal_rot_enabled": False,
        "days_to_rotten": None,
        "add_time": stamp,
        "update_time": stamp,
    }


def user_v1(user: models.SandboxUser, *, viewer_id: int | None) -> dict[str, Any]:
    """A user as ``GET /api/v1/users/{id}`` answers (``BaseUser`` in v1.yaml)."""
    stamp = v1_time(user.created_at)
    return {
        "id": user.pk,
        "name": user.name,
        "default_currency": "EUR",
        "locale": user.locale,
        "lang": 1,
        "email": user.email,
        "phone": None,
        "activated": True,
        "last_login": v1_time(timezone.now()),
        "created": stamp,
        "modified": stamp,
        "has_created_company": user.is_admin,
        "access": [
            {"app": "global", "admin": user.is_admin, "permission_set_id": f"sandbox-{user.company_id}-{user.pk}"}
        ],
        "active_flag": True,
        "timezone_name": user.timezone_name,
        "timezone_offset": "+00:00",
        "role_id": 1,
        "icon_url": None,
        "is_you": user.pk == viewer_id,
        "is_deleted": False,
        "is_admin": 1 if user.is_admin else 0,
    }


def user_me(user: models.SandboxUser) -> dict[str, Any]:
    """``GET /api/v1/users/me``: the user as above, plus their company."""
    company = user.company
    language, _, country = user.locale.partition("_")
    return {
        **user_v1(user, viewer_id=user.pk),
        "company_id": company.pk,
        "company_name": company.name,
        "company_domain": company.domain,
        "company_country": "EE",
        "company_industry": "Software",
        "language": {"language_code": language or "en", "country_code": country or "US"},
    }


def webhook_v1(webhook: models.Webhook) -> dict[str, Any]:
    return {
        "id": webhook.pk,
        "company_id": webhook.company_id,
        "owner_id": webhook.owner_id,
        "user_id": webhook.user_id,
        "event_action": webhook.event_action,
        "event_object": webhook.event_object,
        "subscription_url": webhook.subscription_url,
        "version": webhook.version,
        "is_active": 1 if webhook.is_active else 0,
        "add_time": rfc3339(webhook.add_time),
        "remove_time": rfc3339(webhook.remove_time),
        "type": webhook.type,
        "http_auth_user": webhook.http_auth_user or None,
        "http_auth_password": None,  # never echoed back
        "remove_reason": webhook.remove_reason or None,
        "last_delivery_time": rfc3339(webhook.last_delivery_time),
        "last_http_status": webhook.last_http_status,
        "admin_id": webhook.owner_id,
        "name": webhook.name,
    }


# Standard fields the *Fields endpoints list before the custom ones (a representative subset).
_STANDARD_FIELDS = {
    models.FieldDefinition.Entity.DEAL: (
        ("title", "Title", "varchar"),
        ("value", "Value", "monetary"),
        ("status", "Status", "status"),
        ("stage_id", "Stage", "stage"),
        ("person_id", "Contact person", "people"),
        ("org_id", "Organization", "org"),
        ("owner_id", "Owner", "user"),
        ("expected_close_date", "Expected close date", "date"),
    ),
    models.FieldDefinition.Entity.PERSON: (
        ("name", "Name", "varchar"),
        ("emails", "Email", "varchar"),
        ("phones", "Phone", "phone"),
        ("org_id", "Organization", "org"),
        ("owner_id", "Owner", "user"),
        ("job_title", "Job title", "varchar"),
    ),
}


def fields_v2(entity: str, definitions: Iterable[models.FieldDefinition]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {
            "field_name": name,
            "field_code": code,
            "field_type": field_type,
            "is_custom_field": False,
            "is_optional_response_field": False,
            "options": None,
            "subfields": None,
        }
        for code, name, field_type in _STANDARD_FIELDS[models.FieldDefinition.Entity(entity)]
    ]
    for definition in definitions:
        rows.append(
            {
                "field_name": definition.name,
                "field_code": definition.key,
                "field_type": definition.field_type,
                "is_custom_field": True,
                "is_optional_response_field": False,
                "options": [
                    {"id": option.get("id"), "label": str(option.get("label", "")), "color": None}
                    for option in (definition.options or [])
                ]
                or None,
                "subfields": None,
            }
        )
    return rows
