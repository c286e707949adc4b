"""Typed, immutable views of the Pipedrive objects this app uses.

Each type is built with ``from_api(payload)`` from the JSON object Pipedrive returns. Parsing is
deliberately tolerant: unknown keys are ignored, ids may arrive as strings ("Ids may arrive as
strings", docs/guide-for-webhooks-v2), v1 related ids may arrive as ``{"value": id, ...}`` objects,
and a field that is missing or unparseable becomes ``None``. The untouched payload stays available
as ``raw`` (left out of ``repr`` and equality) for anything the typed fields do not cover.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, Self, TypeVar

T = TypeVar("T")


# --- tolerant field parsing -----------------------------------------------------------------------


def _as_int(value: Any) -> int | None:
    """An id or count: accepts 5, "5", 5.0 and v1's related-object form {"value": 5, ...}."""
    if isinstance(value, Mapping):
        value = value.get("value", value.get("id"))
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
            return int(number) if number.is_integer() else None
    return None


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _as_bool(value: Any, *, default: bool = False) -> bool:
    """Pipedrive writes booleans as true/false, 1/0 and sometimes "1"/"0"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in {"1", "true", "yes"}:
            return True
        if text in {"0", "false", "no", ""}:
            return False
    return default


def _as_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _as_datetime(value: Any) -> datetime | None:
    """v2 sends RFC 3339 ("2025-01-01T10:20:00Z"), v1 "2019-12-09 13:59:21" in UTC."""
    text = _as_str(value)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _as_date(value: Any) -> date | None:
    text = _as_str(value)
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _require_id(payload: Mapping[str, Any], kind: str) -> int:
    object_id = _as_int(payload.get("id"))
    if object_id is None:
        raise ValueError(f"{kind} payload has no usable id")
    return object_id


# --- the objects ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactPoint:
    """One email address or phone number of a person."""

    value: str
    label: str | None = None
    primary: bool = False

    @classmethod
    def from_api(cls, payload: Any) -> Self | None:
        if isinstance(payload, str):
            return cls(value=payload)
        if not isinstance(payload, Mapping):
            return None
        value = _as_str(payload.get("value"))
        if not value:
            return None
        return cls(value=value, label=_as_str(payload.get("label")), primary=_as_bool(payload.get("primary")))


def _contact_points(value: Any) -> tuple[ContactPoint, ...]:
    if not isinstance(value, list):
        return ()
    points = (ContactPoint.from_api(item) for item in value)
    return tuple(point for point in points if point is not None)


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """``GET /api/v1/users/me``. The installation key is (company_id, id)."""

    id: int
    name: str
    email: str
    company_id: int
    company_name: str
    company_domain: str
    is_admin: bool
    locale: str | None
    timezone_name: str | None
    icon_url: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> Self:
        company_id = _as_int(payload.get("company_id"))
        if company_id is None:
            raise ValueError("current user payload has no usable company_id")
        return cls(
            id=_require_id(payload, "user"),
            name=_as_str(payload.get("name")) or "",
            email=_as_str(payload.get("email")) or "",
            company_id=company_id,
            company_name=_as_str(payload.get("company_name")) or "",
            company_domain=_as_str(payload.get("company_domain")) or "",
            is_admin=_user_is_admin(payload),
            locale=_as_str(payload.get("locale")),
            timezone_name=_as_str(payload.get("timezone_name")),
            icon_url=_as_str(payload.get("icon_url")),
            raw=dict(payload),
        )


def _user_is_admin(payload: Mapping[str, Any]) -> bool:
    # Users carry ``is_admin`` (1/0); the OpenAPI file documents only the per-app ``access`` list,
    # so fall back to the "global" app's admin flag when ``is_admin`` is absent.
    if "is_admin" in payload:
        return _as_bool(payload.get("is_admin"))
    access = payload.get("access")
    if isinstance(access, list):
        return any(
            isinstance(entry, Mapping) and entry.get("app") == "global" and _as_bool(entry.get("admin"))
            for entry in access
        )
    return False


@dataclass(frozen=True, slots=True)
class Deal:
    """A deal as API v2 returns it (``/api/v2/deals``)."""

    id: int
    title: str
    value: Decimal | None
    currency: str | None
    status: str | None
    stage_id: int | None
    pipeline_id: int | None
    person_id: int | None
    org_id: int | None
    owner_id: int | None
    expected_close_date: date | None
    update_time: datetime | None
    add_time: datetime | None
    # Keyed by the custom field's 40-character hash key (resolve labels via /dealFields).
    custom_fields: dict[str, Any] = field(default_factory=dict, hash=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> Self:
        return cls(
            id=_require_id(payload, "deal"),
            title=_as_str(payload.get("title")) or "",
            value=_as_decimal(payload.get("value")),
            currency=_as_str(payload.get("currency")),
            status=_as_str(payload.get("status")),
            stage_id=_as_int(payload.get("stage_id")),
            pipeline_id=_as_int(payload.get("pipeline_id")),
            person_id=_as_int(payload.get("person_id")),
            org_id=_as_int(payload.get("org_id")),
            owner_id=_as_int(payload.get("owner_id", payload.get("user_id"))),
            expected_close_date=_as_date(payload.get("expected_close_date")),
            update_time=_as_datetime(payload.get("update_time")),
            add_time=_as_datetime(payload.get("add_time")),
            custom_fields=_as_dict(payload.get("custom_fields")),
            raw=dict(payload),
        )


@dataclass(frozen=True, slots=True)
class Person:
    """A person as API v2 returns it (``/api/v2/persons``)."""

    id: int
    name: str
    emails: tuple[ContactPoint, ...]
    phones: tuple[ContactPoint, ...]
    org_id: int | None
    owner_id: int | None
    update_time: datetime | None
    add_time: datetime | None
    custom_fields: dict[str, Any] = field(default_factory=dict, hash=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def primary_email(self) -> str | None:
        return _primary(self.emails)

    @property
    def primary_phone(self) -> str | None:
        return _primary(self.phones)

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> Self:
        return cls(
            id=_require_id(payload, "person"),
            name=_as_str(payload.get("name")) or "",
            # v2 says ``emails``/``phones``; v1 and webhooks v1 said ``email``/``phone``.
            emails=_contact_points(payload.get("emails", payload.get("email"))),
            phones=_contact_points(payload.get("phones", payload.get("phone"))),
            org_id=_as_int(payload.get("org_id")),
            owner_id=_as_int(payload.get("owner_id")),
            update_time=_as_datetime(payload.get("update_time")),
            add_time=_as_datetime(payload.get("add_time")),
            custom_fields=_as_dict(payload.get("custom_fields")),
            raw=dict(payload),
        )


def _primary(points: tuple[ContactPoint, ...]) -> str | None:
    for point in points:
        if point.primary:
            return point.value
    return points[0].value if points else None


@dataclass(frozen=True, slots=True)
class Note:
    """A note (API v1 ``/api/v1/notes``); ``content`` is HTML."""

    id: int
    content: str
    deal_id: int | None
    person_id: int | None
    org_id: int | None
    user_id: int | None
    add_time: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> Self:
        return cls(
            id=_require_id(payload, "note"),
            content=_as_str(payload.get("content")) or "",
            deal_id=_as_int(payload.get("deal_id")),
            person_id=_as_int(payload.get("person_id")),
            org_id=_as_int(payload.get("org_id")),
            user_id=_as_int(payload.get("user_id")),
            add_time=_as_datetime(payload.get("add_time")),
            raw=dict(payload),
        )


@dataclass(frozen=True, slots=True)
class Activity:
    """An activity (API v2 ``/api/v2/activities``). ``due_date``/``due_time`` as Pipedrive stores
    them: a calendar day and ``HH:MM`` in UTC."""

    id: int
    subject: str
    type: str
    deal_id: int | None
    person_id: int | None
    org_id: int | None
    owner_id: int | None
    due_date: date | None
    due_time: str | None
    done: bool
    note: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> Self:
        return cls(
            id=_require_id(payload, "activity"),
            subject=_as_str(payload.get("subject")) or "",
            type=_as_str(payload.get("type")) or "",
            deal_id=_as_int(payload.get("deal_id")),
            person_id=_as_int(payload.get("person_id")),
            org_id=_as_int(payload.get("org_id")),
            owner_id=_as_int(payload.get("owner_id")),
            due_date=_as_date(payload.get("due_date")),
            due_time=_as_str(payload.get("due_time")),
            done=_as_bool(payload.get("done")),
            note=_as_str(payload.get("note")),
            raw=dict(payload),
        )


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook subscription (API v1 ``/api/v1/webhooks``). ``type`` is "application" for ours."""

    id: int
    company_id: int | None
    owner_id: int | None
    user_id: int | None
    event_action: str
    event_object: str
    subscription_url: str
    version: str
    is_active: bool
    type: str | None
    name: str | None
    http_auth_user: str | None
    last_delivery_time: datetime | None
    last_http_status: int | None
    remove_reason: str | None
    add_time: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> Self:
        return cls(
            id=_require_id(payload, "webhook"),
            company_id=_as_int(payload.get("company_id")),
            owner_id=_as_int(payload.get("owner_id")),
            user_id=_as_int(payload.get("user_id")),
            event_action=_as_str(payload.get("event_action")) or "",
            event_object=_as_str(payload.get("event_object")) or "",
            subscription_url=_as_str(payload.get("subscription_url")) or "",
            version=_as_str(payload.get("version")) or "",
            is_active=_as_bool(payload.get("is_active"), default=True),
            type=_as_str(payload.get("type")),
            name=_as_str(payload.get("name")),
            http_auth_user=_as_str(payload.get("http_auth_user")),
            last_delivery_time=_as_datetime(payload.get("last_delivery_time")),
            last_http_status=_as_int(payload.get("last_http_status")),
            remove_reason=_as_str(payload.get("remove_reason")),
            add_time=_as_datetime(payload.get("add_time")),
            raw=dict(payload),
        )


