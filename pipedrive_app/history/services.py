"""Writes of the change history: rows from webhook events, the field-definition cache, retention."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from pipedrive_app.installations.models import CompanySettings, Installation
from pipedrive_app.installations.selectors import company_acting_installation
from pipedrive_app.installations.services import InstallationNotActive, installation_client
from pipedrive_app.pipedrive.client import FIELD_ENDPOINTS
from pipedrive_app.pipedrive.errors import (
    PipedriveBudgetExhausted,
    PipedriveError,
    PipedriveRateLimited,
    PipedriveUnavailable,
)
from pipedrive_app.webhooks.payloads import Delivery

from .field_labels import CUSTOM_FIELD_KEY, CUSTOM_SUBFIELD_KEY, FieldInfo, FieldLabels
from .models import ChangeRecord, FieldCatalog, FieldDefinitionCache, FieldValueState
from .references import REFERENCE_FIELDS, RecordNames, reference_id, stage_pipelines_differ, typed_reference

logger = logging.getLogger(__name__)

# Bookkeeping fields that change with every edit; a history line for them would be noise.
IGNORED_FIELDS = frozenset({"update_time", "last_activity_id", "next_activity_id", "id", "company_id", "custom_fields"})

# Fields Pipedrive sets itself as a consequence of a person's edit: "Last stage change" after a stage
# move, "Won time" and "Deal closed on" when a deal is won, the weighted value after a value or stage
# change. In an event that also changed a field a person edits, they are folded into that change
# (no line of their own); alone in an event they are still recorded, never silently lost.
SYSTEM_FOLLOW_UP_FIELDS: dict[str, frozenset[str]] = {
    "deal": frozenset(
        {
            "stage_change_time",
            "close_time",
            "won_time",
            "lost_time",
            "first_won_time",
            "weighted_value",
            "weighted_value_currency",
            "rotten_time",
            "last_activity_date",
            "next_activity_date",
            "last_incoming_mail_time",
            "last_outgoing_mail_time",
        }
    ),
    "person": frozenset(
        {"last_activity_date", "next_activity_date", "last_incoming_mail_time", "last_outgoing_mail_time"}
    ),
    "organization": frozenset({"last_activity_date", "next_activity_date"}),
    "activity": frozenset({"marked_as_done_time"}),
}


# --- field definitions ----------------------------------------------------------------------------


def changed_custom_keys(*, delivery: Delivery) -> set[str]:
    keys = set()
    for key, _, _ in field_changes(delivery=delivery):
        part = CUSTOM_SUBFIELD_KEY.match(key)
        if CUSTOM_FIELD_KEY.match(key) or part:
            keys.add(part.group(1) if part else key)
    return keys


def field_labels_load(*, company_id: int, entity: str, keys: Iterable[str] = ()) -> FieldLabels:
    """Labels for ``entity``; refreshes the cache from Pipedrive when one of ``keys`` is unknown."""
    labels = _labels_from_cache(company_id=company_id, entity=entity)
    unknown = {key for key in keys if key not in labels.definitions}
    if unknown and entity in FIELD_ENDPOINTS and _refresh_allowed(company_id=company_id, entity=entity):
        try:
            field_definitions_refresh(company_id=company_id, entity=entity)
        except PipedriveBudgetExhausted as exc:
            # Paused until the daily budget resets (the catalog stays stale, so the next event after
            # the reset refreshes it); meanwhile labels fall back rather than holding events a day.
            logger.info("company %s: %s fields not refreshed: %s", company_id, entity, exc)
            return labels
        labels = _labels_from_cache(company_id=company_id, entity=entity)
    return labels


def _labels_from_cache(*, company_id: int, entity: str) -> FieldLabels:
    rows = FieldDefinitionCache.objects.filter(company_id=company_id, entity=entity)
    return FieldLabels(
        entity=entity,
        definitions={
            row.field_key: FieldInfo(key=row.field_key, name=row.name, field_type=row.field_type, options=row.options)
            for row in rows
        },
    )


def _refresh_allowed(*, company_id: int, entity: str) -> bool:
    catalog = FieldCatalog.objects.filter(company_id=company_id, entity=entity).first()
    if catalog is None or catalog.refreshed_at is None:
        return True
    return catalog.refreshed_at < timezone.now() - timedelta(seconds=settings.HISTORY_FIELDS_REFRESH_MIN_SECONDS)


def field_definitions_refresh(*, company_id: int, entity: str) -> int:
    """Fetch ``GET /api/v2/<entity>Fields`` (all pages) into the cache.

    Transient failures (5xx, 429) raise for the caller to retry; a refusal (403, no installation) is
    recorded and labels fall back to built-ins and "Custom field".
    """
    installation = company_acting_installation(company_id=company_id)
    now = timezone.now()
    if installation is None:
        _catalog_save(company_id=company_id, entity=entity, refreshed_at=now, error="no active installation")
        return 0
    client = installation_client(installation=installation)
    try:
        definitions = list(client.iter_fields(entity))
    except (PipedriveUnavailable, PipedriveRateLimited):
        raise
    except (PipedriveError, InstallationNotActive) as exc:
        logger.warning("company %s: %s fields not readable: %s", company_id, entity, exc)
        _catalog_save(company_id=company_id, entity=entity, refreshed_at=now, error=str(exc))
        return 0
    finally:
        client.close()
    rows = [
        FieldDefinitionCache(
            company_id=company_id,
            entity=entity,
            field_key=definition.key[:128],
            name=definition.name[:255],
            field_type=definition.field_type[:64],
            options={str(option.id): option.label for option in definition.options},
            is_custom=definition.is_custom or bool(CUSTOM_FIELD_KEY.match(definition.key)),
            fetched_at=now,
        )
        for definition in definitions
    ]
    FieldDefinitionCache.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["company", "entity", "field_key"],
        update_fields=["name", "field_type", "options", "is_custom", "fetched_at"],
    )
    _catalog_save(company_id=company_id, entity=entity, refreshed_at=now, error="")
    return len(rows)


def _catalog_save(*, company_id: int, entity: str, refreshed_at: datetime, error: str) -> None:
    FieldCatalog.objects.bulk_create(
        [FieldCatalog(company_id=company_id, entity=entity, refreshed_at=refreshed_at, last_error=error[:500])],
        update_conflicts=True,
        unique_fields=["company", "entity"],
        update_fields=["refreshed_at", "last_error"],
    )


# --- history rows from an event -------------------------------------------------------------------


def field_changes(*, delivery: Delivery) -> list[tuple[str, Any, Any]]:
    """(field key, old value, new value) for each field the event changed, a person's edits only
    when the event has any (see ``SYSTEM_FOLLOW_UP_FIELDS``)."""
    changes = _changed_fields(delivery=delivery)
    follow_ups = SYSTEM_FOLLOW_UP_FIELDS.get(delivery.entity, frozenset())
    if any(key not in follow_ups for key, _, _ in changes):
        changes = [change for change in changes if change[0] not in follow_ups]
    return changes


def _changed_fields(*, delivery: Delivery) -> list[tuple[str, Any, Any]]:
    data = delivery.data or {}
    previous = delivery.previous or {}
    changes: list[tuple[str, Any, Any]] = []
    if delivery.version == "2.0":
        # v2 ``previous`` holds only the changed fields; custom ones under ``custom_fields``.
        for key, old in previous.items():
            if key == "custom_fields" and isinstance(old, Mapping):
                new_custom = data.get("custom_fields")
                new_custom = new_custom if isinstance(new_custom, Mapping) else {}
                changes.extend((str(k), v, new_custom.get(k)) for k, v in old.items() if v != new_custom.get(k))
            elif key not in IGNORED_FIELDS and old != data.get(key):
                changes.append((str(key), old, data.get(key)))
        return changes
    # v1: ``previous`` and ``current`` are whole objects; custom fields are top-level hash keys.
    for key in sorted(set(previous) | set(data)):
        if key in IGNORED_FIELDS:
            continue
        if key in previous and key in data and previous[key] != data[key]:
            changes.append((str(key), previous[key], data[key]))
    # A part of a custom field ("<key>_currency") is shown with the field when the field changed too.
    changed = {key for key, _, _ in changes}
    return [
        change
        for change in changes
        if not ((part := CUSTOM_SUBFIELD_KEY.match(change[0])) and part.group(1) in changed)
    ]


def _record_title(record: Mapping[str, Any] | None, entity_id: str) -> str:
    if isinstance(record, Mapping):
        for key in ("title", "name", "subject"):
            value = record.get(key)
            if isinstance(value, str) and value:
                return value
    return f"#{entity_id}"


def _json_safe(value: Any) -> Any:
    """PostgreSQL's jsonb refuses NUL characters; nothing else needs changing."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k).replace("\x00", ""): _json_safe(v) for k, v in value.items()}
    return value


