"""Reads of the change history. Panels (extensions/) call ``record_history``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.db.models import Max, Q

from .models import ChangeRecord, FieldValueState

HistoryKind = Literal["created", "changed", "deleted", "merged"]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of a record's history, ready to show. Displays are "" when a value was empty."""

    kind: HistoryKind
    field_key: str
    field_label: str
    old_display: str
    new_display: str
    occurred_at: datetime  # aware (UTC), Pipedrive's event time
    actor_user_id: int | None
    actor_name: str | None
    change_source: str
    old_value: Any = None
    new_value: Any = None


@dataclass(frozen=True, slots=True)
class CurrentValue:
    field_key: str
    value: Any
    display: str
    as_of: datetime


def _entry(row: ChangeRecord) -> HistoryEntry:
    return HistoryEntry(
        kind=row.kind,  # type: ignore[arg-type]
        field_key=row.field_key,
        field_label=row.field_label,
        old_display=row.old_display,
        new_display=row.new_display,
        occurred_at=row.occurred_at,
        actor_user_id=row.actor_user_id,
        actor_name=row.actor_name or None,
        change_source=row.change_source,
        old_value=row.old_value,
        new_value=row.new_value,
    )


def record_history(*, company_id: int, entity: str, entity_id: int | str, limit: int = 50) -> list[HistoryEntry]:
    """The newest ``limit`` history lines of one record, newest first (by Pipedrive's timestamp).

    ``company_id`` is the app's Company primary key (not Pipedrive's company id). ``entity_id`` is
    the record's id as Pipedrive sends it: an integer, or a lead's UUID.
    """
    rows = ChangeRecord.objects.filter(company_id=company_id, entity=entity, entity_id=str(entity_id)).order_by(
        "-occurred_at", "-pk"
    )[: max(0, int(limit))]
    return [_entry(row) for row in rows]


def record_current_values(*, company_id: int, entity: str, entity_id: int | str) -> dict[str, CurrentValue]:
    """Each tracked field's value as of the latest event timestamp seen for the record."""
    return {
        row.field_key: CurrentValue(field_key=row.field_key, value=row.value, display=row.display, as_of=row.as_of)
        for row in FieldValueState.objects.filter(company_id=company_id, entity=entity, entity_id=str(entity_id))
    }


def history_high_water() -> int:
    """The newest history row id of all companies (0 when none): a cheap point in time to compare
    ``records_change_mark`` against (the primary key index answers it)."""
    return ChangeRecord.objects.aggregate(top=Max("pk"))["top"] or 0


def records_change_mark(*, company_id: int, records: Iterable[tuple[str, int | str]], up_to: int | None = None) -> int:
    """The newest history row id of these (entity, entity_id) records, 0 when they have none.

    It grows whenever an event for one of them is processed, so a cache of what Pipedrive said
    about the records is stale once this differs from the mark it was stored with. One query on the
    ``history_record_timeline`` index. ``up_to``: ignore rows newer than that id (a mark as of then).
    """
    by_entity: dict[str, set[str]] = {}
    for entity, entity_id in records:
        by_entity.setdefault(entity, set()).add(str(entity_id))
    if not by_entity:
        return 0
    which = Q()
    for entity, ids in sorted(by_entity.items()):
        which |= Q(entity=entity, entity_id__in=sorted(ids))
    rows = ChangeRecord.objects.filter(which, company_id=company_id)
    if up_to is not None:
        rows = rows.filter(pk__lte=up_to)
    return rows.aggregate(top=Max("pk"))["top"] or 0


# --- the floating window's feed: changes on the records one user owns ----------------------------------


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One history line of the owner feed; ``id`` is the cursor (rows only ever get larger ids)."""

    id: int
    entity: str
    entity_id: str
    record_label: str  # the record's title or name as the event carried it, or ""
    entry: HistoryEntry


def owner_feed(*, company_id: int, owner_user_id: int, after_id: int = 0, limit: int = 20) -> list[FeedEntry]:
    """The newest ``limit`` history lines, with an id above ``after_id``, of the records that
    ``owner_user_id`` owned when each change happened; newest id first. One query on the
    ``history_owner_feed`` index (company, owner, id)."""
    rows = ChangeRecord.objects.filter(company_id=company_id, owner_user_id=owner_user_id, pk__gt=after_id).order_by(
        "-pk"
    )[: max(0, int(limit))]
    return [
        FeedEntry(
            id=row.pk,
            entity=row.entity,
            entity_id=row.entity_id,
            record_label=row.record_label,
            entry=_entry(row),
        )
        for row in rows
    ]


def owner_feed_unread(
    *, company_id: int, owner_user_id: int, after_id: int, not_by_user_id: int, cap: int = 100
) -> tuple[int, int]:
    """(how many lines above ``after_id`` were made by someone other than ``not_by_user_id``, at
    most ``cap``; the newest id among all lines above ``after_id``, else ``after_id``). Two bounded
    queries on the ``history_owner_feed`` index."""
    rows = ChangeRecord.objects.filter(company_id=company_id, owner_user_id=owner_user_id, pk__gt=after_id)
    newest = rows.order_by("-pk").values_list("pk", flat=True).first() or after_id
    others = rows.exclude(actor_user_id=not_by_user_id).order_by("-pk").values_list("pk", flat=True)[:cap]
    return len(others), newest
