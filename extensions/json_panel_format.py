"""Pipedrive's JSON panel format, as Developer Hub takes it and as Pipedrive renders it.

A JSON panel's "JSON data structure" uploaded to Developer Hub is a JSON Schema of the response's
``data`` (an array of objects, or one object) in Pipedrive's own template format: every field is
``{"$ref": "#/definitions/<type>"}`` with an optional ``label``, and ``#/definitions`` is Pipedrive's,
not the file's (the templates in pipedrive/example-apps json-samples/ carry no definitions). The
field types and the formats Pipedrive expects for each are listed on
https://pipedrive.readme.io/docs/json-panels-adding-a-panel ("Fields"); ``DEFINITIONS`` below is our
reading of that table, written as JSON Schema so that tests (and the sandbox, which renders the
panels as Pipedrive would) can check a response against the uploaded file:

- additional properties are refused ("the additionalProperties keyword is set to false by default");
- at most 10 objects of at most 20 fields besides ``header``;
- a property may be ``null`` (shown empty);
- ``text`` is a string or ``{"markdown": true, "value": ...}``; ``link`` a URL string or
  ``{"label"?, "value", "external"}``; ``currency`` ``{"code", "value"}``; ``label``
  ``{"color", "label"}`` with the colours green, red, blue, yellow, purple, grey; ``tags`` an array of
  strings; ``date`` YYYY-MM-DD; ``time`` hh:mm:ss with a zone; ``date-time`` an ISO 8601 stamp.

An error is any status above 300 with ``{"error": {"title", "subtitle"?, "action"?}}``, the title at
most 30 characters.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

DOCS_URL = "https://pipedrive.readme.io/docs/json-panels-adding-a-panel"
SCHEMA_DIR = Path(__file__).resolve().parent / "json_panel_schemas"
MAX_OBJECTS = 10
MAX_FIELDS = 20  # besides header
ERROR_TITLE_MAX = 30
LABEL_COLORS = ("green", "red", "blue", "yellow", "purple", "grey")
# The keys Pipedrive's templates use in a data structure file, and nothing else.
TEMPLATE_KEYS = frozenset({"type", "items", "required", "properties", "$ref", "label"})

_DATE = r"^\d{4}-\d{2}-\d{2}$"
_ZONE = r"(Z|[+-]\d{2}:?\d{2})"
_NUMERIC_TEXT = r"^-?\d+([.,]\d+)?$"

_CORE: dict[str, dict[str, Any]] = {
    "header": {"type": "string"},
    "text": {
        "anyOf": [
            {"type": "string"},
            {
                "type": "object",
                "properties": {"markdown": {"type": "boolean"}, "value": {"type": "string"}},
                "required": ["value"],
                "additionalProperties": False,
            },
        ]
    },
    "numerical": {"anyOf": [{"type": "number"}, {"type": "string", "pattern": _NUMERIC_TEXT}]},
    "date": {"type": "string", "pattern": _DATE},
    "time": {"type": "string", "pattern": rf"^\d{{2}}:\d{{2}}(:\d{{2}}(\.\d+)?)?{_ZONE}?$"},
    "date-time": {"type": "string", "pattern": rf"^\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}:\d{{2}}(:\d{{2}}(\.\d+)?)?{_ZONE}$"},
    "email": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+$"},
    "link": {
        "anyOf": [
            {"type": "string", "pattern": r"^https?://"},
            {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "value": {"type": "string", "pattern": r"^https?://"},
                    "external": {"type": "boolean"},
                },
                "required": ["value", "external"],
                "additionalProperties": False,
            },
        ]
    },
    "phone": {"type": "string"},
    "address": {"type": "string"},
    "currency": {
        "type": "object",
        "properties": {"code": {"type": "string", "minLength": 1}, "value": {"type": "number"}},
        "required": ["code", "value"],
        "additionalProperties": False,
    },
    "label": {
        "type": "object",
        "properties": {"color": {"enum": list(LABEL_COLORS)}, "label": {"type": "string"}},
        "required": ["color", "label"],
        "additionalProperties": False,
    },
    "tags": {"type": "array", "items": {"type": "string"}},
}
FIELD_TYPES = tuple(_CORE)
DEFINITIONS: dict[str, dict[str, Any]] = {name: {"anyOf": [core, {"type": "null"}]} for name, core in _CORE.items()}

_LINK_OBJECT = {
    "type": "object",
    "properties": {"url": {"type": "string", "pattern": r"^https?://"}, "label": {"type": "string"}},
    "additionalProperties": False,
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "title": {"type": "string", "minLength": 1, "maxLength": ERROR_TITLE_MAX},
                "subtitle": {"type": "string"},
                "action": {**_LINK_OBJECT, "required": ["url", "label"]},
            },
            "required": ["title"],
            "additionalProperties": False,
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}


@cache
def panel_data_schema(name: str) -> dict[str, Any]:
    """``deal`` or ``person``: the data structure file to upload to Developer Hub."""
    return json.loads((SCHEMA_DIR / f"{name}.json").read_text())


@dataclass(frozen=True)
class PanelField:
    key: str
    type: str
    label: str


def panel_fields(data_schema: dict[str, Any]) -> list[PanelField]:
    """The fields in the order Pipedrive shows them (the order of ``properties``), without ``header``."""
    item = data_schema["items"] if data_schema.get("type") == "array" else data_schema
    fields = []
    for key, spec in item.get("properties", {}).items():
        field_type = str(spec.get("$ref", "")).removeprefix("#/definitions/")
        if field_type == "header":
            continue
        fields.append(
            PanelField(key=key, type=field_type, label=spec.get("label") or key.replace("_", " ").capitalize())
        )
    return fields


def data_structure_problems(data_schema: Any) -> list[str]:
    """What Developer Hub's format does not allow in an uploaded data structure (empty: fine)."""
    problems: list[str] = []
    if not isinstance(data_schema, dict) or data_schema.get("type") not in {"array", "object"}:
        return ["the data structure must be an array of objects or an object"]
    item = data_schema.get("items") if data_schema["type"] == "array" else data_schema
    if not isinstance(item, dict) or item.get("type") != "object":
        return ["an array's items must be objects"]
    for where, node in (("top", data_schema), ("item", item)):
        unknown = set(node) - TEMPLATE_KEYS
        if unknown:
            problems.append(f"{where}: keys outside Pipedrive's template format: {sorted(unknown)}")
    properties = item.get("properties")
    if not isinstance(properties, dict) or not properties:
        return [*problems, "no properties"]
    for key, spec in properties.items():
        if not isinstance(spec, dict) or set(spec) - {"$ref", "label"}:
            problems.append(f"{key}: a field is only $ref and an optional label")
            continue
        ref = spec.get("$ref", "")
        if (
            not isinstance(ref, str)
            or ref.removeprefix("#/definitions/") not in FIELD_TYPES
            or "#/definitions/" not in ref
        ):
            problems.append(f"{key}: unknown field type {ref!r}")
    if len([k for k in properties if k != "header"]) > MAX_FIELDS:
        problems.append(f"more than {MAX_FIELDS} fields besides header")
    missing = set(item.get("required", [])) - set(properties)
    if missing:
        problems.append(f"required fields that are not defined: {sorted(missing)}")
    return problems


