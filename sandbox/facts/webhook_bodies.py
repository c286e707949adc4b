"""Webhook deliveries as Pipedrive sends them, v2 and v1, shaped after the documented examples
(tests/fixtures/pipedrive_docs/webhooks/, from https://pipedrive.readme.io/docs/webhooks-v2-migration-guide
and https://pipedrive.readme.io/docs/guide-for-webhooks).

v2: ``{"data", "previous", "meta"}``; ``meta`` ids are strings; ``data`` is the record in the webhook's
own shape (not the API's: ``visible_to`` is a string, deals carry ``first_won_time``...); custom fields
are typed objects (``{"type": "enum", "id": 17}``); ``previous`` holds only what changed (all of it on
delete, when ``data`` is null). v1: ``{"v", "matches_filters", "meta", "retry", "current",
"previous", "event"}``; ``current``/``previous`` are whole v1 objects with custom-field keys at the top
level, as v1 API records are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .wire import day, iso_millis, number, rfc3339, v1_time

V1_ACTIONS = {"create": "added", "change": "updated", "delete": "deleted"}

# --- v2 data per entity: the documented keys, in the documented order, with their defaults ---------------

V2_DATA: dict[str, dict[str, Any]] = {
    "deal": {
        "add_time": None,
        "channel": None,
        "channel_id": None,
        "close_time": None,
        "creator_user_id": None,
        "currency": "EUR",
        "custom_fields": {},
        "expected_close_date": None,
        "first_won_time": None,
        "id": None,
        "label_ids": [],
        "lost_reason": None,
        "lost_time": None,
        "org_id": None,
        "origin": "API",
        "origin_id": None,
        "owner_id": None,
        "person_id": None,
        "pipeline_id": None,
        "probability": None,
        "stage_change_time": None,
        "stage_id": None,
        "status": "open",
        "title": "",
        "update_time": None,
        "value": 0,
        "visible_to": "3",
        "won_time": None,
    },
    "person": {
        "add_time": None,
        "custom_fields": {},
        "emails": [],
        "first_name": None,
        "id": None,
        "label": None,
        "last_name": None,
        "name": "",
        "org_id": None,
        "owner_id": None,
        "phones": [],
        "update_time": None,
        "visible_to": "3",
    },
    "organization": {
        "add_time": None,
        "address": None,
        "country_code": None,
        "custom_fields": {},
        "id": None,
        "label": None,
        "name": "",
        "owner_id": None,
        "picture_id": None,
        "update_time": None,
        "visible_to": "3",
    },
    "note": {
        "id": None,
        "user_id": None,
        "deal_id": None,
        "person_id": None,
        "org_id": None,
        "lead_id": None,
        "project_id": None,
        "active_flag": True,
        "content": "",
        "add_time": None,
        "update_time": None,
        "pinned_to_deal_flag": False,
        "pinned_to_person_flag": False,
        "pinned_to_organization_flag": False,
    },
    "lead": {
        "add_time": None,
        "channel": None,
        "channel_id": None,
        "creator_id": None,
        "custom_fields": {},
        "expected_close_date": None,
        "id": None,
        "is_archived": False,
        "label_ids": [],
        "next_activity_id": None,
        "organization_id": None,
        "origin": "API",
        "origin_id": None,
        "owner_id": None,
        "person_id": None,
        "source_name": "API",
        "title": "",
        "update_time": None,
        "was_seen": False,
        "value": None,
    },
    "pipeline": {
        "id": None,
        "name": "",
        "url_title": "",
        "order_nr": 1,
        "active_flag": True,
        "deal_probability": True,
        "add_time": None,
        "update_time": None,
    },
    "stage": {
        "id": None,
        "name": "",
        "active_flag": True,
        "rotten_days": None,
        "order_nr": 1,
        "deal_probability": 100,
        "rotten_flag": False,
        "add_time": None,
        "pipeline_id": None,
        "update_time": None,
    },
}
_V2_TIMES = ("add_time", "update_time", "close_time", "lost_time", "won_time", "first_won_time", "stage_change_time")
_LEAD_TIMES = ("add_time", "update_time")  # leads' times carry milliseconds


def v2_data(entity: str, values: Mapping[str, Any], field_types: Mapping[str, str]) -> dict[str, Any]:
    """The record as a v2 webhook's ``data`` carries it. ``values`` holds plain values (times as
    datetimes, custom fields as stored); ``field_types`` maps custom-field keys to their types."""
    data = {key: values.get(key, default) for key, default in V2_DATA[entity].items()}
    for key in _V2_TIMES:
        if key in data and isinstance(data[key], datetime):
            data[key] = iso_millis(data[key]) if entity == "lead" and key in _LEAD_TIMES else rfc3339(data[key])
    if "visible_to" in data and data["visible_to"] is not None:
        data["visible_to"] = str(data["visible_to"])
    if entity == "deal":
        data["value"] = number(data["value"])
    if "expected_close_date" in data:
        data["expected_close_date"] = day(data["expected_close_date"])
    if "custom_fields" in data:
        raw = dict(values.get("custom_fields") or {})
        data["custom_fields"] = {key: typed_custom_field(field_types.get(key, ""), value) for key, value in raw.items()}
    return data


def typed_custom_field(field_type: str, raw: Any) -> dict[str, Any] | None:
    """A custom field's value as webhooks v2 type it (the migration guide's *Custom fields format*).

    ``raw`` is the value as stored or sent through the API: an option id, a list of ids, a number,
    ``{"value", "currency"}``, ``{"value"/"from", "until"}``, a reference id, a string."""
    if raw is None or raw == "" or raw == []:
        return None
    parts = dict(raw) if isinstance(raw, Mapping) else {}
    scalar: Any = parts.get("value", parts.get("id")) if parts else raw
    if field_type == "enum":
        return {"id": int(scalar), "type": "enum"}
    if field_type == "set":
        ids = raw if isinstance(raw, list) else [part for part in str(raw).split(",") if part.strip()]
        return {"values": [{"id": int(item)} for item in ids], "type": "set"}
    if field_type == "monetary":
        return {"currency": str(parts.get("currency") or "EUR"), "type": "monetary", "value": number(scalar)}
    if field_type in {"double", "int"}:
        return {"type": "double", "value": number(scalar)}
    if field_type in {"user", "people", "org"}:
        return {"id": int(scalar), "type": field_type}
    if field_type == "daterange":
        return {"from": str(parts.get("from", scalar)), "until": str(parts.get("until", "")), "type": "daterange"}
    if field_type == "timerange":
        return {
            "timezone_id": int(parts.get("timezone_id") or 0),
            "from": str(parts.get("from", scalar)),
            "until": str(parts.get("until", "")),
            "type": "timerange",
        }
    if field_type == "time":
        return {"timezone_id": int(parts.get("timezone_id") or 0), "type": "time", "value": str(scalar)}
    if field_type == "address":
        text = str(scalar)
        address = dict.fromkeys(_ADDRESS_PARTS, "")
        address.update({k: str(v) for k, v in parts.items() if k in _ADDRESS_PARTS})
        return {
            **address,
            "formatted_address": str(parts.get("formatted_address") or text),
            "type": "address",
            "value": text,
        }
    # varchar, varchar_auto, text, phone, date (and anything unknown) carry their value as is.
    return {"type": field_type or "varchar", "value": scalar if isinstance(scalar, (int, float)) else str(scalar)}


_ADDRESS_PARTS = (
    "country",
    "locality",
    "sublocality",
    "subpremise",
    "route",
    "street_number",
    "admin_area_level_1",
    "admin_area_level_2",
    "postal_code",
)


# Entities whose documented change examples list the old ``update_time`` among the changed fields.
_PREVIOUS_WITH_UPDATE_TIME = frozenset({"note", "lead", "pipeline", "stage"})


def v2_previous(entity: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """A change's ``previous``: the old values of the fields that changed (custom fields key by key)."""
    previous: dict[str, Any] = {}
    for key in before.keys() | after.keys():
        if key == "update_time":
            continue
        old, new = before.get(key), after.get(key)
        if key == "custom_fields" and isinstance(old, Mapping) and isinstance(new, Mapping):
            changed = {k: old.get(k) for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
            if changed:
                previous[key] = changed
        elif old != new:
            previous[key] = old
    if previous and entity in _PREVIOUS_WITH_UPDATE_TIME and "update_time" in before:
        previous["update_time"] = before["update_time"]
    return previous


# --- v1 objects -------------------------------------------------------------------------------------------


def v1_object(entity: str, values: Mapping[str, Any], field_types: Mapping[str, str]) -> dict[str, Any]:
    """The record as v1 carries it: API v1 names and times, custom fields at the top level
    (``<key>``, plus ``<key>_currency`` / ``<key>_until`` for money and ranges)."""
    record: dict[str, Any] = {}
    for key, value in values.items():
        if key == "custom_fields":
            continue
        if isinstance(value, datetime):
            value = iso_millis(value) if entity == "lead" else v1_time(value)
        record[key] = value
    if entity == "deal":
        record["value"] = number(record.get("value"))
        record["user_id"] = record.get("owner_id")
        record["active"] = record.get("status") == "open" and not record.get("is_deleted", False)
        record["deleted"] = bool(record.pop("is_deleted", False))
    if "visible_to" in record and record["visible_to"] is not None:
        record["visible_to"] = str(record["visible_to"])
    if "expected_close_date" in record:
        record["expected_close_date"] = day(record["expected_close_date"])
    if entity in {"person", "organization"}:
        record["active_flag"] = not record.pop("is_deleted", False)
    for key, raw in dict(values.get("custom_fields") or {}).items():
        record.update(_v1_custom_field(key, field_types.get(key, ""), raw))
    return record


def _v1_custom_field(key: str, field_type: str, raw: Any) -> dict[str, Any]:
    parts = dict(raw) if isinstance(raw, Mapping) else {}
    scalar = parts.get("value", parts.get("id")) if parts else raw
    if raw is None:
        return {key: None}
    if field_type == "set":
        ids = raw if isinstance(raw, list) else str(raw).split(",")
        return {key: ",".join(str(item).strip() for item in ids)}
    if field_type == "monetary":
        return {key: number(scalar), f"{key}_currency": str(parts.get("currency") or "EUR")}
    if field_type in {"daterange", "timerange"}:
        return {key: parts.get("from", scalar), f"{key}_until": parts.get("until")}
    if field_type in {"double", "int"}:
        return {key: number(scalar)}
    return {key: scalar}


# --- bodies -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """Who and what a delivery is about (everything but the record)."""

    action: str  # create | change | delete
    entity: str
    entity_id: str
    company_id: int
    user_id: int
    event_id: str
    correlation_id: str
    occurred_at: datetime
    webhook_id: int
    webhook_owner_id: int
    webhook_type: str
    permitted_user_id: int
    change_source: str  # "app" or "api"
    attempt: int
    host: str  # the company's host, e.g. "acme.pipedrive.com"


def body_v2(delivery: Delivery, *, data: Any, previous: Any) -> dict[str, Any]:
    return {
        "data": data if delivery.action != "delete" else None,
        "previous": previous if delivery.action != "create" else None,
        "meta": {
            "action": delivery.action,
            "company_id": str(delivery.company_id),
            "correlation_id": delivery.correlation_id,
            "entity_id": str(delivery.entity_id),
            "entity": delivery.entity,
            "id": delivery.event_id,
            "is_bulk_edit": False,
            "timestamp": iso_millis(delivery.occurred_at),
            "type": delivery.webhook_type,
            "user_id": str(delivery.user_id),
            "version": "2.0",
            "webhook_id": str(delivery.webhook_id),
            "webhook_owner_id": str(delivery.webhook_owner_id),
            "change_source": delivery.change_source,
            "attempt": delivery.attempt,
            "host": delivery.host,
        },
    }


def body_v1(delivery: Delivery, *, current: Any, previous: Any) -> dict[str, Any]:
    action = V1_ACTIONS[delivery.action]
    return {
        "v": 1,
        "matches_filters": {"current": [], "previous": []},
        "meta": {
            "v": 1,
            "action": action,
            "object": delivery.entity,
            "change_source": delivery.change_source,
            "id": str(delivery.entity_id),
            "company_id": str(delivery.company_id),
            "user_id": str(delivery.user_id),
            "host": delivery.host,
            "timestamp": int(delivery.occurred_at.timestamp()),
            "timestamp_micro": int(delivery.occurred_at.timestamp() * 1_000_000),
            "permitted_user_ids": [str(delivery.permitted_user_id)],
            "trans_pending": False,
            "is_bulk_update": False,
            "pipedrive_service_name": False,
            "matches_filters": {"current": [], "previous": []},
            "webhook_id": str(delivery.webhook_id),
        },
        "retry": delivery.attempt - 1,
        "current": current if delivery.action != "delete" else None,
        "previous": previous if delivery.action != "create" else None,
        "event": f"{action}.{delivery.entity}",
    }
