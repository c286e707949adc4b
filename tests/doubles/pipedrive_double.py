"""A loopback HTTP double of Pipedrive: its OAuth server and the REST subset this app uses.

Tests talk to it over real HTTP (``http.server`` on 127.0.0.1, an ephemeral port, a daemon thread),
so the app's real ``requests`` sessions, retries and timeouts are exercised; other processes (a live
server, a worker) reach it the same way through ``base_url``. ``base_url`` is both the OAuth server
and the ``api_domain`` the token endpoint hands out.

Every fact about Pipedrive (scopes, limits, shapes, error bodies, cursors, validation, the OpenAPI
loading) comes from the sandbox's ``sandbox/facts/`` package, the one place they are written; this
module is test control over them: an in-memory store, fault injection, a request log, counters and a
clock to move. Every request
it receives is validated against v1.yaml/v2.yaml, and so is every response it produces for an
operation it implements; problems collect in ``contract_violations`` (``tests/doubles/fixtures.py``
fails a test that leaves any).

Layout: secrets registry, records, state, replies, the double (lifecycle, seeding, control,
observation, dispatch, OAuth endpoints, REST endpoints), the route table, the HTTP plumbing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from requests.structures import CaseInsensitiveDict

from sandbox.facts import cursor, errors, limits, tokens, validation, wire
from sandbox.facts import scopes as scope_facts
from sandbox.facts.operations import OPERATIONS
from tests.doubles import openapi_contract
from tests.doubles.openapi_contract import ExchangeRequest, ExchangeResponse

# Every fact about Pipedrive (lifetimes, limits, scopes, shapes, error bodies, cursors, validation) is
# the sandbox's (sandbox/facts/); this module adds only what tests need: an in-memory store, fault
# injection, a request log, counters and a clock to move.
REFRESH_TOKEN_IDLE_LIFETIME = limits.REFRESH_TOKEN_IDLE_DAYS * 24 * 3600

# --- secrets registry -------------------------------------------------------------------------------

_issued: set[str] = set()
_issued_lock = threading.Lock()


def issued_secrets() -> frozenset[str]:
    """Every token, code, client secret and webhook password any double in this process handled.

    The suite scans all log output for these at the end of the run.
    """
    with _issued_lock:
        return frozenset(_issued)


def _remember_secret(value: str | None) -> None:
    if value:
        with _issued_lock:
            _issued.add(value)


# --- records ----------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the double received it. Headers are raw (tests assert on Authorization);
    they stay out of ``repr`` so a failing assertion does not print a token."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    received_at: float = field(default_factory=time.monotonic, repr=False)  # arrival (rate-limit tests)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    @property
    def bearer_token(self) -> str | None:
        scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
        return credentials if scheme.lower() == "bearer" else None


class Rendezvous:
    """Holds requests to some paths until ``together`` of them are held at once (or ``timeout``).

    Proof of concurrency without a stopwatch: callers that send the requests together meet here and
    are answered at once (``met``); callers that send them one after another never meet, and each
    request waits ``timeout`` alone (``most_together`` stays 1).
    """

    def __init__(self, paths: Iterable[str], together: int, timeout: float) -> None:
        self.paths = frozenset(paths)
        self.together = together
        self.timeout = timeout
        self.met = False
        self.most_together = 0
        self._waiting = 0
        self._condition = threading.Condition()

    def wait(self) -> None:
        with self._condition:
            self._waiting += 1
            self.most_together = max(self.most_together, self._waiting)
            if self._waiting >= self.together:
                self.met = True
                self._condition.notify_all()
            elif not self.met:
                self._condition.wait_for(lambda: self.met, timeout=self.timeout)
            if not self.met:
                self._waiting -= 1  # gave up alone: the next one starts over


@dataclass
class _Fault:
    status: int
    body: bytes
    headers: dict[str, str]
    delay: float
    remaining: int


# --- state ------------------------------------------------------------------------------------------


@dataclass
class _Company:
    id: int
    name: str
    domain: str
    deals: dict[int, dict[str, Any]] = field(default_factory=dict)
    persons: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: dict[int, dict[str, Any]] = field(default_factory=dict)
    activities: dict[int, dict[str, Any]] = field(default_factory=dict)
    webhooks: dict[int, dict[str, Any]] = field(default_factory=dict)
    # v2 field metadata per fields endpoint ("deal", "person", "organization", ...), in list order.
    fields: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pipelines: dict[int, dict[str, Any]] = field(default_factory=dict)
    stages: dict[int, dict[str, Any]] = field(default_factory=dict)
    organizations: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _User:
    company_id: int
    id: int
    name: str
    email: str
    is_admin: bool
    scopes: str
    locale: str
    timezone_name: str


@dataclass
class _AuthorizationCode:
    company_id: int
    user_id: int
    redirect_uri: str
    scopes: str
    expires_at: float
    used: bool = False


@dataclass
class _RefreshGrant:
    company_id: int
    user_id: int
    scopes: str
    last_used_at: float
    revoked: bool = False


@dataclass
class _AccessGrant:
    company_id: int
    user_id: int
    scopes: str
    refresh_token: str
    expires_at: float
    revoked: bool = False

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(part for part in self.scopes.replace(" ", ",").split(",") if part)


# --- replies ----------------------------------------------------------------------------------------


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json_reply(status: int, payload: Any, *, headers: Mapping[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), "application/json", dict(headers or {}))


class _Refusal(Exception):
    """Raised inside an endpoint to answer with an error right away."""

    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _api_error(http_status: int, message: str, **extra: Any) -> _Refusal:
    return _Refusal(_json_reply(http_status, errors.api_error(http_status, message, **extra)))


def _oauth_error(status: int, error: str, description: str) -> _Refusal:
    return _Refusal(_json_reply(status, errors.oauth_error(error, description)))


@dataclass
class _Call:
    """What an endpoint sees of a request."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes
    path_args: dict[str, str]
    grant: _AccessGrant | None = None

    def json_body(self) -> dict[str, Any]:
        try:
            payload = json.loads(self.body or b"{}")
        except ValueError:
            raise _api_error(400, "Request body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise _api_error(400, "Request body must be a JSON object")
        return payload

    def form_body(self) -> dict[str, str]:
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise _oauth_error(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def int_query(self, name: str) -> int | None:
        try:
            return validation.int_param(self.query, name)
        except validation.InvalidQuery as exc:
            raise _api_error(400, str(exc)) from None


# --- the double -------------------------------------------------------------------------------------


class PipedriveDouble:
    """Pipedrive's OAuth server and REST subset on loopback. Start it, seed it, point the app at it.

    Observation (appended under the double's lock; read them freely):

    - ``requests``: every request received, in order, including fault-injected ones;
    - ``grants``: the ``grant_type`` of every ``/oauth/token`` call, failed or injected ones too;
    - ``refresh_count``: refresh grants that succeeded;
    - ``revoked``: ``(token_type_hint, "company_id:user_id" or "unknown")`` per ``/oauth/revoke``;
    - ``contract_violations``: token-free messages for requests and responses the OpenAPI files
      reject (fault-injected answers are the test's own and are not judged).

    Data (deals, persons, notes, webhooks) is per company: an access token sees its company's.
    """

    def __init__(
        self,
        *,
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret",
        validate_contract: bool = True,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.validate_contract = validate_contract
        _remember_secret(client_secret)
        self.base_url = ""
        # Settable behaviour.
        self.access_token_lifetime: int = limits.ACCESS_TOKEN_LIFETIME_SECONDS
        self.refresh_delay: float = 0.0  # the token endpoint sleeps this long on a refresh grant
        self.rotate_refresh_tokens: bool = False  # True: each refresh returns a new refresh token
        self.unreachable_subscription_urls: set[str] = set()  # webhook create answers 400 for these
        self.api_delay: float = 0.0  # every /api/ answer waits this long first (latency for benchmarks)
        # Observation.
        self.requests: list[RecordedRequest] = []
        self.grants: list[str] = []
        self.refresh_count: int = 0
        self.revoked: list[tuple[str, str]] = []
        self.contract_violations: list[str] = []

        self._lock = threading.RLock()
        self._clock_offset = 0.0
        self._companies: dict[int, _Company] = {}
        self._users: dict[tuple[int, int], _User] = {}
        self._codes: dict[str, _AuthorizationCode] = {}
        self._refresh_tokens: dict[str, _RefreshGrant] = {}
        self._access_tokens: dict[str, _AccessGrant] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        kinds = ("deal", "person", "note", "activity", "webhook", "pipeline", "stage", "organization")
        self._ids = {kind: itertools.count(1) for kind in kinds}
        self._authorize_decision: tuple[int, int] | str | None = None
        self._rendezvous: Rendezvous | None = None
        self._server: _DoubleServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"PipedriveDouble(base_url={self.base_url!r})"

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> PipedriveDouble:
        if self._server is not None:
            return self
        if self.validate_contract:
            openapi_contract.load_specs()  # before serving: the first request must not wait for it
        server = _DoubleServer(("127.0.0.1", 0), _Handler)
        server.double = self
        self._server = server
        host, port = server.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="pipedrive-double", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> PipedriveDouble:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- seeding --------------------------------------------------------------------------------

    def add_company(self, company_id: int, *, name: str | None = None, domain: str | None = None) -> None:
        with self._lock:
            company = self._companies.get(company_id)
            if company is None:
                self._companies[company_id] = _Company(
                    company_id, name or f"Company {company_id}", domain or f"company{company_id}"
                )
            else:
                company.name = name or company.name
                company.domain = domain or company.domain

    def add_user(
        self,
        company_id: int,
        user_id: int,
        *,
        name: str | None = None,
        email: str | None = None,
        is_admin: bool = True,
        scopes: str = scope_facts.APP_SCOPES,
        locale: str = "en_US",
        timezone_name: str = "Europe/Tallinn",
    ) -> None:
        """Add (or update) a user; the scopes are what the user's next consent grants."""
        with self._lock:
            if company_id not in self._companies:
                self.add_company(company_id)
            self._users[(company_id, user_id)] = _User(
                company_id=company_id,
                id=user_id,
                name=name or f"User {user_id}",
                email=email or f"user{user_id}@company{company_id}.example",
                is_admin=is_admin,
                scopes=scopes,
                locale=locale,
                timezone_name=timezone_name,
            )

    def add_deal(self, company_id: int, **fields: Any) -> dict[str, Any]:
        """Seed a v2 deal (``facts.wire.deal_v2``); unspecified fields get plausible defaults. Returns a copy."""
        with self._lock:
            company = self._company(company_id)
            deal_id = int(fields.pop("id", None) or next(self._ids["deal"]))
            stamp = self._rfc3339()
            owner = self._default_owner(company_id)
            defaults = {"title": f"Deal {deal_id}", "creator_user_id": owner, "owner_id": owner}
            defaults |= {"pipeline_id": 1, "stage_id": 1, "add_time": stamp, "update_time": stamp}
            deal = wire.deal_v2({**defaults, **fields, "id": deal_id})
            company.deals[deal_id] = deal
            return json.loads(json.dumps(deal))

    def add_person(self, company_id: int, **fields: Any) -> dict[str, Any]:
        """Seed a v2 person; ``emails``/``phones`` may be plain strings. Returns a copy."""
        with self._lock:
            company = self._company(company_id)
            person_id = int(fields.pop("id", None) or next(self._ids["person"]))
            stamp = self._rfc3339()
            problems: dict[str, list[str]] = {}
            for name, label in (("emails", "work"), ("phones", "mobile")):
                if name in fields:
                    fields[name] = validation.contact_points(fields[name], label=label, name=name, errors=problems)
            defaults = {"name": f"Person {person_id}", "owner_id": self._default_owner(company_id)}
            defaults |= {"add_time": stamp, "update_time": stamp}
            person = wire.person_v2({**defaults, **fields, "id": person_id})
            company.persons[person_id] = person
            return json.loads(json.dumps(person))

    def add_pipeline(self, company_id: int, **fields: Any) -> dict[str, Any]:
        """Seed a v2 pipeline. Returns a copy."""
        with self._lock:
            company = self._company(company_id)
            pipeline_id = int(fields.pop("id", None) or next(self._ids["pipeline"]))
            stamp = self._rfc3339()
            defaults = {"name": f"Pipeline {pipeline_id}", "order_nr": pipeline_id, "add_time": stamp}
            pipeline = wire.pipeline_v2({**defaults, "update_time": stamp, **fields, "id": pipeline_id})
            company.pipelines[pipeline_id] = pipeline
            return json.loads(json.dumps(pipeline))

    def add_stage(self, company_id: int, **fields: Any) -> dict[str, Any]:
        """Seed a v2 stage (``pipeline_id`` defaults to 1). Returns a copy."""
        with self._lock:
            company = self._company(company_id)
            stage_id = int(fields.pop("id", None) or next(self._ids["stage"]))
            stamp = self._rfc3339()
            defaults = {"name": f"Stage {stage_id}", "order_nr": stage_id, "pipeline_id": 1, "add_time": stamp}
            stage = wire.stage_v2({**defaults, "update_time": stamp, **fields, "id": stage_id})
            company.stages[stage_id] = stage
            return json.loads(json.dumps(stage))

    def add_organization(self, company_id: int, **fields: Any) -> dict[str, Any]:
        """Seed a v2 organization; ``address`` may be a plain string. Returns a copy."""
        with self._lock:
            company = self._company(company_id)
            org_id = int(fields.pop("id", None) or next(self._ids["organization"]))
            stamp = self._rfc3339()
            defaults = {"name": f"Organization {org_id}", "owner_id": self._default_owner(company_id)}
            defaults |= {"add_time": stamp, "update_time": stamp}
            organization = wire.organization_v2({**defaults, **fields, "id": org_id})
            company.organizations[org_id] = organization
            return json.loads(json.dumps(organization))

    def add_field(
        self,
        company_id: int,
        entity: str,
        *,
        field_code: str | None = None,
        field_name: str,
        field_type: str = "varchar",
        options: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Seed a field served by ``GET /api/v2/<entity>Fields``; without ``field_code`` a custom field
        with a 40-character hash key. Returns a copy."""
        with self._lock:
            company = self._company(company_id)
            code = field_code or tokens.new_custom_field_key()
            record = wire.field_v2(
                name=field_name, code=code, field_type=field_type, custom=field_code is None, options=options
            )
            company.fields.setdefault(entity, []).append(record)
            return json.loads(json.dumps(record))

    def issue_code(self, company_id: int, user_id: int, *, redirect_uri: str) -> str:
        """An authorization code, as if the user clicked "Allow and install" (single use, 5 minutes)."""
        with self._lock:
            user = self._user(company_id, user_id)
            code = tokens.new_authorization_code()
            _remember_secret(code)
            self._codes[code] = _AuthorizationCode(
                company_id=company_id,
                user_id=user_id,
                redirect_uri=redirect_uri,
                scopes=scope_facts.response_scope(scope_facts.granted(user.scopes, is_admin=user.is_admin)),
                expires_at=self.now() + limits.AUTHORIZATION_CODE_LIFETIME_SECONDS,
            )
            return code

    def authorize_as(self, company_id: int, user_id: int) -> None:
        """``GET /oauth/authorize`` will redirect to the callback with a code for this user."""
        with self._lock:
            self._user(company_id, user_id)
            self._authorize_decision = (company_id, user_id)

    def deny_authorizations(self) -> None:
        """``GET /oauth/authorize`` will redirect to the callback with ``error=user_denied``."""
        with self._lock:
            self._authorize_decision = "deny"

    # --- control --------------------------------------------------------------------------------

    def now(self) -> float:
        """The double's clock (wall time plus ``advance_clock`` offsets)."""
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the double's clock: expires access tokens, codes and idle refresh tokens naturally."""
        with self._lock:
            self._clock_offset += seconds

    def expire_access_token(self, token: str) -> None:
        with self._lock:
            grant = self._access_tokens.get(token)
            if grant is not None:
                grant.expires_at = self.now() - 1

    def revoke_all(self, company_id: int, user_id: int) -> None:
        """The user uninstalled in Pipedrive: refresh grants answer invalid_grant, access tokens 401,
        and the webhooks the user created are gone (docs/app-uninstallation)."""
        with self._lock:
            self._revoke_user(company_id, user_id)

    def fail_next(
        self,
        path: str,
        *,
        status: int,
        body: bytes | dict[str, Any] | None = None,
        times: int = 1,
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests to exactly ``path`` (any method) with ``status``.

        ``delay`` seconds pass first; status 0 then drops the connection without an answer (with a
        delay above the client's timeout: a timeout). ``body`` may be bytes (malformed on purpose).
        """
        if isinstance(body, dict):
            payload = json.dumps(body).encode()
        elif body is None:
            payload = json.dumps({"success": False, "error": "injected failure", "errorCode": status}).encode()
        else:
            payload = body
        fault = _Fault(status=status, body=payload, headers=dict(headers or {}), delay=delay, remaining=times)
        with self._lock:
            self._faults.setdefault(path, deque()).append(fault)

    def rate_limit_next(self, path: str, *, times: int = 1, retry_after: int | None = 1, reset: int | None = 1) -> None:
        """Answer 429 with ``Retry-After`` and/or ``x-ratelimit-reset`` (None leaves a header out)."""
        state = limits.LimitState(allowed=False, limit=limits.BURST_LIMIT, remaining=0, reset_seconds=reset or 0)
        headers = {name: value for name, value in state.headers().items() if name.lower() != "retry-after"}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if reset is None:
            headers.pop("x-ratelimit-reset")
        self.fail_next(path, status=429, body=errors.over_limit(), times=times, headers=headers)

    def hold_until_together(
        self, paths: Iterable[str], *, together: int | None = None, timeout: float = 5.0
    ) -> Rendezvous:
        """Hold requests to ``paths`` until ``together`` (default: one per path) are held at once.

        ``/api/`` requests are held on arrival; ``/oauth/token`` refresh grants after their
        ``refresh_delay``, where they run outside the double's lock. See ``Rendezvous``.
        """
        paths = frozenset(paths)
        rendezvous = Rendezvous(paths, len(paths) if together is None else together, timeout)
        with self._lock:
            self._rendezvous = rendezvous
        return rendezvous

    def _hold(self, path: str) -> None:
        rendezvous = self._rendezvous
        if rendezvous is not None and path in rendezvous.paths:
            rendezvous.wait()

    def drop_webhook(self, webhook_id: int) -> None:
        """Pipedrive deleted a webhook on its own (e.g. after 3 days without a successful delivery)."""
        with self._lock:
            for company in self._companies.values():
                company.webhooks.pop(webhook_id, None)

    def uninstall_notification(self, company_id: int, user_id: int) -> tuple[dict[str, str], bytes]:
        """Headers and JSON body of the ``DELETE <callback_url>`` Pipedrive sends on uninstall."""
        credentials = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        at = datetime.fromtimestamp(self.now(), UTC)
        body = wire.uninstall_notice(client_id=self.client_id, company_id=company_id, user_id=user_id, at=at)
        headers = {"Authorization": f"Basic {credentials}", "Content-Type": "application/json"}
        return headers, json.dumps(body).encode()

    # --- observation ----------------------------------------------------------------------------

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def take_contract_violations(self) -> list[str]:
        """Return and forget the violations (for tests that send a bad request on purpose)."""
        with self._lock:
            taken = list(self.contract_violations)
            self.contract_violations.clear()
            return taken

    def company_deals(self, company_id: int) -> list[dict[str, Any]]:
        return self._snapshot(company_id, "deals")

    def company_persons(self, company_id: int) -> list[dict[str, Any]]:
        return self._snapshot(company_id, "persons")

    def company_notes(self, company_id: int) -> list[dict[str, Any]]:
        return self._snapshot(company_id, "notes")

    def company_activities(self, company_id: int) -> list[dict[str, Any]]:
        return self._snapshot(company_id, "activities")

    def company_webhooks(self, company_id: int) -> list[dict[str, Any]]:
        """Stored webhooks, including ``http_auth_password`` (which the API never echoes)."""
        return self._snapshot(company_id, "webhooks")

    def access_tokens_of(self, company_id: int, user_id: int) -> list[str]:
        """Access tokens issued to a user that are still accepted, newest last."""
        with self._lock:
            return [
                token
                for token, grant in self._access_tokens.items()
                if (grant.company_id, grant.user_id) == (company_id, user_id) and self._usable(grant)
            ]

    def _snapshot(self, company_id: int, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            company = self._companies.get(company_id)
            records = getattr(company, kind).values() if company else []
            return [json.loads(json.dumps(record)) for record in records]

    # --- dispatch (called on the server's threads) ----------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> _Reply | None:
        """Answer one HTTP request; None means drop the connection without answering."""
        parts = urlsplit(target)
        path = parts.path
        query_pairs = parse_qsl(parts.query, keep_blank_values=True)
        recorded = RecordedRequest(method, path, dict(query_pairs), CaseInsensitiveDict(headers), body)
        exchange = ExchangeRequest(
            method=method,
            path=path,
            query=query_pairs,
            headers=dict(headers),
            body=body,
            content_type=recorded.headers.get("Content-Type", ""),
        )
        with self._lock:
            self.requests.append(recorded)
            if path == "/oauth/token":
                self.grants.append(recorded.form().get("grant_type", ""))
            fault = self._take_fault(path)
        if self.validate_contract:
            self._record_violations(openapi_contract.request_violations(exchange, secrets=issued_secrets()))
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status == 0:
                return None
            return _Reply(fault.status, fault.body, "application/json", fault.headers)

        if self.api_delay and path.startswith("/api/"):
            time.sleep(self.api_delay)
        if path.startswith("/api/"):
            self._hold(path)
        route, path_args = _find_route(method, path)
        if route is None:
            return _json_reply(404, {"success": False, "error": "Unknown method .", "errorCode": 404})
        call = _Call(method, path, dict(query_pairs), recorded.headers, body, path_args)
        try:
            if route.locked:
                with self._lock:
                    reply = route.endpoint(self, call)
            else:
                reply = route.endpoint(self, call)
        except _Refusal as refusal:
            reply = refusal.reply
        if self.validate_contract:
            response = ExchangeResponse(reply.status, reply.body, reply.content_type, reply.headers)
            self._record_violations(openapi_contract.response_violations(exchange, response, secrets=issued_secrets()))
        return reply

    def _take_fault(self, path: str) -> _Fault | None:
        queue = self._faults.get(path)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.popleft()
        return fault

    def _record_violations(self, violations: Iterable[str]) -> None:
        violations = list(violations)
        if violations:
            with self._lock:
                self.contract_violations.extend(violations)

    # --- OAuth server (docs/marketplace-oauth-authorization) ------------------------------------

    def _oauth_authorize(self, call: _Call) -> _Reply:
        redirect_uri = call.query.get("redirect_uri", "")
        if call.query.get("client_id") != self.client_id or not redirect_uri:
            return _Reply(400, b"<p>Unknown app or missing redirect_uri.</p>", "text/html")
        params = {"state": call.query["state"]} if "state" in call.query else {}
        decision = self._authorize_decision
        if decision is None:
            return _Reply(200, b"<p>Allow and install? (the double awaits authorize_as())</p>", "text/html")
        if isinstance(decision, tuple):
            company_id, user_id = decision
            params = {"code": self.issue_code(company_id, user_id, redirect_uri=redirect_uri), **params}
        else:
            params = {"error": "user_denied", **params}
        separator = "&" if "?" in redirect_uri else "?"
        return _Reply(302, b"", "text/html", {"Location": f"{redirect_uri}{separator}{urlencode(params)}"})

    def _oauth_token(self, call: _Call) -> _Reply:
        # Not run under the lock: a refresh sleeps ``refresh_delay`` first, to widen refresh races.
        self._require_client(call)
        form = call.form_body()
        grant_type = form.get("grant_type", "")
        if grant_type == "refresh_token":
            if self.refresh_delay:
                time.sleep(self.refresh_delay)
            self._hold(call.path)
        with self._lock:
            if grant_type == "authorization_code":
                payload = self._exchange_code(form)
            elif grant_type == "refresh_token":
                payload = self._refresh(form)
            else:
                raise _oauth_error(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        return _json_reply(200, payload, headers={"Cache-Control": "no-store"})

    def _exchange_code(self, form: Mapping[str, str]) -> dict[str, Any]:
        code = self._codes.get(form.get("code", ""))
        if code is None or code.used or code.expires_at < self.now():
            raise _oauth_error(400, "invalid_grant", "authorization code is invalid, expired or already used")
        if form.get("redirect_uri") != code.redirect_uri:
            raise _oauth_error(400, "invalid_grant", "redirect_uri does not match the authorization request")
        code.used = True
        refresh_token = tokens.new_refresh_token()
        _remember_secret(refresh_token)
        self._refresh_tokens[refresh_token] = _RefreshGrant(
            company_id=code.company_id, user_id=code.user_id, scopes=code.scopes, last_used_at=self.now()
        )
        return self._token_response(refresh_token)

    def _refresh(self, form: Mapping[str, str]) -> dict[str, Any]:
        refresh_token = form.get("refresh_token", "")
        grant = self._refresh_tokens.get(refresh_token)
        if grant is None or grant.revoked or grant.last_used_at + REFRESH_TOKEN_IDLE_LIFETIME < self.now():
            raise _oauth_error(400, "invalid_grant", "refresh token is invalid, revoked or expired")
        grant.last_used_at = self.now()  # the 60-day window restarts on every use
        if self.rotate_refresh_tokens:
            grant.revoked = True  # "already exchanged"
            refresh_token = tokens.new_refresh_token()
            _remember_secret(refresh_token)
            self._refresh_tokens[refresh_token] = _RefreshGrant(
                company_id=grant.company_id, user_id=grant.user_id, scopes=grant.scopes, last_used_at=self.now()
            )
        self.refresh_count += 1
        return self._token_response(refresh_token)

    def _token_response(self, refresh_token: str) -> dict[str, Any]:
        grant = self._refresh_tokens[refresh_token]
        access_token = tokens.new_access_token()
        _remember_secret(access_token)
        self._access_tokens[access_token] = _AccessGrant(
            company_id=grant.company_id,
            user_id=grant.user_id,
            scopes=grant.scopes,
            refresh_token=refresh_token,
            expires_at=self.now() + self.access_token_lifetime,
        )
        return wire.token_response(
            access_token=access_token,
            refresh_token=refresh_token,
            scopes=scope_facts.parse(grant.scopes),
            expires_in=self.access_token_lifetime,
            api_domain=self.base_url,
        )

    def _oauth_revoke(self, call: _Call) -> _Reply:
        """RFC 7009: 200 whatever the token; a refresh token takes the installation with it."""
        self._require_client(call)
        form = call.form_body()
        token = form.get("token", "")
        hint = form.get("token_type_hint", "")
        if token in self._refresh_tokens:
            grant = self._refresh_tokens[token]
            self.revoked.append((hint, f"{grant.company_id}:{grant.user_id}"))
            self._revoke_user(grant.company_id, grant.user_id)
        elif token in self._access_tokens:
            access = self._access_tokens[token]
            self.revoked.append((hint, f"{access.company_id}:{access.user_id}"))
            access.revoked = True
        else:
            self.revoked.append((hint, "unknown"))
        return _json_reply(200, {})

    def _require_client(self, call: _Call) -> None:
        scheme, _, encoded = call.headers.get("Authorization", "").partition(" ")
        try:
            client_id, _, client_secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            client_id = client_secret = ""
        if (
            scheme.lower() != "basic"
            or not hmac.compare_digest(client_id.encode(), self.client_id.encode())
            or not hmac.compare_digest(client_secret.encode(), self.client_secret.encode())
        ):
            raise _Refusal(_json_reply(401, {"error": "invalid_client", "error_description": "client auth failed"}))

    def _revoke_user(self, company_id: int, user_id: int) -> None:
        for refresh in self._refresh_tokens.values():
            if (refresh.company_id, refresh.user_id) == (company_id, user_id):
                refresh.revoked = True
        for access in self._access_tokens.values():
            if (access.company_id, access.user_id) == (company_id, user_id):
                access.revoked = True
        company = self._companies.get(company_id)
        if company is not None:
            company.webhooks = {k: w for k, w in company.webhooks.items() if w["owner_id"] != user_id}

    # --- REST API: authentication and scopes ----------------------------------------------------

    def _authenticate(self, call: _Call, route: _Route) -> _AccessGrant:
        scheme, _, token = call.headers.get("Authorization", "").partition(" ")
        grant = self._access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None or not self._usable(grant):
            raise _Refusal(_json_reply(401, errors.unauthorized()))
        accepted = openapi_contract.operation_scopes(route.spec_name, route.method, route.spec_template)
        if not scope_facts.allows(grant.scope_set, accepted):
            # A regular user's install lacks ``admin`` (facts.scopes.granted): webhook calls are 403.
            raise _Refusal(_json_reply(403, errors.scope_denied(accepted)))
        if scope_facts.admin_only(accepted) and not self._user(grant.company_id, grant.user_id).is_admin:
            raise _Refusal(_json_reply(403, errors.admin_required()))
        return grant

    def _usable(self, grant: _AccessGrant) -> bool:
        return not grant.revoked and grant.expires_at > self.now()

    # --- REST API: users ------------------------------------------------------------------------

    def _user_wire(self, user: _User, *, viewer_id: int) -> dict[str, Any]:
        stamp = datetime.fromtimestamp(self.now(), UTC)
        return wire.user_v1(
            id=user.id,
            name=user.name,
            email=user.email,
            is_admin=user.is_admin,
            locale=user.locale,
            timezone_name=user.timezone_name,
            company_id=user.company_id,
            created=stamp,
            last_login=stamp,
            viewer_id=viewer_id,
        )

    def _users_me(self, call: _Call) -> _Reply:
        grant = _granted(call)
        user = self._user(grant.company_id, grant.user_id)
        company = self._company(grant.company_id)
        me = wire.user_me(
            self._user_wire(user, viewer_id=user.id),
            company_id=company.id,
            company_name=company.name,
            company_domain=company.domain,
        )
        return _json_reply(200, {"success": True, "data": me})

    def _users_list(self, call: _Call) -> _Reply:
        grant = _granted(call)
        users = [u for (cid, _), u in sorted(self._users.items()) if cid == grant.company_id]
        data = [self._user_wire(user, viewer_id=grant.user_id) for user in users]
        return _json_reply(200, {"success": True, "data": data})

    def _users_get(self, call: _Call) -> _Reply:
        grant = _granted(call)
        user = self._users.get((grant.company_id, _path_int(call, "id")))
        if user is None:
            raise _api_error(404, "User not found")
        return _json_reply(200, {"success": True, "data": self._user_wire(user, viewer_id=grant.user_id)})

    # --- REST API: pipelines, stages, organizations (v2) ----------------------------------------

    def _pipelines_get(self, call: _Call) -> _Reply:
        return self._v2_get(call, self._company(_granted(call).company_id).pipelines, "Pipeline")

    def _stages_get(self, call: _Call) -> _Reply:
        return self._v2_get(call, self._company(_granted(call).company_id).stages, "Stage")

    def _organizations_get(self, call: _Call) -> _Reply:
        return self._v2_get(call, self._company(_granted(call).company_id).organizations, "Organization")

    # --- REST API: deals and persons (v2, cursor pagination) ------------------------------------

    def _deals_get(self, call: _Call) -> _Reply:
        return self._v2_get(call, self._company(_granted(call).company_id).deals, "Deal")

    def _deals_list(self, call: _Call) -> _Reply:
        statuses = {s for s in call.query.get("status", "").split(",") if s}
        filters = {
            name: call.int_query(name) for name in ("person_id", "org_id", "owner_id", "stage_id", "pipeline_id")
        }

        def wanted(deal: dict[str, Any]) -> bool:
            if statuses and deal.get("status") not in statuses and not ("deleted" in statuses and deal["is_deleted"]):
                return False
            if not statuses and deal.get("is_deleted"):
                return False
            return all(value is None or deal.get(name) == value for name, value in filters.items())

        return self._v2_list(call, self._company(_granted(call).company_id).deals, wanted)

    def _persons_get(self, call: _Call) -> _Reply:
        return self._v2_get(call, self._company(_granted(call).company_id).persons, "Person")

    def _persons_list(self, call: _Call) -> _Reply:
        filters = {name: call.int_query(name) for name in ("org_id", "owner_id")}

        def wanted(person: dict[str, Any]) -> bool:
            if person.get("is_deleted"):
                return False
            return all(value is None or person.get(name) == value for name, value in filters.items())

        return self._v2_list(call, self._company(_granted(call).company_id).persons, wanted)

    def _v2_get(self, call: _Call, records: Mapping[int, dict[str, Any]], kind: str) -> _Reply:
        record = records.get(_path_int(call, "id"))
        if record is None:
            raise _Refusal(_json_reply(404, errors.not_found(kind)))
        return _json_reply(200, {"success": True, "data": record})

    def _v2_list(
        self, call: _Call, records: Mapping[int, dict[str, Any]], wanted: Callable[[dict[str, Any]], bool]
    ) -> _Reply:
        with _invalid_query_is_400():
            limit = validation.page_limit(call.query)
            after = cursor.decode_after(call.query.get("cursor"))
        ids = {int(i) for i in call.query.get("ids", "").split(",") if i.strip().isdigit()}
        matching = [
            records[key] for key in sorted(records) if key > after and (not ids or key in ids) and wanted(records[key])
        ]
        page = matching[:limit]
        next_cursor = cursor.encode_after(page[-1]["id"]) if len(matching) > limit else None
        return _json_reply(200, wire.cursor_page(page, next_cursor))

    # --- REST API: field metadata (v2, cursor pagination) ---------------------------------------

    def _fields_list(self, call: _Call) -> _Reply:
        entity = call.path.rsplit("/", 1)[-1].removesuffix("Fields")
        records = self._company(_granted(call).company_id).fields.get(entity, [])
        with _invalid_query_is_400():
            limit = validation.page_limit(call.query)
            offset = cursor.decode_offset(call.query.get("cursor"))
        more = offset + limit < len(records)
        return _json_reply(
            200,
            wire.cursor_page(records[offset : offset + limit], cursor.encode_offset(offset + limit) if more else None),
        )

    # --- REST API: notes (v1, start/limit pagination) -------------------------------------------

    def _notes_create(self, call: _Call) -> _Reply:
        grant = _granted(call)
        company = self._company(grant.company_id)
        body = call.json_body()
        problems: dict[str, list[str]] = {}
        content = validation.note_body(body, problems)
        ids = {name: validation.int_field(body, name, problems) for name in ("deal_id", "person_id", "org_id")}
        if problems:
            raise _Refusal(_json_reply(400, errors.api_error(400, "; ".join(problems), errors=problems)))
        deal = company.deals.get(ids["deal_id"]) if ids["deal_id"] is not None else None
        person = company.persons.get(ids["person_id"]) if ids["person_id"] is not None else None
        if ids["deal_id"] is not None and deal is None:
            raise _Refusal(_json_reply(400, errors.not_found("Deal")))
        if ids["person_id"] is not None and person is None:
            raise _Refusal(_json_reply(400, errors.not_found("Person")))
        user = self._user(grant.company_id, grant.user_id)
        stamp = datetime.fromtimestamp(self.now(), UTC)
        note_id = next(self._ids["note"])
        note = wire.note_v1(
            {
                "id": note_id,
                "content": content,
                "deal_id": ids["deal_id"],
                "person_id": ids["person_id"],
                "org_id": ids["org_id"],
                "lead_id": body.get("lead_id"),
                "user_id": user.id,
                "user_name": user.name,
                "user_email": user.email,
                "deal_title": deal["title"] if deal else None,
                "person_name": person["name"] if person else None,
                "add_time": stamp,
                "update_time": stamp,
            },
            viewer_id=user.id,
        )
        company.notes[note_id] = note
        return _json_reply(200, {"success": True, "data": note})

    def _notes_list(self, call: _Call) -> _Reply:
        company = self._company(_granted(call).company_id)
        filters = {name: call.int_query(name) for name in ("deal_id", "person_id", "org_id", "user_id")}
        with _invalid_query_is_400():
            start = validation.start_param(call.query)
            limit = validation.page_limit(call.query)
        matching = [
            company.notes[key]
            for key in sorted(company.notes)
            if all(value is None or company.notes[key].get(name) == value for name, value in filters.items())
        ]
        page = matching[start : start + limit]
        return _json_reply(200, wire.offset_page(page, start=start, limit=limit, more=start + limit < len(matching)))

    # --- REST API: activities (v2, cursor pagination) -------------------------------------------

    def _activities_create(self, call: _Call) -> _Reply:
        grant = _granted(call)
        company = self._company(grant.company_id)
        problems: dict[str, list[str]] = {}
        values = validation.activity_body(call.json_body(), problems)
        for name, records, kind in (
            ("deal_id", company.deals, "Deal"),
            ("person_id", company.persons, "Person"),
            ("org_id", company.organizations, "Organization"),
        ):
            if name not in problems and values.get(name) is not None and values[name] not in records:
                problems[name] = [f"{kind} {values[name]} not found"]
        if problems:
            raise _Refusal(_json_reply(400, errors.api_error(400, "; ".join(problems), errors=problems)))
        stamp = datetime.fromtimestamp(self.now(), UTC)
        activity_id = next(self._ids["activity"])
        activity = wire.activity_v2(
            {
                **values,
                "id": activity_id,
                "owner_id": values.get("owner_id") or grant.user_id,
                "creator_user_id": grant.user_id,
                "add_time": stamp,
                "update_time": stamp,
            }
        )
        company.activities[activity_id] = activity
        return _json_reply(200, {"success": True, "data": activity})

    def _activities_list(self, call: _Call) -> _Reply:
        filters = {name: call.int_query(name) for name in ("deal_id", "person_id", "org_id", "owner_id")}

        def wanted(activity: dict[str, Any]) -> bool:
            return all(value is None or activity.get(name) == value for name, value in filters.items())

        return self._v2_list(call, self._company(_granted(call).company_id).activities, wanted)

    # --- REST API: webhooks (v1, scope admin; docs/webhooks-for-apps) ---------------------------

    def _webhooks_list(self, call: _Call) -> _Reply:
        company = self._company(_granted(call).company_id)
        data = [wire.webhook_v1(company.webhooks[key]) for key in sorted(company.webhooks)]
        return _json_reply(200, {"success": True, "status": "ok", "data": data})

    def _webhooks_create(self, call: _Call) -> _Reply:
        grant = _granted(call)
        company = self._company(grant.company_id)
        body = call.json_body()
        problems: dict[str, list[str]] = {}
        version = validation.webhook_body(body, problems, unreachable=self.unreachable_subscription_urls)
        if problems:
            raise _Refusal(_json_reply(400, errors.invalid_fields(problems)))
        owned = sum(1 for w in company.webhooks.values() if w["owner_id"] == grant.user_id)
        if owned >= limits.WEBHOOKS_PER_USER:
            raise _api_error(422, limits.webhook_limit_message(), status="error")
        password = body.get("http_auth_password")
        _remember_secret(password if isinstance(password, str) else None)
        webhook_id = next(self._ids["webhook"])
        webhook = {
            "id": webhook_id,
            "company_id": company.id,
            "owner_id": grant.user_id,
            "user_id": validation.int_field(body, "user_id", problems) or grant.user_id,
            "event_action": body["event_action"],
            "event_object": body["event_object"],
            "subscription_url": body["subscription_url"],
            "version": version,
            "add_time": self._rfc3339(),
            "type": "application",  # created with an app's OAuth token
            "http_auth_user": body.get("http_auth_user"),
            "http_auth_password": password,  # kept for tests (company_webhooks); never echoed
            "name": body["name"],
        }
        company.webhooks[webhook_id] = webhook
        return _json_reply(201, {"success": True, "status": "ok", "data": wire.webhook_v1(webhook)})

    def _webhooks_delete(self, call: _Call) -> _Reply:
        company = self._company(_granted(call).company_id)
        webhook_id = _path_int(call, "id")
        if company.webhooks.pop(webhook_id, None) is None:
            raise _Refusal(_json_reply(404, errors.webhook_not_found()))
        return _json_reply(200, {"success": True, "status": "ok", "data": {"id": webhook_id}})

    # --- state lookups ----------------------------------------------------------------------------

    def _company(self, company_id: int) -> _Company:
        company = self._companies.get(company_id)
        if company is None:
            raise KeyError(f"unknown company {company_id}: call add_company() first")
        return company

    def _user(self, company_id: int, user_id: int) -> _User:
        user = self._users.get((company_id, user_id))
        if user is None:
            raise KeyError(f"unknown user {user_id} of company {company_id}: call add_user() first")
        return user

    def _default_owner(self, company_id: int) -> int:
        ids = sorted(user_id for (cid, user_id) in self._users if cid == company_id)
        return ids[0] if ids else 1

    def _rfc3339(self) -> str:
        return datetime.fromtimestamp(self.now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- endpoint helpers -------------------------------------------------------------------------------


def _granted(call: _Call) -> _AccessGrant:
    assert call.grant is not None, "route must authenticate"
    return call.grant


def _path_int(call: _Call, name: str) -> int:
    try:
        return int(call.path_args[name])
    except (KeyError, ValueError):
        raise _api_error(400, f"Path parameter '{name}' must be an integer") from None


@contextmanager
def _invalid_query_is_400() -> Iterator[None]:
    try:
        yield
    except validation.InvalidQuery as exc:
        raise _api_error(400, str(exc)) from None


# --- routes -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: str  # a loopback path with {name} placeholders
    spec_name: str  # "v1" or "v2": which file describes the operation (scopes are read from it)
    spec_template: str  # the path template inside that file
    handler: Callable[[PipedriveDouble, _Call], _Reply]
    authenticated: bool = True
    locked: bool = True  # run under the double's lock

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        expected, actual = self.pattern.strip("/").split("/"), path.strip("/").split("/")
        if len(expected) != len(actual):
            return None
        args: dict[str, str] = {}
        for want, got in zip(expected, actual, strict=True):
            if want.startswith("{") and want.endswith("}"):
                if not got:
                    return None
                args[want[1:-1]] = got
            elif want != got:
                return None
        return args

    def endpoint(self, double: PipedriveDouble, call: _Call) -> _Reply:
        if self.authenticated:
            call.grant = double._authenticate(call, self)
        return self.handler(double, call)


def _api(key: str, handler: Callable[[PipedriveDouble, _Call], _Reply]) -> _Route:
    """A REST route for operation ``key`` of ``facts.operations`` (its path, file and template)."""
    operation = OPERATIONS[key]
    return _Route(operation.method.upper(), operation.path, operation.spec, operation.template, handler)


_ROUTES: tuple[_Route, ...] = (
    _Route("GET", "/oauth/authorize", "v1", "/oauth/authorize", PipedriveDouble._oauth_authorize, False),
    _Route("POST", "/oauth/token", "v1", "/oauth/token", PipedriveDouble._oauth_token, False, locked=False),
    _Route("POST", "/oauth/revoke", "", "", PipedriveDouble._oauth_revoke, False),
    _api("users.me", PipedriveDouble._users_me),
    _api("users.list", PipedriveDouble._users_list),
    _api("users.get", PipedriveDouble._users_get),
    _api("pipelines.get", PipedriveDouble._pipelines_get),
    _api("stages.get", PipedriveDouble._stages_get),
    _api("organizations.get", PipedriveDouble._organizations_get),
    _api("deals.list", PipedriveDouble._deals_list),
    _api("deals.get", PipedriveDouble._deals_get),
    _api("persons.list", PipedriveDouble._persons_list),
    _api("persons.get", PipedriveDouble._persons_get),
    _api("dealFields.list", PipedriveDouble._fields_list),
    _api("personFields.list", PipedriveDouble._fields_list),
    _api("organizationFields.list", PipedriveDouble._fields_list),
    _api("notes.list", PipedriveDouble._notes_list),
    _api("notes.create", PipedriveDouble._notes_create),
    _api("activities.list", PipedriveDouble._activities_list),
    _api("activities.create", PipedriveDouble._activities_create),
    _api("webhooks.list", PipedriveDouble._webhooks_list),
    _api("webhooks.create", PipedriveDouble._webhooks_create),
    _api("webhooks.delete", PipedriveDouble._webhooks_delete),
)


def _find_route(method: str, path: str) -> tuple[_Route | None, dict[str, str]]:
    for route in _ROUTES:
        args = route.match(method, path)
        if args is not None:
            return route, args
    return None, {}


def implemented_operations() -> list[tuple[str, str]]:
    """(method, loopback path pattern) of every operation the double implements."""
    return [(route.method, route.pattern) for route in _ROUTES]


# --- HTTP plumbing ----------------------------------------------------------------------------------


class _DoubleServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for a handler sleeping through an injected delay
    double: PipedriveDouble


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid a 40 ms stall
    server: _DoubleServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            reply = self.server.double.handle(self.command, self.path, dict(self.headers.items()), body)
        except Exception as exc:  # a bug in the double: answer 500 rather than hang the client
            message = f"double crashed: {type(exc).__name__}: {exc}"
            reply = _json_reply(500, {"success": False, "error": message, "errorCode": 500})
        if reply is None:
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line may carry a code or token in its query."""