def _actor_name(*, company_id: int, user_id: int | None) -> str:
    if user_id is None:
        return ""
    name = (
        Installation.objects.filter(company_id=company_id, pipedrive_user_id=user_id)
        .values_list("name", flat=True)
        .first()
    )
    return name or ""


def _merge_partners(delivery: Delivery, names: RecordNames) -> str:
    """The other record of a merge: its name when it could be read, else ``#id``."""
    return ", ".join(names.resolved(delivery.entity, other) or f"#{other}" for other in delivery.merged_with_ids)


def _field_displays(
    *, key: str, old: Any, new: Any, delivery: Delivery, labels: FieldLabels, names: RecordNames
) -> tuple[str, str]:
    """Old and new display text; reference ids become names ("Proposal made", not "3")."""
    old_record, new_record = _old_record(delivery), delivery.data or {}
    kind = REFERENCE_FIELDS.get(key)
    if kind is None:
        shown = []
        for value, record in ((old, old_record), (new, new_record)):
            ref = typed_reference(value)  # a custom field naming a person, organization or user
            shown.append(names.name(*ref) if ref is not None else labels.display(key, value, record=record))
        return shown[0], shown[1]
    with_pipeline = key == "stage_id" and stage_pipelines_differ(
        old_record=old_record, new_record=new_record, names=names
    )
    displays = []
    for value, record in ((old, old_record), (new, new_record)):
        record_id = reference_id(value)
        if record_id is None:  # empty, or a shape that carries its own name (v1 {"name", "value"})
            displays.append(labels.display(key, value, record=record))
        elif kind == "stage":
            pipeline_id = reference_id(record.get("pipeline_id"))
            displays.append(names.stage_display(record_id, pipeline_id=pipeline_id, with_pipeline=with_pipeline))
        else:
            displays.append(names.name(kind, record_id))
    return displays[0], displays[1]


