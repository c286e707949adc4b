"""Reading a webhook delivery: v2 and v1 bodies (docs/pipedrive-platform.md §4) into one shape.

Nothing here touches the database. Pipedrive bans, then deletes, a webhook whose deliveries fail, so
an authenticated delivery is refused only when its body cannot be read at all: ``delivery_parse``
raises ``InvalidDelivery`` for a body that is not UTF-8 JSON, and for anything else returns either a
``Delivery`` or an ``UnreadableDelivery`` (an event whose content the app cannot use, kept with the
reason, acknowledged and never processed).

Record ids are text: most are integers ("42"), but a lead's id is a UUID (migration guide, "Lead").
Every string the app stores from a delivery is cleaned of what PostgreSQL cannot hold (NUL, lone
surrogates) and values nested deeper than ``VALUE_MAX_DEPTH`` are replaced by a short marker.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipedrive_app.core.parsing import ParseError, id_or_none, id_parse, json_clean, text_clean, uuid_parse

# v1 actions mapped to v2's words; v1 alone has "merged" (v2 sends a delete plus a change).
V1_ACTIONS = {"added": "create", "updated": "change", "deleted": "delete", "merged": "merge"}
V2_ACTIONS = frozenset({"create", "change", "delete"})
_ENTITY = re.compile(r"[a-zA-Z][a-zA-Z_]{0,31}")
_EVENT_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_MAX_CHANGE_SOURCE = 64
RECORD_ID_MAX_CHARS = 64
# A field value deeper than this (Pipedrive's are a few levels at most) is not stored as such.
VALUE_MAX_DEPTH = 32
TOO_DEEP = "(value nested too deeply to store)"
# Fields a retry of the same delivery may change; they never take part in an event's identity.
_DELIVERY_ONLY_META = frozenset({"attempt", "webhook_id", "webhook_owner_id", "host"})


class InvalidDelivery(ValueError):
    """The body cannot be read at all (not UTF-8 JSON); ``reason`` is safe to send back."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Unusable(Exception):
    """Internal: the event's content cannot be used; becomes an ``UnreadableDelivery``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    """One event, whichever webhook version carried it."""

    version: str  # "2.0" or "1.0"
    dedup_key: str
    pipedrive_company_id: int
    entity: str
    action: str  # create | change | delete | merge
    entity_id: str  # "42", or a lead's UUID
    occurred_at: datetime
    user_id: int | None
    change_source: str
    attempt: int
    # v2 ``data``/``previous``; v1 ``current``/``previous`` (v1's previous is the whole old object).
    data: dict[str, Any] | None
    previous: dict[str, Any] | None
    meta: dict[str, Any] = field(repr=False)
    # Ids of the other record of a merge, if the event names one.
    merged_with_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class UnreadableDelivery:
    """An authenticated delivery whose content the app cannot use: stored, acknowledged, not processed."""

    reason: str
    dedup_key: str
    version: str = ""
    entity: str = "unknown"
    action: str = "unknown"
    entity_id: str | None = None
    pipedrive_company_id: int | None = None


def delivery_parse(body: bytes) -> Delivery | UnreadableDelivery:
    """Raises ``InvalidDelivery`` only when the body is not UTF-8 JSON."""
    try:
        text = body.decode("utf-8")
        payload = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidDelivery("body is not UTF-8 JSON") from None
    return delivery_from_payload(payload)


def delivery_from_payload(payload: Any) -> Delivery | UnreadableDelivery:
    try:
        return _delivery(payload)
    except _Unusable as exc:
        return _unreadable(payload, exc.reason)
    except (RecursionError, ParseError) as exc:  # a pathological body: still never an error
        return _unreadable(payload, f"unreadable content: {type(exc).__name__}")


def _delivery(payload: Any) -> Delivery:
    if not isinstance(payload, dict):
        raise _Unusable("body is not a JSON object")
    meta = payload.get("meta")
    if not isinstance(meta, dict):
        raise _Unusable("meta is missing")
    if meta.get("version") == "2.0":
        return _v2(payload, meta)
    if payload.get("v") in (1, "1") or meta.get("v") in (1, "1"):
        return _v1(payload, meta)
    raise _Unusable("neither a v2 (meta.version 2.0) nor a v1 (v: 1) event")


def _v2(payload: dict[str, Any], meta: dict[str, Any]) -> Delivery:
    action = meta.get("action")
    if action not in V2_ACTIONS:
        raise _Unusable("meta.action must be create, change or delete")
    event_id = _text_id(meta.get("id"), "meta.id")
    data, previous = _object_or_none(payload.get("data"), "data"), _object_or_none(payload.get("previous"), "previous")
    entity = _entity(meta.get("entity"), "meta.entity")
    entity_id = _record_id(meta.get("entity_id"), "meta.entity_id")
    merged = tuple(
        sorted(
            {
                number
                for key, value in meta.items()
                if "merge" in str(key).lower()
                for number in _ids_in(value)
                if str(number) != entity_id
            }
        )
    )
    return Delivery(
        version="2.0",
        dedup_key=_v2_key(
            meta=meta, entity=entity, entity_id=entity_id, event_id=event_id, data=data, previous=previous
        ),
        pipedrive_company_id=_positive_id(meta.get("company_id"), "meta.company_id"),
        entity=entity,
        action=action,
        entity_id=entity_id,
        occurred_at=_timestamp(meta.get("timestamp")),
        user_id=id_or_none(value=meta.get("user_id")),
        change_source=_short(meta.get("change_source")),
        attempt=id_or_none(value=meta.get("attempt")) or 1,
        data=_values_clean(data),
        previous=_values_clean(previous),
        meta=_values_clean(meta) or {},
        merged_with_ids=merged,
    )


def _v2_key(
    *,
    meta: Mapping[str, Any],
    entity: str,
    entity_id: str,
    event_id: str,
    data: Mapping[str, Any] | None,
    previous: Mapping[str, Any] | None,
) -> str:
    """The inbox key of a v2 event: the same for every attempt of one delivery, distinct per change.

    ``meta.id`` is re-sent unchanged with a higher ``meta.attempt`` when a delivery is retried (Guide
    for webhooks v2, "Retry logic"), but it is not unique per change: in the migration guide's
    ``user`` examples it is the user's own id, the same for every change to that user. So the key
    also holds the entity, its id and ``meta.correlation_id`` (a fresh UUID per change in every
    documented example, repeated by a retry). Without a correlation id, the event's content
    (timestamp, data, previous), which a retry repeats, stands in for it.
    """
    correlation = meta.get("correlation_id")
    identity: dict[str, Any] = {"entity": entity, "entity_id": entity_id, "id": event_id}
    if isinstance(correlation, str) and correlation.strip():
        identity["correlation_id"] = correlation.strip()
    else:
        identity["content"] = {"timestamp": meta.get("timestamp"), "data": data, "previous": previous}
    return f"v2:{event_id}:{_digest(identity)[:32]}"


def _v1(payload: dict[str, Any], meta: dict[str, Any]) -> Delivery:
    raw_action = meta.get("action")
    if raw_action not in V1_ACTIONS:
        raise _Unusable("meta.action must be added, updated, deleted or merged")
    action = V1_ACTIONS[raw_action]
    current = _object_or_none(payload.get("current"), "current")
    previous = _object_or_none(payload.get("previous"), "previous")
    entity = _entity(meta.get("object"), "meta.object")
    entity_id = _record_id(meta.get("id"), "meta.id")
    company_id = _positive_id(meta.get("company_id"), "meta.company_id")
    occurred_at = _timestamp(meta.get("timestamp"))
    merged: tuple[int, ...] = ()
    if action == "merge":
        others = {id_or_none(value=obj.get("id")) for obj in (current, previous) if isinstance(obj, dict)}
        merged = tuple(sorted(i for i in others if i is not None and str(i) != entity_id))
    # v1 has no event id. A retry repeats the event's meta and objects; only ``retry`` (and the
    # webhook it went through) differ, so the digest leaves those out.
    stable = {
        "object": entity,
        "action": raw_action,
        "id": entity_id,
        "company_id": company_id,
        "user_id": meta.get("user_id"),
        "timestamp": meta.get("timestamp"),
        "timestamp_micro": meta.get("timestamp_micro"),
        "current": current,
        "previous": previous,
    }
    return Delivery(
        version="1.0",
        dedup_key=f"v1:{_digest(stable)}",
        pipedrive_company_id=company_id,
        entity=entity,
        action=action,
        entity_id=entity_id,
        occurred_at=occurred_at,
        user_id=id_or_none(value=meta.get("user_id")),
        change_source=_short(meta.get("change_source")),
        attempt=(id_or_none(value=payload.get("retry"), allow_zero=True) or 0) + 1,
        data=_values_clean(current),
        previous=_values_clean(previous),
        meta=_values_clean(meta) or {},
        merged_with_ids=merged,
    )


def _unreadable(payload: Any, reason: str) -> UnreadableDelivery:
    """What can be said about an unusable event, keyed so that its retries are still one row."""
    meta = payload.get("meta") if isinstance(payload, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    identity: Any = payload
    if isinstance(payload, dict):
        identity = {key: value for key, value in payload.items() if key != "retry"}
        identity["meta"] = {key: value for key, value in meta.items() if key not in _DELIVERY_ONLY_META}
    entity = meta.get("entity", meta.get("object"))
    action = meta.get("action")
    version = "2.0" if meta.get("version") == "2.0" else "1.0" if meta.get("v") in (1, "1") else ""
    record_id: str | None
    try:
        record_id = _record_id(meta.get("entity_id", meta.get("id")), "id")
    except _Unusable:
        record_id = None
    return UnreadableDelivery(
        reason=text_clean(reason)[:500],
        dedup_key=f"bad:{_digest(identity)}",
        version=version,
        entity=entity if isinstance(entity, str) and _ENTITY.fullmatch(entity) else "unknown",
        action=action if isinstance(action, str) and _ENTITY.fullmatch(action[:16]) else "unknown",
        entity_id=record_id if version else None,
        pipedrive_company_id=id_or_none(value=meta.get("company_id")),
    )


# --- field checks -------------------------------------------------------------------------------


def _digest(value: Any) -> str:
    try:
        text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=True)
    except (RecursionError, ValueError):
        text = repr(type(value))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _positive_id(value: Any, name: str) -> int:
    try:
        return id_parse(value=value, name=name)
    except ParseError as exc:
        raise _Unusable(f"{name} must be a positive integer id") from exc


def _record_id(value: Any, name: str) -> str:
    """A record's id as text: an integer id ("42") or, for leads, a UUID in canonical lower case."""
    number = id_or_none(value=value)
    if number is not None:
        return str(number)
    try:
        return str(uuid_parse(value=value, name=name))
    except ParseError:
        raise _Unusable(f"{name} must be a positive integer id or a UUID") from None