def _resolved(data_schema: dict[str, Any]) -> dict[str, Any]:
    """The uploaded structure as a complete JSON Schema of a whole response, as Pipedrive applies it."""
    data = copy.deepcopy(data_schema)
    item = data["items"] if data.get("type") == "array" else data
    item["additionalProperties"] = False
    if data.get("type") == "array":
        data["maxItems"] = MAX_OBJECTS
        empty: dict[str, Any] = {"type": "array", "maxItems": 0}
    else:
        empty = {"type": "object", "maxProperties": 0}  # "Nothing to show" for a single object panel
    return {
        "type": "object",
        "properties": {
            "data": {"anyOf": [data, empty]},
            "external_link": {**_LINK_OBJECT, "required": ["url", "label"]},
            "settings": {**_LINK_OBJECT, "required": ["url"]},
        },
        "required": ["data"],
        "additionalProperties": False,
        "definitions": DEFINITIONS,
    }


def _messages(validator: jsonschema.protocols.Validator, body: Any) -> list[str]:
    return sorted(
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(body)
    )


def panel_response_problems(data_schema: dict[str, Any], body: Any) -> list[str]:
    """Why Pipedrive would show "Something went wrong…" for this 2xx body (empty: it renders)."""
    return _messages(jsonschema.Draft7Validator(_resolved(data_schema)), body)


def error_response_problems(body: Any) -> list[str]:
    """Why this body is not Pipedrive's JSON panel error format (empty: it is)."""
    return _messages(jsonschema.Draft7Validator(ERROR_SCHEMA), body)