def history_record_delivery(
    *, company_id: int, delivery: Delivery, labels: FieldLabels, names: RecordNames | None = None
) -> int:
    """Write the history lines of one event (DB only: labels and names were resolved beforehand)."""
    names = names or RecordNames()
    actor_name = _actor_name(company_id=company_id, user_id=delivery.user_id) or (
        names.resolved("user", delivery.user_id) or ""
    )
    base = {
        "company_id": company_id,
        "entity": delivery.entity,
        "entity_id": delivery.entity_id,
        "actor_user_id": delivery.user_id,
        "actor_name": actor_name[:255],
        "change_source": delivery.change_source,
        "owner_user_id": record_owner(delivery),
        "record_label": record_label(delivery),
        "occurred_at": delivery.occurred_at,
        "event_key": delivery.dedup_key,
    }
    title_now = _record_title(delivery.data, delivery.entity_id)
    title_before = _record_title(delivery.previous or delivery.data, delivery.entity_id)
    rows: list[ChangeRecord] = []
    merged_text = _merge_partners(delivery, names)
    if delivery.action == "create":
        rows.append(ChangeRecord(kind=ChangeRecord.Kind.CREATED, new_display=title_now, **base))
    elif delivery.action == "delete" and merged_text:
        # v2 has no merge action: the merged-away record arrives as a delete naming the other.
        rows.append(
            ChangeRecord(
                kind=ChangeRecord.Kind.MERGED,
                old_display=title_before,
                new_display=f"Merged into {merged_text}",
                **base,
            )
        )
    elif delivery.action == "delete":
        rows.append(ChangeRecord(kind=ChangeRecord.Kind.DELETED, old_display=title_before, **base))
    elif delivery.action == "merge":
        rows.append(
            ChangeRecord(
                kind=ChangeRecord.Kind.MERGED,
                old_display=title_before,
                new_display=f"Merged with {merged_text}",
                **base,
            )
        )
    if delivery.action == "change" and merged_text:
        rows.append(ChangeRecord(kind=ChangeRecord.Kind.MERGED, new_display=f"Merged with {merged_text}", **base))
    current: list[tuple[str, Any, str]] = []
    if delivery.action == "change":  # a v1 merge compares two records, not two versions
        for key, old, new in field_changes(delivery=delivery):
            old_display, new_display = _field_displays(
                key=key, old=old, new=new, delivery=delivery, labels=labels, names=names
            )
            rows.append(
                ChangeRecord(
                    kind=ChangeRecord.Kind.CHANGED,
                    field_key=key[:128],
                    field_label=labels.label(key)[:255],
                    old_value=_json_safe(old),
                    new_value=_json_safe(new),
                    old_display=old_display,
                    new_display=new_display,
                    **base,
                )
            )
            current.append((key[:128], _json_safe(new), new_display))
    ChangeRecord.objects.bulk_create(rows, ignore_conflicts=True)
    for key, value, display in current:
        _current_value_set(
            company_id=company_id,
            delivery=delivery,
            field_key=key,
            value=value,
            display=display,
        )
    return len(rows)


