"""Custom field values as a person reads them on the sandbox's record pages.

``custom_fields`` is keyed by the field's 40-character hash key; a value may be stored raw (an option
id, a number, a date) or as Pipedrive's v2 typed object (``{"type": "enum", "id": 17}``,
``{"type": "monetary", "value": .., "currency": ..}``, ``{"type": "daterange", "from": .., "until": ..}``,
references by id). Either way the page shows the field's name and a readable value: option labels,
money with its currency, date ranges, names of the people, organizations and users referred to.
Never raw JSON, never a bare id where a name is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import formats

from .models import FieldDefinition, Organization, Person, SandboxCompany, SandboxUser

EMPTY = "—"


@dataclass(frozen=True)
class FieldShown:
    key: str
    name: str
    value: str


def custom_fields_display(*, company: SandboxCompany, entity: str, values: dict[str, Any] | None) -> list[FieldShown]:
    """Every defined custom field of ``entity`` (in definition order), then any unknown keys."""
    values = dict(values or {})
    definitions = list(FieldDefinition.objects.filter(company=company, entity=entity).order_by("pk"))
    shown = [
        FieldShown(
            key=d.key, name=d.name, value=_display(company, d.field_type, d.options, values.get(d.key), values, d.key)
        )
        for d in definitions
    ]
    known = {d.key for d in definitions}
    for key, value in values.items():
        if key in known or (key.endswith("_currency") and key.removesuffix("_currency") in known):
            continue
        shown.append(FieldShown(key=key, name=f"Field {key[:8]}…", value=_display(company, "", [], value, values, key)))
    return shown


def _display(
    company: SandboxCompany, field_type: str, options: list[Any], value: Any, values: dict[str, Any], key: str
) -> str:
    if value is None or value == "" or value == []:
        return EMPTY
    typed = value if isinstance(value, dict) and "type" in value else None
    kind = (typed or {}).get("type") or field_type
    if kind == "enum":
        return _option_label(options, typed.get("id") if typed else value)
    if kind == "set":
        ids = [v.get("id") for v in typed.get("values", [])] if typed else _as_list(value)
        return ", ".join(_option_label(options, option) for option in ids) or EMPTY
    if kind == "monetary":
        amount = typed.get("value") if typed else value
        currency = (typed.get("currency") if typed else values.get(f"{key}_currency")) or ""
        return f"{_number(amount)} {currency}".strip()
    if kind in {"int", "double"}:
        return _number(typed.get("value") if typed else value)
    if kind == "date":
        return _date(typed.get("value") if typed else value)
    if kind in {"daterange", "timerange"}:
        start = typed.get("from") if typed else value
        end = typed.get("until") if typed else values.get(f"{key}_until")
        show = _date if kind == "daterange" else str
        return f"{show(start)} \u2013 {show(end)}" if end else show(start)
    if kind in {"user", "people", "org"}:
        return _reference(company, kind, typed.get("id") if typed else value)
    if typed is not None:
        inner = typed.get("value", typed.get("formatted_address"))
        return str(inner) if inner not in (None, "") else EMPTY
    if isinstance(value, dict):
        return str(value.get("value") or value.get("name") or EMPTY)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [part for part in str(value).split(",") if part.strip()]


def _option_label(options: list[Any], option_id: Any) -> str:
    for option in options or []:
        if isinstance(option, dict) and str(option.get("id")) == str(option_id).strip():
            return str(option.get("label"))
    return f"Option {option_id} (deleted)"


def _number(value: Any) -> str:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number:,.2f}"


def _date(value: Any) -> str:
    try:
        return formats.date_format(date.fromisoformat(str(value)[:10]), "DATE_FORMAT")
    except ValueError:
        return str(value)


def _reference(company: SandboxCompany, kind: str, record_id: Any) -> str:
    model: Any = {"user": SandboxUser, "people": Person, "org": Organization}[kind]
    try:
        record = model.objects.filter(company=company, pk=int(record_id)).first()
    except (TypeError, ValueError):
        record = None
    noun = {"user": "User", "people": "Person", "org": "Organization"}[kind]
    return record.name if record is not None else f"{noun} #{record_id} (not found)"
