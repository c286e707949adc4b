"""Reading a webhook delivery: v2 and v1 bodies (docs/pipedrive-platform.md §4) into one shape.

Nothing here touches the database. ``delivery_parse`` raises ``InvalidDelivery`` with a short reason
for anything that is not a well-formed Pipedrive event; the receiver answers 400 with it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# v1 actions mapped to v2's words; v1 alone has "merged" (v2 sends a delete plus a change).
V1_ACTIONS = {"added": "create", "updated": "change", "deleted": "delete", "merged": "merge"}
V2_ACTIONS = frozenset({"create", "change", "delete"})
_ENTITY = re.compile(r"^[a-zA-Z][a-zA-Z_]{0,31}$")
_EVENT_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_MAX_ID = 2**63 - 1
_MAX_CHANGE_SOURCE = 64


class InvalidDelivery(ValueError):
    """The body is not a Pipedrive webhook event; ``reason`` is safe to send back."""

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
    entity_id: int
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


def delivery_parse(body: bytes) -> Delivery:
    try:
        text = body.decode("utf-8")
        payload = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidDelivery("body is not UTF-8 JSON") from None
    return delivery_from_payload(payload)


def delivery_from_payload(payload: Any) -> Delivery:
    if not isinstance(payload, dict):
        raise InvalidDelivery("body is not a JSON object")
    meta = payload.get("meta")
    if not isinstance(meta, dict):
        raise InvalidDelivery("meta is missing")
    if meta.get("version") == "2.0":
        return _v2(payload, meta)
    if payload.get("v") in (1, "1") or meta.get("v") in (1, "1"):
        return _v1(payload, meta)
    raise InvalidDelivery("neither a v2 (meta.version 2.0) nor a v1 (v: 1) event")


def _v2(payload: dict[str, Any], meta: dict[str, Any]) -> Delivery:
    action = meta.get("action")
    if action not in V2_ACTIONS:
        raise InvalidDelivery("meta.action must be create, change or delete")
    event_id = _text_id(meta.get("id"), "meta.id")
    data, previous = payload.get("data"), payload.get("previous")
    if data is not None and not isinstance(data, dict):
        raise InvalidDelivery("data must be an object or null")
    if previous is not None and not isinstance(previous, dict):
        raise InvalidDelivery("previous must be an object or null")
    entity_id = _positive_id(meta.get("entity_id"), "meta.entity_id")
    merged = tuple(
        sorted(
            {
                number
                for key, value in meta.items()
                if "merge" in str(key).lower()
                for number in _ids_in(value)
                if number != entity_id
            }
        )
    )
    return Delivery(
        version="2.0",
        dedup_key=f"v2:{event_id}",
        pipedrive_company_id=_positive_id(meta.get("company_id"), "meta.company_id"),
        entity=_entity(meta.get("entity"), "meta.entity"),
        action=action,
        entity_id=entity_id,
        occurred_at=_timestamp(meta.get("timestamp")),
        user_id=_optional_id(meta.get("user_id")),
        change_source=_short(meta.get("change_source")),
        attempt=_optional_id(meta.get("attempt")) or 1,
        data=data,
        previous=previous,
        meta=meta,
        merged_with_ids=merged,
    )


def _v1(payload: dict[str, Any], meta: dict[str, Any]) -> Delivery:
    raw_action = meta.get("action")
    if raw_action not in V1_ACTIONS:
        raise InvalidDelivery("meta.action must be added, updated, deleted or merged")
    action = V1_ACTIONS[raw_action]
    current, previous = payload.get("current"), payload.get("previous")
    if current is not None and not isinstance(current, dict):
        raise InvalidDelivery("current must be an object or null")
    if previous is not None and not isinstance(previous, dict):
        raise InvalidDelivery("previous must be an object or null")
    entity = _entity(meta.get("object"), "meta.object")
    entity_id = _positive_id(meta.get("id"), "meta.id")
    company_id = _positive_id(meta.get("company_id"), "meta.company_id")
    occurred_at = _timestamp(meta.get("timestamp"))
    merged: tuple[int, ...] = ()
    if action == "merge":
        others = {_optional_id(obj.get("id")) for obj in (current, previous) if isinstance(obj, dict)}
        merged = tuple(sorted(i for i in others if i is not None and i != entity_id))
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
    digest = hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()
    return Delivery(
        version="1.0",
        dedup_key=f"v1:{digest}",
        pipedrive_company_id=company_id,
        entity=entity,
        action=action,
        entity_id=entity_id,
        occurred_at=occurred_at,
        user_id=_optional_id(meta.get("user_id")),
        change_source=_short(meta.get("change_source")),
        attempt=(_optional_id(payload.get("retry")) or 0) + 1,
        data=current,
        previous=previous,
        meta=meta,
        merged_with_ids=merged,
    )


# --- field checks -------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    # Ids may arrive as strings (docs/guide-for-webhooks-v2).
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 19:
        return int(value.strip())
    if isinstance(value, float) and value.is_integer() and abs(value) < _MAX_ID:
        return int(value)
    return None


def _positive_id(value: Any, name: str) -> int:
    number = _int(value)
    if number is None or not 0 < number <= _MAX_ID:
        raise InvalidDelivery(f"{name} must be a positive integer id")
    return number


def _optional_id(value: Any) -> int | None:
    number = _int(value)
    return number if number is not None and 0 < number <= _MAX_ID else None


def _ids_in(value: Any) -> list[int]:
    items = value if isinstance(value, list) else [value]
    return [n for n in (_optional_id(item) for item in items) if n is not None]


def _text_id(value: Any, name: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _EVENT_ID.match(value):
        raise InvalidDelivery(f"{name} must be an event id")
    return value


def _entity(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _ENTITY.match(value):
        raise InvalidDelivery(f"{name} must name an object such as deal or person")
    return value


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
        raise InvalidDelivery("meta.timestamp must be a time")
    return parsed


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
