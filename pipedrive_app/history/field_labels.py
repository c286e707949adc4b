"""How Pipedrive shows fields and values: built-in labels, custom-field definitions, display text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

CUSTOM_FIELD_KEY = re.compile(r"^[0-9a-f]{40}$")
# v1 puts a custom field's parts beside it: "<key>_currency" (money), "<key>_until" (ranges), and
# for addresses "<key>_locality" and the like (docs/pipedrive-platform.md §4, v1 bodies).
CUSTOM_SUBFIELD_KEY = re.compile(r"^([0-9a-f]{40})_([a-z][a-z0-9_]{0,40})$")
UNRESOLVED_CUSTOM_LABEL = "Custom field"

# Standard fields as Pipedrive's UI labels them.
_COMMON = {
    "owner_id": "Owner",
    "user_id": "Owner",
    "creator_user_id": "Creator",
    "org_id": "Organization",
    "person_id": "Contact person",
    "label_ids": "Labels",
    "label": "Label",
    "visible_to": "Visible to",
    "add_time": "Created",
    "name": "Name",
    "currency": "Currency",
    "is_deleted": "Deleted",
    "is_archived": "Archived",
}
BUILT_IN_LABELS: dict[str, dict[str, str]] = {
    "deal": {
        "title": "Title",
        "value": "Value",
        "stage_id": "Stage",
        "pipeline_id": "Pipeline",
        "status": "Status",
        "probability": "Probability",
        "lost_reason": "Lost reason",
        "expected_close_date": "Expected close date",
        "close_time": "Deal closed on",
        "won_time": "Won time",
        "lost_time": "Lost time",
        "stage_change_time": "Last stage change",
        "origin": "Source origin",
        "channel": "Source channel",
        "add_time": "Deal created",
    },
    "person": {
        "first_name": "First name",
        "last_name": "Last name",
        "emails": "Email",
        "email": "Email",
        "phones": "Phone",
        "phone": "Phone",
        "job_title": "Job title",
        "birthday": "Birthday",
        "postal_address": "Postal address",
        "marketing_status": "Marketing status",
    },
    "organization": {"address": "Address"},
    "activity": {
        "subject": "Subject",
        "type": "Type",
        "due_date": "Due date",
        "due_time": "Due time",
        "duration": "Duration",
        "done": "Done",
        "note": "Note",
        "deal_id": "Deal",
        "location": "Location",
    },
    "product": {"code": "Product code", "unit": "Unit", "tax": "Tax", "prices": "Prices"},
    "note": {"content": "Content", "deal_id": "Deal", "pinned_to_deal_flag": "Pinned to deal"},
    "pipeline": {
        "deal_probability": "Deal probability",
        "active_flag": "Active",
        "order_nr": "Order",
        "url_title": "URL title",
    },
    "stage": {
        "deal_probability": "Deal probability",
        "rotten_flag": "Rotting",
        "rotten_days": "Rotting after (days)",
        "active_flag": "Active",
        "order_nr": "Order",
        "pipeline_id": "Pipeline",
    },
    "lead": {
        "title": "Title",
        "value": "Value",
        "expected_close_date": "Expected close date",
        "organization_id": "Organization",
        "creator_id": "Creator",
        "was_seen": "Seen",
        "source_name": "Source",
        "origin": "Source origin",
        "channel": "Source channel",
    },
}
BUILT_IN_OPTIONS: dict[str, dict[str, str]] = {
    "status": {"open": "Open", "won": "Won", "lost": "Lost", "deleted": "Deleted"},
}


@dataclass(frozen=True)
class FieldInfo:
    key: str
    name: str
    field_type: str = ""
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldLabels:
    """The definitions known for one company and entity (from the ``*Fields`` cache)."""

    entity: str
    definitions: Mapping[str, FieldInfo] = field(default_factory=dict)

    def label(self, key: str) -> str:
        built_in = BUILT_IN_LABELS.get(self.entity, {}).get(key) or _COMMON.get(key)
        if built_in:
            return built_in
        known = self.definitions.get(key)
        if known is not None and known.name and not CUSTOM_FIELD_KEY.match(known.name):
            return known.name
        if CUSTOM_FIELD_KEY.match(key):
            return UNRESOLVED_CUSTOM_LABEL  # never show a raw hash key
        part = CUSTOM_SUBFIELD_KEY.match(key)
        if part:
            return f"{self.label(part.group(1))} ({_humanize(part.group(2)).lower()})"
        return _humanize(key)

    def display(self, key: str, value: Any, *, record: Mapping[str, Any] | None = None) -> str:
        info = self.definitions.get(key)
        options = dict(BUILT_IN_OPTIONS.get(key, {}))
        if info is not None:
            options.update(info.options)
        text = value_display(value, options=options)
        if text and key == "value" and record and isinstance(record.get("currency"), str):
            text = f"{text} {record['currency']}"
        if text and record and CUSTOM_FIELD_KEY.match(key):  # v1: the parts beside the field
            currency, until = record.get(f"{key}_currency"), record.get(f"{key}_until")
            if isinstance(currency, str) and currency:
                text = f"{text} {currency}"
            if isinstance(until, str) and until:
                text = f"{text}{RANGE_DASH}{until}"
        return text


def _humanize(key: str) -> str:
    words = key.removesuffix("_id").removesuffix("_ids").replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else "Field"


def _number(value: Any) -> str:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if number == number.to_integral_value():
        return str(number.quantize(Decimal(1)))
    return format(number.normalize(), "f")


# v2 typed custom-field values that name another record (migration guide, "Custom fields format in
# webhooks v2"): their display is the record's name, resolved by history.references.
TYPED_REFERENCE_KINDS = {"org": "organization", "people": "person", "user": "user"}
RANGE_DASH = " \u2013 "


def value_display(value: Any, *, options: Mapping[str, str] | None = None) -> str:
    """Text for a field value as a person reads it; option ids become their labels. Never raw JSON."""
    options = options or {}
    if value is None or value == "" or value == [] or value == {}:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, Mapping):
        return _mapping_display(value, options)
    if isinstance(value, list):
        parts = [value_display(item, options=options) for item in value]
        return ", ".join(part for part in parts if part)
    if options:
        text = str(value)
        if "," in text and not isinstance(value, (int, float)):
            return ", ".join(options.get(part.strip(), part.strip()) for part in text.split(",") if part.strip())
        if text in options:
            return options[text]
    if isinstance(value, (int, float)):
        return _number(value)
    return str(value)


def _with_currency(amount: Any, currency: Any) -> str:
    text = value_display(amount)
    return f"{text} {currency}" if text and isinstance(currency, str) and currency else text


def _time(value: Any) -> str:
    """ "00:45:00" -> "00:45" (Pipedrive's time fields are minutes)."""
    text = value_display(value)
    return text[:-3] if len(text) == 8 and text[2] == ":" and text.endswith(":00") else text


def _mapping_display(value: Mapping[str, Any], options: Mapping[str, str]) -> str:  # noqa: C901  (flat: one case per shape)
    """v2 typed custom-field values ({"type": ..., "id" | "value" | "values" | "from"/"until"}), a
    lead's value ({"amount", "currency"}), product prices, and v1 related objects ({"name", "value"})."""
    kind = value.get("type")
    if kind in ("daterange", "timerange") or ("from" in value and "until" in value):
        show = _time if kind == "timerange" else value_display
        start, until = show(value.get("from")), show(value.get("until"))
        return RANGE_DASH.join(part for part in (start, until) if part)
    if kind == "time":
        return _time(value.get("value"))
    if kind == "monetary" or ("value" in value and "currency" in value):
        return _with_currency(value.get("value"), value.get("currency"))
    if "amount" in value and not isinstance(value["amount"], (dict, list)):  # a lead's value
        return _with_currency(value["amount"], value.get("currency"))
    if "price" in value and not isinstance(value["price"], (dict, list)):  # a product's price
        return _with_currency(value["price"], value.get("currency"))
    if isinstance(value.get("values"), list):  # set
        return value_display(value["values"], options=options)
    if "name" in value and isinstance(value["name"], str):
        return value["name"]
    if kind == "address" or "formatted_address" in value:
        return value_display(value.get("value") or value.get("formatted_address"))
    if "id" in value and isinstance(value["id"], (int, str)) and not isinstance(value["id"], bool):
        label = options.get(str(value["id"]))
        if label:
            return label
        noun = {"org": "Organization", "people": "Person", "user": "User"}.get(str(kind), "Option")
        return f"{noun} #{value['id']}"
    if "value" in value:
        return value_display(value["value"], options=options)
    if "label" in value and isinstance(value["label"], str):
        return value["label"]
    # Anything else: its parts, labelled, as a person would read them (never JSON).
    parts = [
        f"{_humanize(str(key))}: {text}"
        for key, item in value.items()
        if key != "type" and (text := value_display(item, options=options))
    ]
    return ", ".join(parts)


# Pipedrive's dates and times: v2 "2026-11-29T17:02:11Z", v1 "2026-11-29 17:02:11" (UTC), dates
# "2026-11-29". Only whole values of these shapes count: text that merely contains a date is text.
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$")


def temporal_value(value: Any) -> date | datetime | None:
    """The date (calendar day, no zone) or aware datetime a field value holds, else None.

    Accepts the raw value as stored on a history row: a string, or a v2 typed custom field value
    (``{"type": "date", "value": "2026-11-29"}``). Datetimes without an offset are UTC, as
    Pipedrive's v1 timestamps are.
    """
    if isinstance(value, Mapping):
        value = value.get("value")
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if _DATE.match(text):
            return date.fromisoformat(text)
        if _DATE_TIME.match(text):
            moment = datetime.fromisoformat(text.replace(" ", "T", 1).replace("Z", "+00:00"))
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    except ValueError:
        return None
    return None
