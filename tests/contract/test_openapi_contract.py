"""The client and the double are held to Pipedrive's own OpenAPI files, and the check has teeth.

- every request the client sends validates against its operation in v1.yaml/v2.yaml;
- a request that breaks the files is flagged;
- every response the double produces for an operation it implements validates, and the same
  validator flags a deliberately broken copy of it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from pipedrive_app.pipedrive.client import PipedriveClient
from tests.doubles import openapi_contract
from tests.doubles.fixtures import pipedrive_double  # noqa: F401  (the fixture, for this module)
from tests.doubles.openapi_contract import (
    ExchangeRequest,
    ExchangeResponse,
    locate,
    request_violations,
    response_violations,
)
from tests.doubles.pipedrive_double import PipedriveDouble, implemented_operations
from tests.doubles.token_source import TEST_REDIRECT_URI, DoubleTokenSource, obtain_tokens

COMPANY = 7001
USER = 71


@dataclass
class Seeded:
    double: PipedriveDouble
    token: str
    refresh_token: str
    person_id: int
    deal_id: int
    webhook_id: int


@pytest.fixture
def double(pipedrive_double: PipedriveDouble) -> PipedriveDouble:  # noqa: F811
    pipedrive_double.add_company(COMPANY, name="Contract Co", domain="contract")
    pipedrive_double.add_user(COMPANY, USER)
    return pipedrive_double


@pytest.fixture
def seeded(double: PipedriveDouble) -> Seeded:
    grant = obtain_tokens(double, COMPANY, USER)
    person = double.add_person(COMPANY, name="Ann Lee", emails=["ann@example.com"], phones=["+372 555"])
    deal = double.add_deal(COMPANY, title="Deal", person_id=person["id"], value=10, expected_close_date="2026-01-31")
    double.add_deal(COMPANY, title="Second", person_id=person["id"])
    webhook = requests.post(
        f"{double.base_url}/api/v1/webhooks",
        json={"subscription_url": "https://app.example/h", "event_action": "*", "event_object": "*", "name": "all"},
        headers={"Authorization": f"Bearer {grant['access_token']}"},
        timeout=5,
    ).json()["data"]
    return Seeded(double, grant["access_token"], grant["refresh_token"], person["id"], deal["id"], webhook["id"])


# --- the client's requests ------------------------------------------------------------------------


def test_every_client_request_validates(double: PipedriveDouble) -> None:
    tokens = DoubleTokenSource(double, COMPANY, USER)
    client = PipedriveClient(api_domain=tokens.api_domain, token_source=tokens)
    person = double.add_person(COMPANY, name="Ann Lee")
    deal = double.add_deal(COMPANY, person_id=person["id"])
    double.add_deal(COMPANY, person_id=person["id"], status="lost")

    client.get_current_user()
    client.get_deal(deal["id"])
    list(client.iter_deals(person_id=person["id"], status="lost", limit=1))
    list(client.iter_deals(limit=1))
    client.get_person(person["id"])
    list(client.iter_persons(limit=1))
    client.create_note(content="<p>hi</p>", deal_id=deal["id"], person_id=person["id"], org_id=5)
    client.create_note(content="second", person_id=person["id"])
    list(client.iter_notes(person_id=person["id"], limit=1))
    list(client.iter_notes(deal_id=deal["id"]))
    client.create_activity(subject="Call", type="call", deal_id=deal["id"], due_date="2026-12-03", due_time="09:00")
    client.list_activities(deal_id=deal["id"])
    webhook = client.create_webhook(
        subscription_url="https://app.example/webhooks/pipedrive/abc/",
        event_action="change",
        event_object="person",
        name="person changes",
        http_auth_user="user",
        http_auth_password="password-for-contract",
        user_id=USER,
    )
    client.create_webhook(
        subscription_url="https://app.example/v1", event_action="*", event_object="stage", name="v1", version="1.0"
    )
    client.list_webhooks()
    client.delete_webhook(webhook.id)
    double.expire_access_token(tokens.token)
    client.get_current_user()  # 401, refresh at /oauth/token, retry

    assert double.contract_violations == []
    # Re-check every recorded request here too, independently of the double's own bookkeeping.
    for recorded in double.requests:
        exchange = ExchangeRequest(
            recorded.method,
            recorded.path,
            recorded.query,
            dict(recorded.headers),
            recorded.body,
            recorded.headers.get("Content-Type", ""),
        )
        assert request_violations(exchange) == [], recorded
    seen = {(r.method, r.path.rsplit("/", 1)[0] if r.path[-1].isdigit() else r.path) for r in double.requests}
    assert seen >= {
        ("GET", "/api/v1/users/me"),
        ("GET", "/api/v2/deals"),
        ("GET", "/api/v2/persons"),
        ("POST", "/api/v1/notes"),
        ("GET", "/api/v1/notes"),
        ("POST", "/api/v2/activities"),
        ("GET", "/api/v2/activities"),
        ("GET", "/api/v1/webhooks"),
        ("POST", "/api/v1/webhooks"),
        ("DELETE", "/api/v1/webhooks"),
        ("POST", "/oauth/token"),
    }


# --- wrong requests are flagged ---------------------------------------------------------------------


def test_a_bogus_webhook_request_is_flagged(seeded: Seeded) -> None:
    double = seeded.double
    response = requests.post(
        f"{double.base_url}/api/v1/webhooks",
        json={
            "subscription_url": "https://app.example/h",
            "event_action": "bogus",
            "event_object": "deal",
            "name": "x",
        },
        headers={"Authorization": f"Bearer {seeded.token}"},
        timeout=5,
    )

    assert response.status_code == 400  # the double refuses it too
    [violation] = double.take_contract_violations()
    assert "POST /api/v1/webhooks" in violation
    assert "event_action" in violation and "bogus" in violation


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "expected"),
    [
        ("GET", "/api/v2/deals", {"params": {"person_id": "abc"}}, "person_id"),
        ("GET", "/api/v2/deals", {"params": {"status": "maybe"}}, "status"),
        ("GET", "/api/v1/notes", {"params": {"start": "first"}}, "start"),
        ("POST", "/api/v1/notes", {"json": {"deal_id": 1}}, "content"),
        ("POST", "/api/v1/webhooks", {"json": {"subscription_url": "https://a.example/h"}}, "required"),
        ("GET", "/api/v1/dealz", {}, "Path not found"),
        ("PATCH", "/api/v1/users/me", {}, "users/me"),
    ],
)
def test_malformed_requests_are_flagged(
    seeded: Seeded, method: str, path: str, kwargs: dict[str, Any], expected: str
) -> None:
    headers = {"Authorization": f"Bearer {seeded.token}"}
    requests.request(method, f"{seeded.double.base_url}{path}", headers=headers, timeout=5, **kwargs)

    violations = seeded.double.take_contract_violations()

    assert violations, f"{method} {path} was not flagged"
    assert any(expected in v for v in violations), violations


def test_a_request_without_bearer_token_is_flagged(seeded: Seeded) -> None:
    response = requests.get(f"{seeded.double.base_url}/api/v1/users/me", timeout=5)

    assert response.status_code == 401
    [violation] = seeded.double.take_contract_violations()
    assert "SecurityValidationError" in violation


def test_token_endpoint_requests_are_checked(double: PipedriveDouble) -> None:
    response = requests.post(
        f"{double.base_url}/oauth/token",
        data={"grant_type": "password", "username": "u"},
        auth=(double.client_id, double.client_secret),
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    [violation] = double.take_contract_violations()
    assert "grant_type" in violation

    requests.post(f"{double.base_url}/oauth/token", data={"grant_type": "refresh_token"}, timeout=5)
    [violation] = double.take_contract_violations()
    assert "basic_authentication" in violation


def test_revoke_is_not_in_the_files_and_is_not_judged(seeded: Seeded) -> None:
    double = seeded.double
    response = requests.post(
        f"{double.base_url}/oauth/revoke",
        data={"token": seeded.refresh_token, "token_type_hint": "refresh_token"},
        auth=(double.client_id, double.client_secret),
        timeout=5,
    )

    assert response.status_code == 200
    assert double.contract_violations == []
    assert double.revoked == [("refresh_token", f"{COMPANY}:{USER}")]


def test_violation_messages_never_carry_a_token(seeded: Seeded) -> None:
    requests.post(
        f"{seeded.double.base_url}/api/v1/notes",
        data=json.dumps(seeded.token),
        headers={"Authorization": f"Bearer {seeded.token}", "Content-Type": "application/json"},
        timeout=5,
    )

    violations = seeded.double.take_contract_violations()

    assert violations
    assert all(seeded.token not in v and seeded.token[4:40] not in v for v in violations)
    assert any("[redacted]" in v for v in violations)


# --- the double's responses -------------------------------------------------------------------------

Exchange = tuple[ExchangeRequest, ExchangeResponse]


def _exchange(double: PipedriveDouble, method: str, path: str, **kwargs: Any) -> Exchange:
    response = requests.request(method, f"{double.base_url}{path}", timeout=5, allow_redirects=False, **kwargs)
    sent = response.request
    url = urlsplit(sent.url or "")
    body = sent.body if isinstance(sent.body, bytes) else (sent.body or "").encode()
    request = ExchangeRequest(
        method, url.path, parse_qsl(url.query), dict(sent.headers), body, sent.headers.get("Content-Type", "")
    )
    answer = ExchangeResponse(
        response.status_code, response.content, response.headers.get("Content-Type", ""), dict(response.headers)
    )
    return request, answer


def _bearer(seeded: Seeded) -> dict[str, Any]:
    return {"headers": {"Authorization": f"Bearer {seeded.token}"}}


def _basic(seeded: Seeded) -> dict[str, Any]:
    return {"auth": (seeded.double.client_id, seeded.double.client_secret)}


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[Any], Any]:
    def breaker(payload: Any) -> Any:
        target = payload
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return payload

    return breaker


def _fields_listed(entity: str) -> Callable[[Seeded], Exchange]:
    """GET /api/v2/{entity}Fields with two fields at the double, one of them with options."""

    def call(s: Seeded) -> Exchange:
        s.double.add_field(COMPANY, entity, field_name="Size", field_type="enum", options=[{"id": 1, "label": "Big"}])
        s.double.add_field(COMPANY, entity, field_name="Notes")
        return _exchange(s.double, "GET", f"/api/v2/{entity}Fields", params={"limit": 1}, **_bearer(s))

    return call


@dataclass(frozen=True)
class Operation:
    method: str
    pattern: str
    call: Callable[[Seeded], Exchange]
    expected_status: int
    breaker: Callable[[Any], Any]


OPERATIONS = [
    Operation(
        "GET",
        "/oauth/authorize",
        lambda s: _exchange(
            s.double,
            "GET",
            "/oauth/authorize",
            params={"client_id": s.double.client_id, "redirect_uri": "https://a/cb"},
        ),
        200,
        lambda payload: payload,  # text/html: broken below by status instead
    ),
    Operation(
        "POST",
        "/oauth/token",
        lambda s: _exchange(
            s.double,
            "POST",
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": s.double.issue_code(COMPANY, USER, redirect_uri=TEST_REDIRECT_URI),
                "redirect_uri": TEST_REDIRECT_URI,
            },
            **_basic(s),
        ),
        200,
        _set(("expires_in",), "soon"),
    ),
    Operation(
        "GET",
        "/api/v1/users/me",
        lambda s: _exchange(s.double, "GET", "/api/v1/users/me", **_bearer(s)),
        200,
        _set(("data", "company_id"), "seven thousand"),
    ),
    Operation(
        "GET",
        "/api/v2/deals",
        lambda s: _exchange(
            s.double, "GET", "/api/v2/deals", params={"person_id": s.person_id, "limit": 1}, **_bearer(s)
        ),
        200,
        _set(("data", 0, "value"), "ten"),
    ),
    Operation(
        "GET",
        "/api/v2/deals/{id}",
        lambda s: _exchange(s.double, "GET", f"/api/v2/deals/{s.deal_id}", **_bearer(s)),
        200,
        _set(("data", "id"), "1"),
    ),
    Operation(
        "GET",
        "/api/v2/persons",
        lambda s: _exchange(s.double, "GET", "/api/v2/persons", params={"limit": 10}, **_bearer(s)),
        200,
        _set(("data", 0, "emails", 0, "primary"), "yes"),
    ),
    Operation(
        "GET",
        "/api/v2/persons/{id}",
        lambda s: _exchange(s.double, "GET", f"/api/v2/persons/{s.person_id}", **_bearer(s)),
        200,
        _set(("data", "phones"), "+372 555"),
    ),
    Operation(
        "POST",
        "/api/v1/notes",
        lambda s: _exchange(
            s.double, "POST", "/api/v1/notes", json={"content": "hi", "deal_id": s.deal_id}, **_bearer(s)
        ),
        200,
        _set(("data", "deal_id"), "one"),
    ),
    Operation(
        "GET",
        "/api/v1/notes",
        lambda s: _exchange(s.double, "GET", "/api/v1/notes", params={"start": 0, "limit": 1}, **_bearer(s)),
        200,
        _set(("additional_data", "pagination", "more_items_in_collection"), "no"),
    ),
    Operation(
        "POST",
        "/api/v2/activities",
        lambda s: _exchange(
            s.double,
            "POST",
            "/api/v2/activities",
            json={"subject": "Call", "type": "call", "deal_id": s.deal_id, "due_date": "2026-12-03"},
            **_bearer(s),
        ),
        200,
        _set(("data", "done"), "no"),
    ),
    Operation(
        "GET",
        "/api/v2/activities",
        lambda s: (
            _exchange(
                s.double,
                "POST",
                "/api/v2/activities",
                json={"subject": "Call", "type": "call", "deal_id": s.deal_id},
                **_bearer(s),
            )
            and _exchange(s.double, "GET", "/api/v2/activities", params={"deal_id": s.deal_id}, **_bearer(s))
        ),
        200,
        _set(("data", 0, "deal_id"), "one"),
    ),
    Operation(
        "GET",
        "/api/v1/webhooks",
        lambda s: _exchange(s.double, "GET", "/api/v1/webhooks", **_bearer(s)),
        200,
        _set(("data", 0, "type"), "personal"),
    ),
    Operation(
        "POST",
        "/api/v1/webhooks",
        lambda s: _exchange(
            s.double,
            "POST",
            "/api/v1/webhooks",
            json={"subscription_url": "https://a.example/h", "event_action": "*", "event_object": "deal", "name": "n"},
            **_bearer(s),
        ),
        201,
        _set(("data", "is_active"), True),
    ),
    Operation(
        "DELETE",
        "/api/v1/webhooks/{id}",
        lambda s: _exchange(s.double, "DELETE", f"/api/v1/webhooks/{s.webhook_id}", **_bearer(s)),
        200,
        _set(("success",), "true"),
    ),
    # Read by the extensions' panels.
    Operation(
        "GET",
        "/api/v1/users",
        lambda s: _exchange(s.double, "GET", "/api/v1/users", **_bearer(s)),
        200,
        _set(("data", 0, "id"), "one"),
    ),
    Operation(
        "GET",
        "/api/v1/users/{id}",
        lambda s: _users_get_with_users_read_scope(s),
        200,
        _set(("data", "activated"), "yes"),
    ),
    Operation(
        "GET",
        "/api/v2/pipelines/{id}",
        lambda s: _exchange(s.double, "GET", f"/api/v2/pipelines/{s.double.add_pipeline(COMPANY)['id']}", **_bearer(s)),
        200,
        _set(("data", "name"), 5),
    ),
    Operation(
        "GET",
        "/api/v2/stages/{id}",
        lambda s: _exchange(s.double, "GET", f"/api/v2/stages/{s.double.add_stage(COMPANY)['id']}", **_bearer(s)),
        200,
        _set(("data", "order_nr"), "first"),
    ),
    Operation(
        "GET",
        "/api/v2/organizations/{id}",
        lambda s: _exchange(
            s.double,
            "GET",
            f"/api/v2/organizations/{s.double.add_organization(COMPANY, address='Tallinn')['id']}",
            **_bearer(s),
        ),
        200,
        _set(("data", "address", "value"), 7),
    ),
    *(
        Operation(
            "GET",
            f"/api/v2/{entity}Fields",
            _fields_listed(entity),
            200,
            _set(("data", 0, "field_type"), 12),
        )
        for entity in ("deal", "person", "organization")
    ),
]


def _users_get_with_users_read_scope(seeded: Seeded) -> Exchange:
    seeded.double.add_user(COMPANY, USER + 1, scopes="base,users:read")
    token = obtain_tokens(seeded.double, COMPANY, USER + 1)["access_token"]
    return _exchange(seeded.double, "GET", f"/api/v1/users/{USER}", headers={"Authorization": f"Bearer {token}"})


def test_the_operations_below_cover_everything_the_double_implements() -> None:
    covered = {(op.method, op.pattern) for op in OPERATIONS}
    described = {(m, p) for m, p in implemented_operations() if locate(p.replace("{id}", "1")) is not None}
    assert covered == described


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method} {op.pattern}")
def test_double_responses_validate_and_broken_copies_do_not(seeded: Seeded, operation: Operation) -> None:
    request, response = operation.call(seeded)

    assert response.status == operation.expected_status, response.body[:300]
    assert request_violations(request) == []
    assert response_violations(request, response) == []
    assert seeded.double.contract_violations == []

    # An undocumented success status is a violation...
    wrong_status = ExchangeResponse(299 if response.status != 299 else 200, response.body, response.content_type)
    assert response_violations(request, wrong_status)
    # ...and so is a body that breaks the schema.
    if response.content_type.startswith("application/json"):
        broken_body = operation.breaker(copy.deepcopy(json.loads(response.body)))
        broken = ExchangeResponse(response.status, json.dumps(broken_body).encode(), response.content_type)
        violations = response_violations(request, broken)
        assert violations, f"{operation.method} {operation.pattern}: the broken body was not flagged"
        assert all(seeded.token not in v for v in violations)


def test_documented_error_responses_are_judged_too(seeded: Seeded) -> None:
    request, response = _exchange(seeded.double, "GET", "/api/v1/users/me", headers={"Authorization": "Bearer nope"})

    assert response.status == 401
    assert response_violations(request, response) == []
    seeded.double.take_contract_violations()
    broken = ExchangeResponse(401, json.dumps({"success": "no", "error": 401}).encode(), "application/json")
    assert len(response_violations(request, broken)) == 1


def test_undocumented_error_statuses_are_not_judged(seeded: Seeded) -> None:
    request, _ = _exchange(seeded.double, "GET", "/api/v2/deals/999999", **_bearer(seeded))
    anything = ExchangeResponse(404, b'{"whatever": 1}', "application/json")

    assert response_violations(request, anything) == []


# --- plumbing ---------------------------------------------------------------------------------------


def test_paths_map_onto_the_files_servers() -> None:
    v1 = locate("/api/v1/users/me")
    v2 = locate("/api/v2/deals/5")
    oauth = locate("/oauth/token")
    assert v1 is not None and (v1.spec_name, v1.host_url, v1.path) == (
        "v1",
        "https://api.pipedrive.com",
        "/v1/users/me",
    )
    assert v2 is not None and (v2.spec_name, v2.path) == ("v2", "/api/v2/deals/5")
    assert oauth is not None and (oauth.host_url, oauth.path) == ("https://oauth.pipedrive.com", "/oauth/token")
    assert locate("/oauth/revoke") is None
    assert locate("/elsewhere") is None


def test_specs_load_once_per_process() -> None:
    assert openapi_contract.spec("v1") is openapi_contract.spec("v1")
    assert openapi_contract.spec("v2") is openapi_contract.spec("v2")


def test_scopes_come_from_the_files() -> None:
    assert openapi_contract.operation_scopes("v1", "POST", "/webhooks") == {"admin"}
    assert openapi_contract.operation_scopes("v2", "GET", "/deals") == {"deals:read", "deals:full"}
    assert "contacts:read" in openapi_contract.operation_scopes("v1", "GET", "/notes")
