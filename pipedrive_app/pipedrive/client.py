"""The one way this app talks to Pipedrive's REST API.

A ``PipedriveClient`` is bound to one installation: the company's ``api_domain`` and a
``TokenSource`` that hands out a valid access token (the installations service implements it and
owns refreshing and storing tokens). The client

- sends ``Authorization: Bearer <token>`` to ``{api_domain}/api/v1/...`` and ``.../api/v2/...``;
- on 401 asks the token source to refresh once and repeats the call once (Marketplace review
  requires it, docs/pipedrive-platform.md section 6);
- on 429 waits as ``Retry-After`` or ``x-ratelimit-reset`` say, a bounded number of times, then raises
  ``PipedriveRateLimited`` carrying the wait;
- leaves 5xx and connection errors on idempotent calls to urllib3's retry with back-off
  (core.http.build_session) and never re-sends a POST;
- asks its rate limiter (``ratelimit.RequestLimiter``: burst per token, daily budget per company,
  shared across processes through Redis) before each request, when it was given one;
- maps every other outcome to the exception tree in ``errors`` and returns the typed objects in
  ``types``.

Tokens never appear in a log line or an exception message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar

import requests

from pipedrive_app.core.http import build_session
from pipedrive_app.core.logging import redact
from pipedrive_app.metrics import instruments as metrics

from .errors import (
    PipedriveAuthError,
    PipedriveError,
    PipedriveForbidden,
    PipedriveNotFound,
    PipedriveRateLimited,
    PipedriveUnavailable,
    PipedriveValidationError,
)
from .types import (
    Activity,
    CurrentUser,
    Deal,
    FieldDefinition,
    Note,
    Organization,
    Page,
    Person,
    Pipeline,
    Stage,
    User,
    Webhook,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
# A reset header bigger than this is an epoch timestamp, not "seconds until reset".
_EPOCH_THRESHOLD = 1_000_000_000
# When a 429 names no wait at all, back off 1, 2, 4... seconds.
_FALLBACK_RATE_LIMIT_WAIT = 1.0
_VALIDATION_STATUSES = frozenset({400, 409, 410, 422})
MAX_PAGE_SIZE = 500
# Field metadata per webhook entity (v2). Leads use the deal fields.
FIELD_ENDPOINTS = {
    "deal": "/api/v2/dealFields",
    "lead": "/api/v2/dealFields",
    "person": "/api/v2/personFields",
    "organization": "/api/v2/organizationFields",
    "product": "/api/v2/productFields",
    "activity": "/api/v2/activityFields",
}


class TokenSource(Protocol):
    """Supplies access tokens for one installation (implemented by the installations service)."""

    def access_token(self) -> str:
        """A currently valid access token; may refresh first."""
        ...

    def refresh_after_unauthorized(self, stale_token: str) -> str:
        """Called once after a 401 with the token that was refused; returns a fresh token."""
        ...


class RateLimiter(Protocol):
    """Consulted around every request (``ratelimit.RequestLimiter``)."""

    def before_request(self, method: str, path: str) -> str:
        """May wait (burst) or raise PipedriveRateLimited (budget); returns the request's slot handle."""
        ...

    def request_done(self, slot: str) -> None:
        """The request ended (answered or failed)."""
        ...

    def after_response(self, headers: Mapping[str, str]) -> None: ...


