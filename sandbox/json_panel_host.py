"""The sandbox shows the app's JSON panels as Pipedrive does: it calls the panel's URL server-side
(GET, with ``resource``, ``view``, ``userId``, ``companyId``, ``selectedIds``, ``isShared`` and a
signed ``token``, plus the HTTP Basic credentials when the app has them), checks the answer against
the data structure the app uploads to Developer Hub (``extensions/json_panel_schemas``), and renders
each object's fields by their type, in the structure's order (docs/json-panels-adding-a-panel).

- A status above 300 shows the error's title, subtitle and action.
- An answer that does not match the structure shows "Something went wrong…" (as Pipedrive does),
  with the reasons listed for the developer.
- ``{"data": []}`` (or ``{}`` for a single object panel) shows "Nothing to show".
- No answer within 10 s (Pipedrive's limit) shows that the app could not be reached.

The sandbox treats the JSON panels as shared with the whole company (docs/company-wide-app-extensions):
a user who never installed the app still sees them, with ``isShared=true``.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import jwt
import requests
from django.conf import settings
from django.utils import formats
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from extensions.json_panel_format import (
    PanelField,
    error_response_problems,
    panel_data_schema,
    panel_fields,
    panel_response_problems,
)
from extensions.panel_auth import extension_jwt_secret

from .models import SandboxCompany, SandboxUser

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0  # Pipedrive's limit for a JSON panel's answer
TOKEN_LIFETIME_SECONDS = 300


def http_session() -> requests.Session:
    """The session that calls the app (tests replace it with one that calls the app in-process)."""
    session = requests.Session()
    session.trust_env = False
    return session


def extension_token(*, extension: str, company: SandboxCompany, user: SandboxUser) -> str:
    """A JWT as Pipedrive signs it for ``extension``: its JWT secret, else the fallback (HS256, 5 minutes)."""
    now = int(time.time())
    claims = {"userId": user.pk, "companyId": company.pk, "iat": now, "exp": now + TOKEN_LIFETIME_SECONDS}
    return jwt.encode(claims, extension_jwt_secret(extension), algorithm="HS256")


@dataclass(frozen=True)
class ShownValue:
    kind: str
    text: str = ""
    html: SafeString | None = None
    url: str = ""
    color: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ShownField:
    key: str
    label: str
    value: ShownValue


@dataclass(frozen=True)
class ShownObject:
    id: Any
    header: str
    fields: tuple[ShownField, ...]


@dataclass(frozen=True)
class JsonPanelShown:
    resource: str
    state: str  # ready | empty | error | invalid | unreachable
    url: str  # the panel URL without its query (the token stays out of the page)
    is_shared: bool
    status: int | None = None
    objects: tuple[ShownObject, ...] = ()
    error: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    settings_url: str = ""
    external_link: dict[str, str] = field(default_factory=dict)


def json_panel_show(
    *, company: SandboxCompany, user: SandboxUser, resource: str, record_id: int, is_shared: bool
) -> JsonPanelShown:
    """Call the app's ``resource`` JSON panel for ``record_id`` as ``user`` would see it, and render it."""
    url = f"{settings.APP_BASE_URL}/extensions/json-panels/{resource}/"
    extension = f"{resource}_json_panel"
    params = {
        "resource": resource,
        "view": "details",
        "userId": str(user.pk),
        "companyId": str(company.pk),
        "selectedIds": str(record_id),
        "isShared": "true" if is_shared else "false",
        "token": extension_token(extension=extension, company=company, user=user),
    }
    auth = None
    if settings.EXTENSIONS_JSON_PANEL_HTTP_AUTH_USER and settings.EXTENSIONS_JSON_PANEL_HTTP_AUTH_PASSWORD:
        auth = (settings.EXTENSIONS_JSON_PANEL_HTTP_AUTH_USER, settings.EXTENSIONS_JSON_PANEL_HTTP_AUTH_PASSWORD)
    shown = {"resource": resource, "url": url, "is_shared": is_shared}
    session = http_session()
    try:
        response = session.get(
            url, params=params, auth=auth, timeout=TIMEOUT_SECONDS, headers={"Accept": "application/json"}
        )
    except requests.RequestException as exc:
        logger.info("sandbox: JSON panel %s unreachable: %s", url, type(exc).__name__)
        return JsonPanelShown(state="unreachable", **shown)  # type: ignore[arg-type]
    finally:
        session.close()
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if status > 300:
        problems = error_response_problems(body)
        error = body["error"] if not problems else {"title": "Something went wrong…"}
        return JsonPanelShown(state="error", status=status, error=error, problems=tuple(problems), **shown)  # type: ignore[arg-type]
    data_schema = panel_data_schema(resource)
    problems = panel_response_problems(data_schema, body) if status < 300 else ["a status of exactly 300"]
    if problems:
        return JsonPanelShown(state="invalid", status=status, problems=tuple(problems), **shown)  # type: ignore[arg-type]
    data = body["data"]
    items = data if isinstance(data, list) else ([data] if data else [])
    fields = panel_fields(data_schema)
    objects = tuple(_shown_object(item, fields) for item in items)
    return JsonPanelShown(
        state="ready" if objects else "empty",
        status=status,
        objects=objects,
        settings_url=(body.get("settings") or {}).get("url", ""),
        external_link=body.get("external_link") or {},
        **shown,  # type: ignore[arg-type]
    )