def _ids_in(value: Any) -> list[int]:
    items = value if isinstance(value, list) else [value]
    return [n for n in (id_or_none(value=item) for item in items) if n is not None]


def _text_id(value: Any, name: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _EVENT_ID.fullmatch(value):
        raise _Unusable(f"{name} must be an event id")
    return value


def _entity(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _ENTITY.fullmatch(value):
        raise _Unusable(f"{name} must name an object such as deal or person")
    return value


def _object_or_none(value: Any, name: str) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise _Unusable(f"{name} must be an object or null")
    return value


def _values_clean(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record with text PostgreSQL cannot store cleaned, and over-deep values replaced."""
    if record is None:
        return None
    cleaned: dict[str, Any] = {}
    for key, value in record.items():
        try:
            cleaned[text_clean(str(key))] = json_clean(value, max_depth=VALUE_MAX_DEPTH)
        except ParseError:
            cleaned[text_clean(str(key))] = TOO_DEEP
    return cleaned


def _short(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in value if ch.isprintable())[:_MAX_CHANGE_SOURCE]


def timestamp_parse(value: Any) -> datetime | None:
    """v2 sends ISO 8601 ("2025-01-02T10:00:00.123Z"); v1 epoch seconds. Accept both, and ms."""
    if isinstance(value, bool):
        return None
    number: float | None = None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
            except ValueError:
                return None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if number is None or number != number or number <= 0:  # NaN
        return None
    if number > 1e11:  # milliseconds
        number /= 1000
    try:
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _timestamp(value: Any) -> datetime:
    parsed = timestamp_parse(value)
    if parsed is None or not 2000 <= parsed.year <= 2200:
        raise _Unusable("meta.timestamp must be a time")
    return parsed


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
