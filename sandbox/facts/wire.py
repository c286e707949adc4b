"""How Pipedrive's records look on the wire, built from plain values.

The sandbox passes its models' values; the tests' double passes its seeded dicts. Shapes follow the
OpenAPI files (``vendor/pipedrive-openapi/``): where Pipedrive sends ``null`` for a field the files
declare non-nullable (``org_id``, ``won_time``...), the field is left out, since the files are the
contract the tests hold every response to. Fields the files declare nullable keep their ``null``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

# --- values -------------------------------------------------------------------------------------------


def rfc3339(value: datetime | str | None) -> str | None:
    """API v2 and webhooks v2 times: ``2025-01-01T10:20:00Z`` (a string passes through)."""
    if value is None or isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def v1_time(value: datetime | str | None) -> str | None:
    """API v1 times: ``2025-01-01 10:20:00`` in UTC (a string passes through)."""
    if value is None or isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso_millis(value: datetime) -> str:
    """Webhook v2 ``meta.timestamp`` and lead times: ``2025-01-01T10:20:00.123Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def number(value: Decimal | float | int | str | None) -> int | float | None:
    """A JSON number: integral amounts as integers."""
    if value is None:
        return None
    amount = Decimal(str(value))
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def day(value: date | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    return value.isoformat()


def _shape(template: Mapping[str, Any], values: Mapping[str, Any], nullable: Iterable[str] = ()) -> dict[str, Any]:
    keep = set(nullable)
    merged = {**template, **values}
    return {key: value for key, value in merged.items() if value is not None or key in keep}


# --- API v2 -------------------------------------------------------------------------------------------

DEAL_V2: dict[str, Any] = {
    "id": None,
    "title": "",
    "creator_user_id": None,
    "owner_id": None,
    "person_id": None,
    "org_id": None,
    "pipeline_id": None,
    "stage_id": None,
    "value": 0,
    "currency": "EUR",
    "add_time": None,
    "update_time": None,
    "stage_change_time": None,
    "is_deleted": False,
    "is_archived": False,
    "status": "open",
    "probability": None,
    "lost_reason": None,
    "visible_to": 3,
    "close_time": None,
    "won_time": None,
    "lost_time": None,
    "expected_close_date": None,
    "label_ids": [],
    "origin": "API",
    "origin_id": None,
    "channel": None,
    "channel_id": None,
    "custom_fields": {},
}
_DEAL_NULLABLE = ("probability", "lost_reason", "close_time", "origin_id", "channel", "channel_id")


def deal_v2(values: Mapping[str, Any]) -> dict[str, Any]:
    shaped = _shape(DEAL_V2, values, _DEAL_NULLABLE)
    shaped["value"] = number(shaped.get("value"))
    for key in ("add_time", "update_time", "stage_change_time", "close_time", "won_time", "lost_time"):
        if key in shaped:
            shaped[key] = rfc3339(shaped[key])
    if "expected_close_date" in shaped:
        shaped["expected_close_date"] = day(shaped["expected_close_date"])
    shaped["custom_fields"] = dict(shaped.get("custom_fields") or {})
    return {key: value for key, value in shaped.items() if value is not None or key in _DEAL_NULLABLE}


PERSON_V2: dict[str, Any] = {
    "id": None,
    "name": "",
    "first_name": None,
    "last_name": None,
    "owner_id": None,
    "org_id": None,
    "add_time": None,
    "update_time": None,
    "emails": [],
    "phones": [],
    "is_deleted": False,
    "visible_to": 3,
    "label_ids": [],
    "picture_id": None,
    "job_title": None,
    "custom_fields": {},
}


def person_v2(values: Mapping[str, Any]) -> dict[str, Any]:
    first, _, last = str(values.get("name") or "").partition(" ")
    shaped = _shape({**PERSON_V2, "first_name": first, "last_name": last}, values)
    for key in ("add_time", "update_time"):
        if key in shaped:
            shaped[key] = rfc3339(shaped[key])
    shaped["custom_fields"] = dict(shaped.get("custom_fields") or {})
    return shaped


ORGANIZATION_V2: dict[str, Any] = {
    "id": None,
    "name": "",
    "owner_id": None,
    "add_time": None,
    "update_time": None,
    "is_deleted": False,
    "visible_to": 3,
    "label_ids": [],
    "address": None,
    "custom_fields": {},
}


def organization_v2(values: Mapping[str, Any]) -> dict[str, Any]:
    shaped = _shape(ORGANIZATION_V2, values)
    if isinstance(shaped.get("address"), str):
        shaped["address"] = {"value": shaped["address"]} if shaped["address"] else None
    for key in ("add_time", "update_time"):
        if key in shaped:
            shaped[key] = rfc3339(shaped[key])
    return {key: value for key, value in shaped.items() if value is not None}


PIPELINE_V2: dict[str, Any] = {
    "id": None,
    "name": "",
    "order_nr": 1,
    "is_deleted": False,
    "is_deal_probability_enabled": True,
    "add_time": None,
    "update_time": None,
}


def pipeline_v2(values: Mapping[str, Any]) -> dict[str, Any]:
    shaped = _shape(PIPELINE_V2, values)
    for key in ("add_time", "update_time"):
        if key in shaped:
            shaped[key] = rfc3339(shaped[key])
    return shaped


STAGE_V2: dict[str, Any] = {
    "id": None,
    "order_nr": 1,
    "name": "",
    "is_deleted": False,
    "deal_probability": 100,
    "pipeline_id": None,
    "is_deal_rot_enabled": False,
    "days_to_rotten": None,
    "add_time": None,
    "update_time": None,
}


def stage_v2(values: Mapping[str, Any]) -> dict[str, Any]:
    shaped = _shape(STAGE_V2, values, nullable=("days_to_rotten",))
    for key in ("add_time", "update_time"):
        if key in shaped:
            shaped[key] = rfc3339(shaped[key])
    return shaped


def field_v2(
    *, name: str, code: str, field_type: str, custom: bool, options: Iterable[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """One row of ``GET /api/v2/<entity>Fields``."""
    rows = [{"id": o.get("id"), "label": str(o.get("label", "")), "color": o.get("color")} for o in options or []]
    return {
        "field_name": name,
        "field_code": code,
        "field_type": field_type,
        "is_custom_field": custom,
        "is_optional_response_field": False,
        "options": rows or None,
        "subfields": None,
    }


def cursor_page(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    """A v2 list: ``additional_data.next_cursor`` only when there is a next page (the files type it as a
    non-nullable string; Pipedrive's ``null`` on the last page is left out)."""
    return {"success": True, "data": items, "additional_data": {"next_cursor": next_cursor} if next_cursor else {}}


def activity_v2(values: Mapping[str, Any]) -> dict[str, Any]:
    """An activity as ``/api/v2/activities`` answers (OpenAPI v2 ``GetActivitiesResponse``). ``values``:
    id, subject, type, owner_id, creator_user_id, deal/person/org ids, due_date (date or str), due_time,
    duration, done, busy, note, is_deleted, add_time, update_time, marked_as_done_time. The file
    declares nothing nullable, so an absent value is left out."""
    return _shape(
        {},
        {
            "id": values["id"],
            "subject": values.get("subject", ""),
            "type": values.get("type"),
            "owner_id": values.get("owner_id"),
            "creator_user_id": values.get("creator_user_id"),
            "is_deleted": bool(values.get("is_deleted", False)),
            "add_time": rfc3339(values.get("add_time")),
            "update_time": rfc3339(values.get("update_time")),
            "deal_id": values.get("deal_id"),
            "person_id": values.get("person_id"),
            "org_id": values.get("org_id"),
            "due_date": day(values.get("due_date")),
            "due_time": values.get("due_time") or None,
            "duration": values.get("duration") or None,
            "busy": bool(values.get("busy", False)),
            "done": bool(values.get("done", False)),
            "marked_as_done_time": rfc3339(values.get("marked_as_done_time")),
            "participants": (
                [{"person_id": values["person_id"], "primary": True}] if values.get("person_id") is not None else []
            ),
            "note": values.get("note") or None,
        },
    )


# --- API v1 -------------------------------------------------------------------------------------------


def note_v1(values: Mapping[str, Any], *, viewer_id: int | None = None) -> dict[str, Any]:
    """A note as ``/api/v1/notes`` answers. ``values``: id, content, deal/person/org ids, the user
    (``user_id``, ``user_name``, ``user_email``), ``deal_title``, ``person_name``, ``org_name``,
    ``is_deleted``, ``add_time``, ``update_time``."""
    user_id = values.get("user_id")
    return _shape(
        {},
        {
            "id": values["id"],
            "active_flag": not values.get("is_deleted", False),
            "add_time": v1_time(values.get("add_time")),
            "update_time": v1_time(values.get("update_time")),
            "content": values.get("content", ""),
            "deal_id": values.get("deal_id"),
            "person_id": values.get("person_id"),
            "org_id": values.get("org_id"),
            "lead_id": values.get("lead_id"),
            "user_id": user_id,
            "last_update_user_id": user_id,
            "deal": {"title": values["deal_title"]} if values.get("deal_title") is not None else None,
            "person": {"name": values["person_name"]} if values.get("person_name") is not None else None,
            "organization": {"name": values["org_name"]} if values.get("org_name") is not None else None,
            "pinned_to_deal_flag": False,
            "pinned_to_person_flag": False,
            "pinned_to_organization_flag": False,
            "pinned_to_project_flag": False,
            "user": (
                {"email": values.get("user_email"), "name": values.get("user_name"), "is_you": user_id == viewer_id}
                if user_id is not None
                else None
            ),
        },
    )


def offset_page(items: list[dict[str, Any]], *, start: int, limit: int, more: bool) -> dict[str, Any]:
    """A v1 list with ``start``/``limit`` pagination."""
    pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
    if more:
        pagination["next_start"] = start + limit
    return {"success": True, "data": items, "additional_data": {"pagination": pagination}}


def user_v1(
    *,
    id: int,
    name: str,
    email: str,
    is_admin: bool,
    locale: str,
    timezone_name: str,
    company_id: int,
    created: datetime | str | None,
    last_login: datetime | str | None,
    viewer_id: int | None,
) -> dict[str, Any]:
    """A user as ``GET /api/v1/users`` and ``/users/{id}`` answer (``BaseUser`` in v1.yaml)."""
    stamp = v1_time(created)
    return {
        "id": id,
        "name": name,
        "default_currency": "EUR",
        "locale": locale,
        "lang": 1,
        "email": email,
        "phone": None,
        "activated": True,
        "last_login": v1_time(last_login),
        "created": stamp,
        "modified": stamp,
        "has_created_company": is_admin,
        "access": [{"app": "global", "admin": is_admin, "permission_set_id": f"sandbox-{company_id}-{id}"}],
        "active_flag": True,
        "timezone_name": timezone_name,
        "timezone_offset": "+00:00",
        "role_id": 1,
        "icon_url": None,
        "is_you": id == viewer_id,
        "is_deleted": False,
        "is_admin": 1 if is_admin else 0,
    }


def user_me(user: Mapping[str, Any], *, company_id: int, company_name: str, company_domain: str) -> dict[str, Any]:
    """``GET /api/v1/users/me``: the user (``user_v1``), plus their company."""
    language, _, country = str(user.get("locale") or "").partition("_")
    return {
        **user,
        "company_id": company_id,
        "company_name": company_name,
        "company_domain": company_domain,
        "company_country": "EE",
        "company_industry": "Software",
        "language": {"language_code": language or "en", "country_code": country or "US"},
    }


LEAD_V1: dict[str, Any] = {
    "id": None,
    "title": "",
    "owner_id": None,
    "creator_id": None,
    "label_ids": [],
    "person_id": None,
    "organization_id": None,
    "source_name": "API",
    "origin": "API",
    "origin_id": None,
    "channel": None,
    "channel_id": None,
    "is_archived": False,
    "was_seen": False,
    "value": None,
    "expected_close_date": None,
    "next_activity_id": None,
    "add_time": None,
    "update_time": None,
    "visible_to": "3",
    "cc_email": "",
}


def lead_v1(values: Mapping[str, Any]) -> dict[str, Any]:
    """A lead as ``/api/v1/leads`` answers (``value`` is ``{amount, currency}``; times with millis).
    Custom fields sit at the top level, keyed by their hash keys, as in every v1 record."""
    custom = dict(values.get("custom_fields") or {})
    shaped = {**LEAD_V1, **{k: v for k, v in values.items() if k != "custom_fields"}}
    for key in ("add_time", "update_time"):
        if isinstance(shaped.get(key), datetime):
            shaped[key] = iso_millis(shaped[key])
    shaped["expected_close_date"] = day(shaped.get("expected_close_date"))
    return {**shaped, **custom}


def webhook_v1(values: Mapping[str, Any]) -> dict[str, Any]:
    """A webhook as ``/api/v1/webhooks`` answers; the stored password is never echoed back."""
    return {
        "id": values["id"],
        "company_id": values["company_id"],
        "owner_id": values["owner_id"],
        "user_id": values["user_id"],
        "event_action": values["event_action"],
        "event_object": values["event_object"],
        "subscription_url": values["subscription_url"],
        "version": values["version"],
        "is_active": 1 if values.get("is_active", True) else 0,
        "add_time": rfc3339(values.get("add_time")),
        "remove_time": rfc3339(values.get("remove_time")),
        "type": values.get("type", "application"),
        "http_auth_user": values.get("http_auth_user") or None,
        "http_auth_password": None,
        "remove_reason": values.get("remove_reason") or None,
        "last_delivery_time": rfc3339(values.get("last_delivery_time")),
        "last_http_status": values.get("last_http_status"),
        "admin_id": values["owner_id"],
        "name": values.get("name", ""),
    }


def uninstall_notice(*, client_id: str, company_id: int, user_id: int, at: datetime) -> dict[str, Any]:
    """The JSON body of the ``DELETE <callback URL>`` Pipedrive sends when a user uninstalls the app
    (https://pipedrive.readme.io/docs/app-uninstallation), with HTTP Basic ``client_id:client_secret``."""
    return {"client_id": client_id, "company_id": company_id, "user_id": user_id, "timestamp": iso_millis(at)}


# --- OAuth --------------------------------------------------------------------------------------------


def token_response(
    *, access_token: str, refresh_token: str, scopes: Iterable[str], expires_in: int, api_domain: str
) -> dict[str, Any]:
    """The token endpoint's answer: Pipedrive adds ``api_domain`` and a comma-separated ``scope``."""
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "refresh_token": refresh_token,
        "scope": ",".join(scopes),
        "expires_in": expires_in,
        "api_domain": api_domain,
    }