@dataclass(frozen=True, slots=True)
class Pipeline:
    """``GET /api/v2/pipelines/{id}`` (scope deals:read)."""

    id: int
    name: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> Self:
        return cls(id=_require_id(payload, "pipeline"), name=_as_str(payload.get("name")) or "", raw=dict(payload))


@dataclass(frozen=True, slots=True)
class Stage:
    """``GET /api/v2/stages/{id}`` (scope deals:read)."""

    id: int
    name: str
    pipeline_id: int | None
    order_nr: int | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> Self:
        return cls(
            id=_require_id(payload, "stage"),
            name=_as_str(payload.get("name")) or "",
            pipeline_id=_as_int(payload.get("pipeline_id")),
            order_nr=_as_int(payload.get("order_nr")),
            raw=dict(payload),
        )


@dataclass(frozen=True, slots=True)
class Organization:
    """``GET /api/v2/organizations/{id}`` (scope contacts:read); ``address`` is the full address text."""

    id: int
    name: str
    address: str | None
    owner_id: int | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> Self:
        address = payload.get("address")
        return cls(
            id=_require_id(payload, "organization"),
            name=_as_str(payload.get("name")) or "",
            address=_as_str(address.get("value")) if isinstance(address, Mapping) else _as_str(address),
            owner_id=_as_int(payload.get("owner_id")),
            raw=dict(payload),
        )