def _shown_object(item: dict[str, Any], fields: list[PanelField]) -> ShownObject:
    return ShownObject(
        id=item.get("id"),
        header=str(item.get("header") or ""),
        fields=tuple(
            ShownField(key=f.key, label=f.label, value=_shown_value(f.type, item.get(f.key)))
            for f in fields
            if f.key != "id" and f.key in item
        ),
    )


_MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_MARKDOWN_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _markdown(text: str) -> SafeString:
    """The little markdown Pipedrive's text fields show: links with labels, bold, line breaks."""
    html = str(escape(text))
    html = _MARKDOWN_LINK.sub(r'<a href="\2" target="_blank" rel="noopener noreferrer">\1</a>', html)
    html = _MARKDOWN_BOLD.sub(r"<strong>\1</strong>", html)
    return mark_safe(html.replace("\n", "<br>"))  # noqa: S308 (escaped above; only our own tags added)


def _shown_value(kind: str, value: Any) -> ShownValue:  # noqa: C901  (flat: one case per JSON panel field type)
    if value is None:
        return ShownValue(kind="empty", text="—")
    if kind == "text" and isinstance(value, dict):
        text = str(value.get("value", ""))
        return ShownValue(kind="text", text=text, html=_markdown(text) if value.get("markdown") else None)
    if kind == "currency":
        return ShownValue(kind=kind, text=f"{value['code']} {float(value['value']):,.2f}")
    if kind == "label":
        return ShownValue(kind=kind, text=str(value["label"])[:40], color=str(value["color"]))
    if kind == "tags":
        return ShownValue(kind=kind, tags=tuple(str(tag) for tag in value))
    if kind == "link":
        if isinstance(value, dict):
            return ShownValue(kind=kind, text=str(value.get("label") or value["value"]), url=str(value["value"]))
        return ShownValue(kind=kind, text=str(value), url=str(value))
    if kind == "email":
        return ShownValue(kind=kind, text=str(value), url=f"mailto:{value}")
    if kind == "phone":
        return ShownValue(kind=kind, text=str(value), url=f"tel:{str(value).replace(' ', '')}")
    if kind == "date":
        return ShownValue(kind=kind, text=formats.date_format(date.fromisoformat(value), "DATE_FORMAT"))
    if kind == "date-time":
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return ShownValue(kind=kind, text=moment.strftime("%Y-%m-%d %H:%M %z").strip())
    if kind == "text":
        return ShownValue(kind=kind, text=str(value)[:255])
    return ShownValue(kind=kind, text=str(value))
