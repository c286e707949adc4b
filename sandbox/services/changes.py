"""The sandbox's change log: every create/change/delete of a record leaves a ``ChangeEvent`` whose
webhook fan-out is enqueued when the transaction commits; the errors a refused write raises; and the
create/update/delete steps deals, people and leads share."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone

from .. import representations, tasks
from ..facts import webhook_bodies
from ..models import (
    ChangeEvent,
    Deal,
    FieldDefinition,
    Lead,
    Person,
    SandboxCompany,
    SandboxUser,
    Webhook,
)
from ..routers import SANDBOX_DB

logger = logging.getLogger(__name__)


class RecordInputError(Exception):
    """The request's content was refused; ``errors`` maps a field to its reasons."""

    def __init__(self, message: str, *, errors: Mapping[str, list[str]] | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.errors = dict(errors or {})
        self.status = status


class WebhookLimitReached(RecordInputError):
    pass


# --- change log ---------------------------------------------------------------------------------------


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The previous values of the fields that changed (custom fields compared key by key)."""
    previous: dict[str, Any] = {}
    for key in sorted(set(before) | set(after)):
        if key == "update_time":
            continue
        old, new = before.get(key), after.get(key)
        if key == "custom_fields" and isinstance(old, Mapping) and isinstance(new, Mapping):
            changed = {k: old.get(k) for k in set(old) | set(new) if old.get(k) != new.get(k)}
            if changed:
                previous[key] = changed
        elif old != new:
            previous[key] = old
    return previous


Snapshot = tuple[str, dict[str, Any], dict[str, Any]]  # (entity, webhook values, v1 values)


def _snapshot(instance: Any) -> Snapshot:
    entity, values = representations.webhook_values(instance)
    return entity, values, representations.v1_values(entity, instance, values)


def _field_types(company: SandboxCompany, entity: str) -> dict[str, str]:
    if entity not in FieldDefinition.Entity.values:
        return {}
    return dict(FieldDefinition.objects.filter(company=company, entity=entity).values_list("key", "field_type"))


def _event_record(
    *,
    company: SandboxCompany,
    actor: SandboxUser | None,
    instance: Any,
    action: str,
    source: str,
    before: Snapshot | None = None,
) -> ChangeEvent:
    """Log a change of ``instance`` (its state now; ``before``: its snapshot before the change) with the
    bodies its webhooks will carry, v2 and v1 (``facts.webhook_bodies``)."""
    entity, values, values_v1 = _snapshot(instance)
    types = _field_types(company, entity)
    data = webhook_bodies.v2_data(entity, values, types)
    old = webhook_bodies.v2_data(entity, before[1], types) if before else None
    if action == ChangeEvent.Action.CREATE:
        previous = None
    elif action == ChangeEvent.Action.CHANGE:
        previous = webhook_bodies.v2_previous(entity, old or {}, data)
    else:
        previous = old
    event = ChangeEvent.objects.create(
        company=company,
        user=actor,
        entity=entity,
        entity_id=str(instance.pk),
        action=action,
        change_source=source,
        data=None if action == ChangeEvent.Action.DELETE else data,
        previous=previous,
        data_v1=None if action == ChangeEvent.Action.DELETE else webhook_bodies.v1_object(entity, values_v1, types),
        previous_v1=webhook_bodies.v1_object(entity, before[2], types) if before else None,
    )
    if Webhook.objects.filter(company=company, remove_time__isnull=True).exists():
        transaction.on_commit(lambda: tasks.fan_out_event.delay(event.pk), using=SANDBOX_DB)
    return event


def _apply_deal_status(deal: Deal, *, previous_status: str | None, now: datetime) -> None:
    if deal.status == previous_status:
        return
    deal.won_time = now if deal.status == Deal.Status.WON else None
    deal.lost_time = now if deal.status == Deal.Status.LOST else None
    deal.close_time = now if deal.status != Deal.Status.OPEN else None


_Record = TypeVar("_Record", Deal, Person, Lead)


def _record_create(
    record: _Record,
    *,
    values: Mapping[str, Any],
    actor: SandboxUser | None,
    source: str,
    before_save: Callable[[_Record, datetime], None] | None = None,
) -> _Record:
    """Store a new deal, person or lead with its cleaned ``values`` and record the create event."""
    now = timezone.now()
    with transaction.atomic(using=SANDBOX_DB):
        record.add_time = record.update_time = now
        for name, value in values.items():
            if name == "custom_fields" and isinstance(value, dict):
                value = {k: v for k, v in value.items() if v is not None}
            setattr(record, name, value)
        if before_save is not None:
            before_save(record, now)
        record.save()
        _event_record(
            company=record.company, actor=actor, instance=record, action=ChangeEvent.Action.CREATE, source=source
        )
    return record


def _record_update(
    model: type[_Record],
    pk: Any,
    *,
    values: Mapping[str, Any],
    represent: Callable[[_Record], dict[str, Any]],
    actor: SandboxUser | None,
    source: str,
    before_save: Callable[[_Record, _Record, datetime], None] | None = None,
) -> _Record:
    """Apply ``values`` to a deal, person or lead under its row lock; when its representation
    changed, store it and record the change event with the state before. Custom fields merge (a
    None value removes one)."""
    with transaction.atomic(using=SANDBOX_DB):
        record = model.objects.select_for_update().select_related("company").get(pk=pk)
        before = represent(record)
        snapshot = _snapshot(record)
        original = copy.copy(record)
        now = timezone.now()
        for name, value in values.items():
            if name == "custom_fields":
                merged = {**(record.custom_fields or {}), **value}
                record.custom_fields = {k: v for k, v in merged.items() if v is not None}
            else:
                setattr(record, name, value)
        if before_save is not None:
            before_save(record, original, now)
        if not _changed(before, represent(record)):
            return record
        record.update_time = now
        record.save()
        _event_record(
            company=record.company,
            actor=actor,
            instance=record,
            action=ChangeEvent.Action.CHANGE,
            source=source,
            before=snapshot,
        )
    return record


def _deal_follow_ups(deal: Deal, original: Deal, now: datetime) -> None:
    """What Pipedrive sets itself when a deal is edited: won/lost/close times, the stage change time."""
    _apply_deal_status(deal, previous_status=original.status, now=now)
    if deal.stage_id != original.stage_id:
        deal.stage_change_time = now


def _soft_delete(
    *,
    model: type[_Record],
    pk: Any,
    actor: SandboxUser | None,
    source: str,
) -> None:
    """Mark a deal, person or lead deleted (once) and record the delete event with its last state."""
    with transaction.atomic(using=SANDBOX_DB):
        record = model.objects.select_for_update().select_related("company").get(pk=pk)
        if record.is_deleted:
            return
        before = _snapshot(record)
        record.is_deleted = True
        record.update_time = timezone.now()
        record.save(update_fields=["is_deleted", "update_time"])
        _event_record(
            company=record.company,
            actor=actor,
            instance=record,
            action=ChangeEvent.Action.DELETE,
            source=source,
            before=before,
        )
