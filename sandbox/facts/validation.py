"""Checks of query parameters and request bodies, as both imitations of Pipedrive apply them."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from . import limits, openapi


class InvalidQuery(ValueError):
    """A query parameter or cursor is invalid: 400 with this message."""


def int_param(query: Mapping[str, Any], name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(str(raw))
    except ValueError:
        raise InvalidQuery(f"Parameter '{name}' must be an integer") from None


def page_limit(query: Mapping[str, Any]) -> int:
    limit = int_param(query, "limit")
    if limit is None:
        return limits.DEFAULT_PAGE_SIZE
    if not 1 <= limit <= limits.MAX_PAGE_SIZE:
        raise InvalidQuery(f"Parameter 'limit' must be between 1 and {limits.MAX_PAGE_SIZE}")
    return limit


def start_param(query: Mapping[str, Any]) -> int:
    start = int_param(query, "start") or 0
    if start < 0:
        raise InvalidQuery("Parameter 'start' must not be negative")
    return start


def int_field(data: Mapping[str, Any], name: str, errors: dict[str, list[str]]) -> int | None:
    """A body field that must be an integer (a numeric string is accepted); None when absent."""
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        errors[name] = ["must be an integer"]
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        errors[name] = ["must be an integer"]
        return None


def contact_points(value: Any, *, label: str, name: str, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    """v2 ``emails``/``phones``: plain strings or ``{value, primary, label}`` objects, normalised."""
    items = value if isinstance(value, list) else ([value] if value else [])
    points: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            if item.strip():
                points.append({"value": item.strip(), "primary": index == 0, "label": label})
        elif isinstance(item, Mapping) and isinstance(item.get("value"), str):
            points.append(
                {
                    "value": item["value"],
                    "primary": bool(item.get("primary", index == 0)),
                    "label": str(item.get("label") or label),
                }
            )
        else:
            errors[name] = ["must be a list of {value, primary, label} objects"]
    return points


NOTE_LINKS = ("deal_id", "person_id", "org_id", "lead_id", "project_id")


def note_body(data: Mapping[str, Any], errors: dict[str, list[str]]) -> str:
    """``POST /api/v1/notes``: content is required and the note must be attached to something."""
    content = data.get("content")
    if not isinstance(content, str) or not content.strip():
        errors["content"] = ["is required"]
    if not any(data.get(name) not in (None, "") for name in NOTE_LINKS):
        errors["deal_id"] = ["the note must be attached to a deal, person, organization, lead or project"]
    return str(content or "")


def webhook_enum(field: str) -> tuple[str, ...]:
    """Allowed values of a webhook-create field, read from v1.yaml rather than restated."""
    return openapi.request_body_enum("v1", "post", "/webhooks", field)


def webhook_body(data: Mapping[str, Any], errors: dict[str, list[str]], *, unreachable: Collection[str] = ()) -> str:
    """``POST /api/v1/webhooks``: required fields, enums from v1.yaml, a reachable http(s) URL.
    Returns the version (``2.0`` unless given)."""
    for name in ("subscription_url", "event_action", "event_object", "name"):
        if not isinstance(data.get(name), str) or not data[name]:
            errors[name] = ["is required"]
    for name in ("event_action", "event_object"):
        allowed = webhook_enum(name)
        if name not in errors and data[name] not in allowed:
            errors[name] = [f"must be one of {', '.join(allowed)}"]
    version = str(data.get("version") or "2.0")
    if version not in webhook_enum("version"):
        errors["version"] = [f"must be one of {', '.join(webhook_enum('version'))}"]
    url = str(data.get("subscription_url") or "")
    if "subscription_url" not in errors:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname or url in unreachable:
            errors["subscription_url"] = ["invalid or non-reachable URL"]
    int_field(data, "user_id", errors)
    for name in ("http_auth_user", "http_auth_password"):
        if data.get(name) is not None and not isinstance(data.get(name), str):
            errors[name] = ["must be a string"]
    return version


# --- activities (POST /api/v2/activities) ---------------------------------------------------------------

# The activity types every Pipedrive company starts with, by ``key_string`` (OpenAPI v1 ``/activityTypes``:
# ``Activity.type`` is an activity type's ``key_string``; its examples show ``call`` and ``deadline``).
ACTIVITY_TYPES: dict[str, str] = {
    "call": "Call",
    "meeting": "Meeting",
    "task": "Task",
    "deadline": "Deadline",
    "email": "Email",
    "lunch": "Lunch",
}
ACTIVITY_LINKS = ("deal_id", "person_id", "org_id")
ACTIVITY_SUBJECT_MAX = 255
ACTIVITY_NOTE_MAX = 100_000
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def activity_body(data: Mapping[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    """``POST /api/v2/activities``: typed fields, a known ``type``, ``due_date`` as ``YYYY-MM-DD`` and
    ``due_time``/``duration`` as ``HH:MM``. A missing subject becomes the type's name, a missing type
    ``task`` (what Pipedrive's own form preselects; unconfirmed for the API). Returns the values."""
    values: dict[str, Any] = {}
    activity_type = data.get("type", "task")
    if not isinstance(activity_type, str) or activity_type not in ACTIVITY_TYPES:
        errors["type"] = [f"must be one of {', '.join(ACTIVITY_TYPES)}"]
        activity_type = "task"
    values["type"] = activity_type
    subject = _bounded_text(data, "subject", ACTIVITY_SUBJECT_MAX, errors)
    values["subject"] = (subject or "").strip() or ACTIVITY_TYPES[activity_type]
    for name in (*ACTIVITY_LINKS, "owner_id"):
        value = data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            errors[name] = ["must be an integer"]
        else:
            values[name] = value
    due_date = data.get("due_date")
    if due_date is not None and not (isinstance(due_date, str) and _DATE.fullmatch(due_date) and _valid_day(due_date)):
        errors["due_date"] = ["must be a date (YYYY-MM-DD)"]
    values["due_date"] = due_date
    for name in ("due_time", "duration"):
        value = data.get(name)
        if value is not None and not (isinstance(value, str) and _TIME.fullmatch(value)):
            errors[name] = ["must be a time (HH:MM)"]
        values[name] = value
    for name in ("done", "busy"):
        if name in data and not isinstance(data[name], bool):
            errors[name] = ["must be a boolean"]
        values[name] = bool(data.get(name, False))
    values["note"] = _bounded_text(data, "note", ACTIVITY_NOTE_MAX, errors)
    return values


def _bounded_text(data: Mapping[str, Any], name: str, limit: int, errors: dict[str, list[str]]) -> str | None:
    """An optional string field of at most ``limit`` characters; None when absent or not a string."""
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        errors[name] = ["must be a string"]
    elif isinstance(value, str) and len(value) > limit:
        errors[name] = [f"must be at most {limit} characters"]
    return value if isinstance(value, str) else None


def _valid_day(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True
