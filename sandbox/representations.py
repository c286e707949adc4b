"""The sandbox's records on the wire: its models' values handed to ``facts.wire``, where every shape
is defined (and shared with the tests' double)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from . import models
from .facts import wire
from .facts.wire import rfc3339, v1_time

__all__ = ["rfc3339", "v1_time"]


def deal_v2(deal: models.Deal) -> dict[str, Any]:
    return wire.deal_v2(
        {
            "id": deal.pk,
            "title": deal.title,
            "creator_user_id": deal.creator_id,
            "owner_id": deal.owner_id,
            "person_id": deal.person_id,
            "org_id": deal.org_id,
            "pipeline_id": deal.pipeline_id,
            "stage_id": deal.stage_id,
            "value": deal.value,
            "currency": deal.currency,
            "add_time": deal.add_time,
            "update_time": deal.update_time,
            "stage_change_time": deal.stage_change_time,
            "is_deleted": deal.is_deleted,
            "status": deal.status,
            "probability": deal.probability,
            "lost_reason": deal.lost_reason or None,
            "visible_to": deal.visible_to,
            "close_time": deal.close_time,
            "won_time": deal.won_time,
            "lost_time": deal.lost_time,
            "expected_close_date": deal.expected_close_date,
            "custom_fields": deal.custom_fields,
        }
    )


def person_v2(person: models.Person) -> dict[str, Any]:
    return wire.person_v2(
        {
            "id": person.pk,
            "name": person.name,
            "owner_id": person.owner_id,
            "org_id": person.org_id,
            "add_time": person.add_time,
            "update_time": person.update_time,
            "emails": list(person.emails or []),
            "phones": list(person.phones or []),
            "is_deleted": person.is_deleted,
            "visible_to": person.visible_to,
            "job_title": person.job_title or None,
            "custom_fields": person.custom_fields,
        }
    )


def organization_v2(org: models.Organization) -> dict[str, Any]:
    return wire.organization_v2(
        {
            "id": org.pk,
            "name": org.name,
            "owner_id": org.owner_id,
            "add_time": org.add_time,
            "update_time": org.update_time,
            "is_deleted": org.is_deleted,
            "address": org.address,
        }
    )


def note_values(note: models.Note) -> dict[str, Any]:
    user = note.user
    return {
        "id": note.pk,
        "content": note.content,
        "deal_id": note.deal_id,
        "person_id": note.person_id,
        "org_id": note.org_id,
        "lead_id": str(note.lead_id) if note.lead_id else None,
        "user_id": note.user_id,
        "user_name": user.name if user else None,
        "user_email": user.email if user else None,
        "deal_title": note.deal.title if note.deal_id and note.deal else None,
        "person_name": note.person.name if note.person_id and note.person else None,
        "org_name": note.org.name if note.org_id and note.org else None,
        "is_deleted": note.is_deleted,
        "add_time": note.add_time,
        "update_time": note.update_time,
    }


def note_v1(note: models.Note, *, viewer_id: int | None = None) -> dict[str, Any]:
    return wire.note_v1(note_values(note), viewer_id=viewer_id)


def activity_v2(activity: models.Activity) -> dict[str, Any]:
    return wire.activity_v2(
        {
            "id": activity.pk,
            "subject": activity.subject,
            "type": activity.type,
            "owner_id": activity.owner_id,
            "creator_user_id": activity.creator_id,
            "deal_id": activity.deal_id,
            "person_id": activity.person_id,
            "org_id": activity.org_id,
            "due_date": activity.due_date,
            "due_time": activity.due_time,
            "duration": activity.duration,
            "busy": activity.busy,
            "done": activity.done,
            "note": activity.note,
            "is_deleted": activity.is_deleted,
            "add_time": activity.add_time,
            "update_time": activity.update_time,
        }
    )


def pipeline_v2(pipeline: models.Pipeline) -> dict[str, Any]:
    return wire.pipeline_v2(
        {
            "id": pipeline.pk,
            "name": pipeline.name,
            "order_nr": pipeline.order_nr,
            "is_deal_probability_enabled": pipeline.deal_probability,
            "add_time": pipeline.add_time,
            "update_time": pipeline.update_time,
        }
    )


def stage_v2(stage: models.Stage) -> dict[str, Any]:
    return wire.stage_v2(
        {
            "id": stage.pk,
            "order_nr": stage.order_nr,
            "name": stage.name,
            "deal_probability": stage.deal_probability,
            "pipeline_id": stage.pipeline_id,
            "add_time": stage.add_time,
            "update_time": stage.update_time,
        }
    )


def lead_values(lead: models.Lead) -> dict[str, Any]:
    return {
        "id": str(lead.pk),
        "title": lead.title,
        "owner_id": lead.owner_id,
        "creator_id": lead.creator_id,
        "person_id": lead.person_id,
        "organization_id": lead.org_id,
        "is_archived": lead.is_archived,
        "value": {"amount": wire.number(lead.value), "currency": lead.currency} if lead.value is not None else None,
        "expected_close_date": lead.expected_close_date,
        "add_time": lead.add_time,
        "update_time": lead.update_time,
        "custom_fields": lead.custom_fields,
    }


def lead_v1(lead: models.Lead) -> dict[str, Any]:
    return wire.lead_v1(lead_values(lead))


def user_v1(user: models.SandboxUser, *, viewer_id: int | None) -> dict[str, Any]:
    return wire.user_v1(
        id=user.pk,
        name=user.name,
        email=user.email,
        is_admin=user.is_admin,
        locale=user.locale,
        timezone_name=user.timezone_name,
        company_id=user.company_id,
        created=user.created_at,
        last_login=timezone.now(),
        viewer_id=viewer_id,
    )


def user_me(user: models.SandboxUser) -> dict[str, Any]:
    company = user.company
    return wire.user_me(
        user_v1(user, viewer_id=user.pk),
        company_id=company.pk,
        company_name=company.name,
        company_domain=company.domain,
    )


def webhook_v1(webhook: models.Webhook) -> dict[str, Any]:
    return wire.webhook_v1(
        {
            "id": webhook.pk,
            "company_id": webhook.company_id,
            "owner_id": webhook.owner_id,
            "user_id": webhook.user_id,
            "event_action": webhook.event_action,
            "event_object": webhook.event_object,
            "subscription_url": webhook.subscription_url,
            "version": webhook.version,
            "is_active": webhook.is_active,
            "add_time": webhook.add_time,
            "remove_time": webhook.remove_time,
            "type": webhook.type,
            "http_auth_user": webhook.http_auth_user,
            "remove_reason": webhook.remove_reason,
            "last_delivery_time": webhook.last_delivery_time,
            "last_http_status": webhook.last_http_status,
            "name": webhook.name,
        }
    )


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
    rows = [
        wire.field_v2(name=name, code=code, field_type=field_type, custom=False)
        for code, name, field_type in _STANDARD_FIELDS[models.FieldDefinition.Entity(entity)]
    ]
    rows.extend(
        wire.field_v2(
            name=definition.name,
            code=definition.key,
            field_type=definition.field_type,
            custom=True,
            options=definition.options,
        )
        for definition in definitions
    )
    return rows


# --- webhook snapshots: a record's plain values, from which facts.webhook_bodies builds v2 and v1 ------


def webhook_values(instance: Any) -> tuple[str, dict[str, Any]]:
    """(entity, values) of a record as its webhooks describe it."""
    if isinstance(instance, models.Deal):
        deal_values = {
            "id": instance.pk,
            "title": instance.title,
            "creator_user_id": instance.creator_id,
            "owner_id": instance.owner_id,
            "person_id": instance.person_id,
            "org_id": instance.org_id,
            "pipeline_id": instance.pipeline_id,
            "stage_id": instance.stage_id,
            "value": instance.value,
            "currency": instance.currency,
            "add_time": instance.add_time,
            "update_time": instance.update_time,
            "stage_change_time": instance.stage_change_time,
            "status": instance.status,
            "probability": instance.probability,
            "lost_reason": instance.lost_reason or None,
            "visible_to": instance.visible_to,
            "close_time": instance.close_time,
            "won_time": instance.won_time,
            "first_won_time": instance.won_time,
            "lost_time": instance.lost_time,
            "expected_close_date": instance.expected_close_date,
            "label_ids": [],
            "origin": "API",
            "custom_fields": instance.custom_fields,
            "is_deleted": instance.is_deleted,
        }
        return "deal", deal_values
    if isinstance(instance, models.Person):
        first, _, last = instance.name.partition(" ")
        return "person", {
            "id": instance.pk,
            "name": instance.name,
            "first_name": first,
            "last_name": last or None,
            "owner_id": instance.owner_id,
            "org_id": instance.org_id,
            "add_time": instance.add_time,
            "update_time": instance.update_time,
            "emails": list(instance.emails or []),
            "phones": list(instance.phones or []),
            "visible_to": instance.visible_to,
            "job_title": instance.job_title or None,
            "custom_fields": instance.custom_fields,
            "is_deleted": instance.is_deleted,
        }
    if isinstance(instance, models.Organization):
        return "organization", {
            "id": instance.pk,
            "name": instance.name,
            "owner_id": instance.owner_id,
            "add_time": instance.add_time,
            "update_time": instance.update_time,
            "address": {"value": instance.address} if instance.address else None,
            "visible_to": 3,
            "custom_fields": {},
            "is_deleted": instance.is_deleted,
        }
    if isinstance(instance, models.Note):
        return "note", {
            "id": instance.pk,
            "user_id": instance.user_id,
            "deal_id": instance.deal_id,
            "person_id": instance.person_id,
            "org_id": instance.org_id,
            "lead_id": str(instance.lead_id) if instance.lead_id else None,
            "active_flag": not instance.is_deleted,
            "content": instance.content,
            "add_time": instance.add_time,
            "update_time": instance.update_time,
        }
    if isinstance(instance, models.Lead):
        values = lead_values(instance)
        return "lead", {**values, "is_deleted": instance.is_deleted}
    if isinstance(instance, models.Pipeline):
        return "pipeline", {
            "id": instance.pk,
            "name": instance.name,
            "url_title": "-".join(instance.name.split()),
            "order_nr": instance.order_nr,
            "active_flag": True,
            "deal_probability": instance.deal_probability,
            "add_time": instance.add_time,
            "update_time": instance.update_time,
        }
    if isinstance(instance, models.Stage):
        return "stage", {
            "id": instance.pk,
            "name": instance.name,
            "active_flag": True,
            "rotten_days": instance.rotten_days,
            "order_nr": instance.order_nr,
            "deal_probability": instance.deal_probability,
            "rotten_flag": instance.rotten_days is not None,
            "pipeline_id": instance.pipeline_id,
            "add_time": instance.add_time,
            "update_time": instance.update_time,
        }
    raise TypeError(f"no webhook snapshot for {type(instance).__name__}")


def v1_values(entity: str, instance: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The values a v1 body carries: a note as the v1 API shows it, other records as their snapshot."""
    if entity == "note":
        return {**wire.note_v1(note_values(instance)), "custom_fields": {}}
    return values
