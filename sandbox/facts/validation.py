"""Checks of query parameters and request bodies, as both imitations of Pipedrive apply them."""

from __future__ import annotations

from collections.abc import Collection, Mapping
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