@dataclass(frozen=True, slots=True)
class User:
    """``GET /api/v1/users/{id}`` (scope users:read): another user of the company."""

    id: int
    name: str
    email: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> Self:
        return cls(
            id=_require_id(payload, "user"),
            name=_as_str(payload.get("name")) or "",
            email=_as_str(payload.get("email")) or "",
            raw=dict(payload),
        )


@dataclass(frozen=True, slots=True)
class FieldOption:
    """One option of an enum/set field. Custom fields use integer ids, built-in fields strings."""

    id: int | str
    label: str


@dataclass(frozen=True, slots=True)
class FieldDefinition:
    """One field of ``GET /api/v2/<entity>Fields``: ``key`` is ``field_code`` (a 40-character hash for
    custom fields), ``name`` the label people see in Pipedrive."""

    key: str
    name: str
    field_type: str
    options: tuple[FieldOption, ...] = ()
    is_custom: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> Self:
        key = _as_str(payload.get("field_code", payload.get("key")))
        if not key:
            raise ValueError("field payload has no field_code")
        options: list[FieldOption] = []
        raw_options = payload.get("options")
        for item in raw_options if isinstance(raw_options, list) else []:
            if not isinstance(item, Mapping) or item.get("id") is None:
                continue
            numeric = _as_int(item["id"])
            option_id: int | str = numeric if numeric is not None else str(item["id"])
            options.append(FieldOption(id=option_id, label=_as_str(item.get("label")) or str(item["id"])))
        return cls(
            key=key,
            name=_as_str(payload.get("field_name", payload.get("name"))) or key,
            field_type=_as_str(payload.get("field_type")) or "",
            options=tuple(options),
            is_custom=_as_bool(payload.get("is_custom_field")),
            raw=dict(payload),
        )


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list. v2 lists set ``next_cursor``, v1 lists ``next_start``; None at the end."""

    items: tuple[T, ...]
    next_cursor: str | None = None
    next_start: int | None = None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None or self.next_start is not None