def record_label(delivery: Delivery) -> str:
    """The record's title or name as the event carries it (now, else before a delete), or ""."""
    for record in (delivery.data, delivery.previous):
        title = _record_title(record, "")
        if title != "#":
            return _json_safe(title)[:255]
    return ""


def record_owner(delivery: Delivery) -> int | None:
    """The record's owner as the event carries it: ``owner_id`` (v2, and v1 persons/organizations),
    else ``user_id`` (v1 deals, activities); the current data first, the previous one for a delete.
    None when the event names no owner."""
    for record in (delivery.data, delivery.previous):
        if not isinstance(record, Mapping):
            continue
        for key in ("owner_id", "user_id"):
            if key in record:
                owner = reference_id(record[key])
                if owner is not None:
                    return owner
    return None


def _old_record(delivery: Delivery) -> Mapping[str, Any]:
    """The record before the change: for v2, ``previous`` overlays only what changed."""
    data = delivery.data or {}
    return {**data, **(delivery.previous or {})}


def _current_value_set(*, company_id: int, delivery: Delivery, field_key: str, value: Any, display: str) -> None:
    """Keep the value of the event with the latest Pipedrive timestamp, whatever the arrival order."""
    lookup = {
        "company_id": company_id,
        "entity": delivery.entity,
        "entity_id": delivery.entity_id,
        "field_key": field_key,
    }
    changes = {"value": value, "display": display, "as_of": delivery.occurred_at, "event_key": delivery.dedup_key}
    if FieldValueState.objects.filter(**lookup, as_of__lte=delivery.occurred_at).update(**changes):
        return
    if FieldValueState.objects.filter(**lookup).exists():
        return  # a newer event already set it
    try:
        with transaction.atomic():
            FieldValueState.objects.create(**lookup, **changes)
    except IntegrityError:  # created concurrently: apply only if still newer
        FieldValueState.objects.filter(**lookup, as_of__lte=delivery.occurred_at).update(**changes)


# --- retention ------------------------------------------------------------------------------------


def history_purge_expired(*, now: datetime | None = None) -> int:
    """Delete history older than each company's ``history_retention_days``."""
    now = now or timezone.now()
    deleted = 0
    for company_id, days in CompanySettings.objects.values_list("company_id", "history_retention_days"):
        count, _ = ChangeRecord.objects.filter(
            company_id=company_id, occurred_at__lt=now - timedelta(days=days)
        ).delete()
        deleted += count
    return deleted