class PipedriveClient:
    def __init__(
        self,
        *,
        api_domain: str,
        token_source: TokenSource,
        timeout: float = 15.0,
        session: requests.Session | None = None,
        max_rate_limit_waits: int = 3,
        max_rate_limit_wait_seconds: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self._api_domain = api_domain.rstrip("/")
        self._token_source = token_source
        self._timeout = timeout
        self._session = session if session is not None else build_session(timeout=timeout)
        self._max_rate_limit_waits = max_rate_limit_waits
        self._max_rate_limit_wait_seconds = max_rate_limit_wait_seconds
        self._sleep = sleep
        self._rate_limiter = rate_limiter

    def __repr__(self) -> str:
        return f"PipedriveClient(api_domain={self._api_domain!r})"

    def close(self) -> None:
        self._session.close()

    # --- users ------------------------------------------------------------------------------------

    def get_current_user(self) -> CurrentUser:
        """``GET /api/v1/users/me`` (scope ``base``)."""
        return CurrentUser.from_api(self._data_object(self._request("GET", "/api/v1/users/me")))

    def get_user(self, user_id: int) -> User:
        """``GET /api/v1/users/{id}``; needs the ``users:read`` scope (403 without it)."""
        return User.from_api(self._data_object(self._request("GET", f"/api/v1/users/{int(user_id)}")))

    # --- pipelines, stages, organizations (v2) ----------------------------------------------------

    def get_pipeline(self, pipeline_id: int) -> Pipeline:
        return Pipeline.from_api(self._data_object(self._request("GET", f"/api/v2/pipelines/{int(pipeline_id)}")))

    def get_stage(self, stage_id: int) -> Stage:
        return Stage.from_api(self._data_object(self._request("GET", f"/api/v2/stages/{int(stage_id)}")))

    def get_organization(self, org_id: int) -> Organization:
        return Organization.from_api(self._data_object(self._request("GET", f"/api/v2/organizations/{int(org_id)}")))

    # --- interactive callers ----------------------------------------------------------------------

    def limit_rate_limit_waits(self, *, max_waits: int, max_wait_seconds: float) -> None:
        """Wait less on 429 than the defaults: a panel must answer inside Pipedrive's 10 seconds."""
        self._max_rate_limit_waits = max(0, max_waits)
        self._max_rate_limit_wait_seconds = max(0.0, max_wait_seconds)

    # --- deals (v2) -------------------------------------------------------------------------------

    def get_deal(self, deal_id: int) -> Deal:
        return Deal.from_api(self._data_object(self._request("GET", f"/api/v2/deals/{int(deal_id)}")))

    def list_deals(
        self,
        *,
        person_id: int | None = None,
        org_id: int | None = None,
        status: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> Page[Deal]:
        """One page of ``GET /api/v2/deals``; ``status`` is open|won|lost|deleted."""
        params = {"person_id": person_id, "org_id": org_id, "status": status}
        return self._cursor_page("/api/v2/deals", params, Deal.from_api, limit=limit, cursor=cursor)

    def iter_deals(
        self, *, person_id: int | None = None, status: str | None = None, limit: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[Deal]:
        return _iterate_cursor_pages(
            lambda cursor: self.list_deals(person_id=person_id, status=status, limit=limit, cursor=cursor)
        )

    # --- persons (v2) -----------------------------------------------------------------------------

    def get_person(self, person_id: int) -> Person:
        return Person.from_api(self._data_object(self._request("GET", f"/api/v2/persons/{int(person_id)}")))

    def list_persons(
        self, *, org_id: int | None = None, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[Person]:
        return self._cursor_page("/api/v2/persons", {"org_id": org_id}, Person.from_api, limit=limit, cursor=cursor)

    def iter_persons(self, *, limit: int = DEFAULT_PAGE_SIZE) -> Iterator[Person]:
        return _iterate_cursor_pages(lambda cursor: self.list_persons(limit=limit, cursor=cursor))

    # --- notes (v1) -------------------------------------------------------------------------------

    def create_note(
        self, *, content: str, deal_id: int | None = None, person_id: int | None = None, org_id: int | None = None
    ) -> Note:
        """``POST /api/v1/notes``; the note must be attached to at least one record."""
        if deal_id is None and person_id is None and org_id is None:
            raise ValueError("a note needs a deal_id, person_id or org_id")
        body = _without_none({"content": content, "deal_id": deal_id, "person_id": person_id, "org_id": org_id})
        return Note.from_api(self._data_object(self._request("POST", "/api/v1/notes", json_body=body)))

    def list_notes(
        self,
        *,
        deal_id: int | None = None,
        person_id: int | None = None,
        start: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
    ) -> Page[Note]:
        params = {"deal_id": deal_id, "person_id": person_id}
        return self._offset_page("/api/v1/notes", params, Note.from_api, start=start, limit=limit)

    def iter_notes(
        self, *, deal_id: int | None = None, person_id: int | None = None, limit: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[Note]:
        return _iterate_offset_pages(
            lambda start: self.list_notes(deal_id=deal_id, person_id=person_id, start=start, limit=limit)
        )

    # --- activities (v2, scope ``activities:full`` to create) -------------------------------------

    def create_activity(
        self,
        *,
        subject: str,
        type: str,
        deal_id: int | None = None,
        person_id: int | None = None,
        org_id: int | None = None,
        due_date: str | None = None,
        due_time: str | None = None,
        note: str | None = None,
    ) -> Activity:
        """``POST /api/v2/activities``: ``due_date`` ``YYYY-MM-DD`` and ``due_time`` ``HH:MM`` in UTC;
        ``type`` is an activity type's ``key_string`` (docs/pipedrive-platform.md §3, app actions)."""
        if deal_id is None and person_id is None and org_id is None:
            raise ValueError("an activity needs a deal_id, person_id or org_id")
        body = _without_none(
            {
                "subject": subject,
                "type": type,
                "deal_id": deal_id,
                "person_id": person_id,
                "org_id": org_id,
                "due_date": due_date,
                "due_time": due_time,
                "note": note,
            }
        )
        return Activity.from_api(self._data_object(self._request("POST", "/api/v2/activities", json_body=body)))

    def list_activities(
        self,
        *,
        deal_id: int | None = None,
        person_id: int | None = None,
        org_id: int | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> Page[Activity]:
        """One page of ``GET /api/v2/activities`` for a record."""
        params = {"deal_id": deal_id, "person_id": person_id, "org_id": org_id}
        return self._cursor_page("/api/v2/activities", params, Activity.from_api, limit=limit, cursor=cursor)

    # --- webhooks (v1, scope ``admin``) -----------------------------------------------------------

    def list_webhooks(self) -> list[Webhook]:
        payload = self._request("GET", "/api/v1/webhooks")
        return [Webhook.from_api(item) for item in self._data_list(payload)]

    def create_webhook(
        self,
        *,
        subscription_url: str,
        event_action: str,
        event_object: str,
        name: str,
        version: str = "2.0",
        http_auth_user: str | None = None,
        http_auth_password: str | None = None,
        user_id: int | None = None,
    ) -> Webhook:
        """``POST /api/v1/webhooks``: 400 for an unreachable URL, 422 over the 40-per-user limit."""
        body = _without_none(
            {
                "subscription_url": subscription_url,
                "event_action": event_action,
                "event_object": event_object,
                "name": name,
                "version": version,
                "http_auth_user": http_auth_user,
                "http_auth_password": http_auth_password,
                "user_id": user_id,
            }
        )
        return Webhook.from_api(self._data_object(self._request("POST", "/api/v1/webhooks", json_body=body)))

    def delete_webhook(self, webhook_id: int) -> None:
        self._request("DELETE", f"/api/v1/webhooks/{int(webhook_id)}")

    # --- field metadata (v2 ``/<entity>Fields``, cursor pagination) -------------------------------

    def list_fields(
        self, entity: str, *, limit: int = MAX_PAGE_SIZE, cursor: str | None = None
    ) -> Page[FieldDefinition]:
        """One page of ``GET /api/v2/dealFields`` (personFields, organizationFields, ...)."""
        path = FIELD_ENDPOINTS.get(entity)
        if path is None:
            raise ValueError(f"no field metadata endpoint for {entity!r}")
        return self._cursor_page(path, {}, FieldDefinition.from_api, limit=limit, cursor=cursor)

    def iter_fields(self, entity: str, *, limit: int = MAX_PAGE_SIZE) -> Iterator[FieldDefinition]:
        return _iterate_cursor_pages(lambda cursor: self.list_fields(entity, limit=limit, cursor=cursor))

    # --- pagination, written once per style -------------------------------------------------------

    def _cursor_page(
        self,
        path: str,
        params: Mapping[str, Any],
        parse: Callable[[Mapping[str, Any]], T],
        *,
        limit: int,
        cursor: str | None,
    ) -> Page[T]:
        """v2: ``limit`` (max 500) and ``cursor``; the next one is ``additional_data.next_cursor``."""
        payload = self._request("GET", path, params={**params, "limit": limit, "cursor": cursor})
        additional = payload.get("additional_data")
        next_cursor = additional.get("next_cursor") if isinstance(additional, Mapping) else None
        return Page(
            items=tuple(parse(item) for item in self._data_list(payload)),
            next_cursor=next_cursor if isinstance(next_cursor, str) and next_cursor else None,
        )

    def _offset_page(
        self,
        path: str,
        params: Mapping[str, Any],
        parse: Callable[[Mapping[str, Any]], T],
        *,
        start: int,
        limit: int,
    ) -> Page[T]:
        """v1: ``start``/``limit``; more pages while ``additional_data.pagination.more_items_in_collection``."""
        payload = self._request("GET", path, params={**params, "start": start, "limit": limit})
        items = tuple(parse(item) for item in self._data_list(payload))
        additional = payload.get("additional_data")
        pagination = additional.get("pagination") if isinstance(additional, Mapping) else None
        next_start: int | None = None
        if isinstance(pagination, Mapping) and pagination.get("more_items_in_collection"):
            announced = pagination.get("next_start")
            next_start = announced if isinstance(announced, int) and announced > start else start + len(items)
            if next_start <= start:  # an empty page that claims more would loop forever
                next_start = None
        return Page(items=items, next_start=next_start)

    # --- transport --------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send one API call with 401 and 429 handling; return the decoded JSON object."""
        query = _without_none(params or {})
        token = self._token_source.access_token()
        refreshed = False
        rate_limit_waits = 0
        while True:
            if self._rate_limiter is None:
                response = self._send(method, path, token, query, json_body)
            else:
                slot = self._rate_limiter.before_request(method, path)
                try:
                    response = self._send(method, path, token, query, json_body)
                finally:
                    self._rate_limiter.request_done(slot)
                self._rate_limiter.after_response(response.headers)
            status = response.status_code
            if status == 401:
                if refreshed:
                    raise PipedriveAuthError(_describe(method, path, response), status=401)
                logger.info("Pipedrive answered 401 to %s %s; refreshing the token once", method, path)
                token = self._token_source.refresh_after_unauthorized(token)
                refreshed = True
                continue
            if status == 429:
                wait = _rate_limit_wait(response, attempt=rate_limit_waits)
                if rate_limit_waits >= self._max_rate_limit_waits or wait > self._max_rate_limit_wait_seconds:
                    raise PipedriveRateLimited(_describe(method, path, response), retry_after=wait, status=429)
                logger.warning("Pipedrive rate-limited %s %s; waiting %.1f s", method, path, wait)
                self._sleep(wait)
                rate_limit_waits += 1
                continue
            return self._decode(method, path, response)

    @metrics.pipedrive_call
    def _send(
        self,
        method: str,
        path: str,
        token: str,
        query: Mapping[str, Any],
        json_body: Mapping[str, Any] | None,
    ) -> requests.Response:
        try:
            return self._session.request(
                method,
                f"{self._api_domain}{path}",
                params=dict(query) or None,
                json=json_body,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise PipedriveUnavailable(f"{method} {path}: timed out") from exc
        except requests.RequestException as exc:
            # The exception text can quote the URL (never the token); keep only its class name.
            raise PipedriveUnavailable(f"{method} {path}: {type(exc).__name__}") from exc

    def _decode(self, method: str, path: str, response: requests.Response) -> dict[str, Any]:
        status = response.status_code
        if 200 <= status < 300:
            try:
                payload = response.json()
            except ValueError as exc:
                raise PipedriveUnavailable(f"{method} {path}: malformed JSON response", status=status) from exc
            if not isinstance(payload, dict):
                raise PipedriveUnavailable(f"{method} {path}: unexpected response shape", status=status)
            return payload
        message = _describe(method, path, response)
        if status == 403:
            raise PipedriveForbidden(message, status=status)
        if status == 404:
            raise PipedriveNotFound(message, status=status)
        if status in _VALIDATION_STATUSES:
            raise PipedriveValidationError(message, status=status)
        if status >= 500:
            raise PipedriveUnavailable(message, status=status)
        raise PipedriveError(message, status=status)

    @staticmethod
    def _data_object(payload: Mapping[str, Any]) -> Mapping[str, Any]:
        data = payload.get("data")
        if not isinstance(data, Mapping):
            raise PipedriveUnavailable("response has no data object")
        return data

    @staticmethod
    def _data_list(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        data = payload.get("data")
        if data is None:  # v1 lists answer ``"data": null`` when empty
            return []
        if not isinstance(data, list):
            raise PipedriveUnavailable("response has no data list")
        return [item for item in data if isinstance(item, Mapping)]


# --- pagination iterators -------------------------------------------------------------------------


def _iterate_cursor_pages(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        page = fetch(cursor)
        yield from page.items
        if page.next_cursor is None or page.next_cursor in seen:
            return
        seen.add(page.next_cursor)
        cursor = page.next_cursor


def _iterate_offset_pages(fetch: Callable[[int], Page[T]]) -> Iterator[T]:
    start = 0
    while True:
        page = fetch(start)
        yield from page.items
        if page.next_start is None or page.next_start <= start:
            return
        start = page.next_start


# --- response reading -----------------------------------------------------------------------------


def _without_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _error_text(response: requests.Response) -> str:
    """Pipedrive's own reason: ``error`` (+ ``error_info``), ``message`` or a field ``errors`` map."""
    try:
        payload = response.json()
    except ValueError:
        return ""
    if not isinstance(payload, Mapping):
        return ""
    parts: list[str] = []
    for key in ("error", "message", "error_info"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            parts.append(value)
    errors = payload.get("errors")
    if isinstance(errors, Mapping):
        for field_name, reasons in errors.items():
            text = ", ".join(str(r) for r in reasons) if isinstance(reasons, list) else str(reasons)
            parts.append(f"{field_name}: {text}")
    return "; ".join(parts)


def _describe(method: str, path: str, response: requests.Response) -> str:
    text = _error_text(response)
    message = f"{method} {path}: HTTP {response.status_code}"
    return redact(f"{message}: {text[:500]}") if text else message


def _header_seconds(value: str | None, *, now: float) -> float | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        try:  # Retry-After may also be an HTTP date
            return parsedate_to_datetime(text).timestamp() - now
        except (TypeError, ValueError):
            return None
    return number - now if number > _EPOCH_THRESHOLD else number


def _rate_limit_wait(response: requests.Response, *, attempt: int) -> float:
    """Seconds to wait after a 429: ``Retry-After``, else ``x-ratelimit-reset``, else back off."""
    now = time.time()
    for header in ("Retry-After", "x-ratelimit-reset"):
        seconds = _header_seconds(response.headers.get(header), now=now)
        if seconds is not None:
            return max(0.0, seconds)
    return _FALLBACK_RATE_LIMIT_WAIT * (2**attempt)
