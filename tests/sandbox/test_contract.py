"""Every response the sandbox gives for an operation it implements validates against Pipedrive's
official OpenAPI files (v1.yaml, v2.yaml), loaded once per session by tests/doubles/openapi_contract.

The files' servers are ``https://api.pipedrive.com/v1`` and ``.../api/v2`` (and
``https://oauth.pipedrive.com``); a sandbox path ``/sandbox/<domain>/api/v1/x`` is checked as
``/api/v1/x``, and ``/sandbox/oauth/token`` as ``/oauth/token``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from sandbox.models import Deal, Organization, Person, Pipeline, Stage
from tests.doubles import openapi_contract
from tests.doubles.openapi_contract import ExchangeRequest, ExchangeResponse

from .conftest import SANDBOX_DB, authorize_code, token_request

pytestmark = pytest.mark.django_db(databases=SANDBOX_DB)


@pytest.fixture(scope="session", autouse=True)
def _specs_loaded() -> None:
    openapi_contract.load_specs()


def _spec_path(path: str) -> str:
    parts = path.split("/")  # "", "sandbox", <domain or oauth>, ...
    if parts[2] == "oauth":
        return "/" + "/".join(parts[2:])
    return "/" + "/".join(parts[3:])


def assert_contract(
    method: str, path: str, response: Any, *, query: dict[str, Any] | None = None, body: Any = None
) -> None:
    raw = b"" if body is None else json.dumps(body).encode()
    request = ExchangeRequest(
        method=method,
        path=_spec_path(path),
        query={k: str(v) for k, v in (query or {}).items()},
        headers={"Authorization": "Bearer x", "Content-Type": "application/json"},
        body=raw,
        content_type="application/json" if body is not None else "",
    )
    exchange = ExchangeResponse(
        status=response.status_code,
        body=response.content,
        content_type=response["Content-Type"],
        headers={k: v for k, v in response.items()},
    )
    violations = openapi_contract.response_violations(request, exchange)
    assert violations == [], "\n".join(violations)


@pytest.fixture
def admin_token(grant, sandbox_world) -> str:
    return grant(sandbox_world.acme_admin)["access_token"]


def _call(api: Callable[..., Any], method: str, path: str, token: str, *, body: Any = None, query: Any = None) -> Any:
    response = api(method, "acme", path, token, body=body, query=query)
    assert 200 <= response.status_code < 300, response.content[:500]
    assert_contract(method, f"/sandbox/acme{path}", response, query=query, body=body)
    return response.json()


def test_token_and_authorize_responses(client: Client, sandbox_world) -> None:
    page = client.get(
        "/sandbox/oauth/authorize",
        {"client_id": "sandbox-test-client", "redirect_uri": "http://testserver/oauth/callback"},
    )
    assert_contract("GET", "/sandbox/oauth/authorize", page, query={"client_id": "x", "redirect_uri": "y"})
    code = authorize_code(client, sandbox_world.acme_admin)
    exchange = token_request(
        client, {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://testserver/oauth/callback"}
    )
    assert exchange.status_code == 200
    assert_contract("POST", "/sandbox/oauth/token", exchange)
    refreshed = token_request(
        client, {"grant_type": "refresh_token", "refresh_token": exchange.json()["refresh_token"]}
    )
    assert refreshed.status_code == 200
    assert_contract("POST", "/sandbox/oauth/token", refreshed)


def test_users_me(api, admin_token) -> None:
    data = _call(api, "GET", "/api/v1/users/me", admin_token)["data"]
    assert data["company_domain"] == "acme" and data["is_admin"] == 1


def test_deals_operations(api, admin_token, sandbox_world) -> None:
    person = Person.objects.filter(company=sandbox_world.acme).earliest("pk")
    _call(api, "GET", "/api/v2/deals", admin_token, query={"limit": 3})
    _call(api, "GET", "/api/v2/deals", admin_token, query={"person_id": person.pk})
    created = _call(
        api,
        "POST",
        "/api/v2/deals",
        admin_token,
        body={
            "title": "Contract deal",
            "value": 1200.5,
            "currency": "USD",
            "person_id": person.pk,
            "expected_close_date": "2026-12-01",
        },
    )["data"]
    _call(api, "GET", f"/api/v2/deals/{created['id']}", admin_token)
    _call(
        api,
        "PATCH",
        f"/api/v2/deals/{created['id']}",
        admin_token,
        body={"status": "won", "custom_fields": {"a" * 40: 5}},
    )
    won = Deal.objects.get(pk=created["id"])
    assert won.status == "won" and won.won_time is not None
    _call(api, "GET", f"/api/v2/deals/{created['id']}", admin_token)  # won/close times set
    _call(api, "DELETE", f"/api/v2/deals/{created['id']}", admin_token)


def test_persons_operations(api, admin_token) -> None:
    _call(api, "GET", "/api/v2/persons", admin_token, query={"limit": 2})
    created = _call(
        api,
        "POST",
        "/api/v2/persons",
        admin_token,
        body={"name": "Pat Contract", "emails": [{"value": "p@x.example", "primary": True, "label": "work"}]},
    )["data"]
    _call(api, "GET", f"/api/v2/persons/{created['id']}", admin_token)
    _call(api, "PATCH", f"/api/v2/persons/{created['id']}", admin_token, body={"name": "Pat Renamed"})
    _call(api, "DELETE", f"/api/v2/persons/{created['id']}", admin_token)


def test_users_list(api, admin_token, sandbox_world) -> None:
    listed = _call(api, "GET", "/api/v1/users", admin_token)["data"]
    assert {u["id"] for u in listed} == set(sandbox_world.acme.users.values_list("pk", flat=True))


def test_deal_with_only_a_title(api, admin_token) -> None:
    _call(api, "POST", "/api/v2/deals", admin_token, body={"title": "Only a title"})


def test_users_get(api, admin_token, sandbox_world) -> None:
    other = _call(api, "GET", f"/api/v1/users/{sandbox_world.acme_regular.pk}", admin_token)["data"]
    assert other["name"] == "Rob Regular" and other["is_you"] is False
    me = _call(api, "GET", f"/api/v1/users/{sandbox_world.acme_admin.pk}", admin_token)["data"]
    assert me["is_you"] is True
    missing = api("GET", "acme", f"/api/v1/users/{sandbox_world.globex_admin.pk}", admin_token)
    assert missing.status_code == 404  # another company's user
    assert_contract("GET", f"/sandbox/acme/api/v1/users/{sandbox_world.globex_admin.pk}", missing)


def test_organizations_get(api, admin_token, sandbox_world) -> None:
    org = Organization.objects.filter(company=sandbox_world.acme).earliest("pk")
    data = _call(api, "GET", f"/api/v2/organizations/{org.pk}", admin_token)["data"]
    assert data["name"] == org.name and data["address"] == {"value": org.address}


def test_pipelines_and_stages_operations(api, admin_token, sandbox_world) -> None:
    pipeline = Pipeline.objects.get(company=sandbox_world.acme)
    stage = Stage.objects.filter(pipeline=pipeline).latest("order_nr")
    listed = _call(api, "GET", "/api/v2/pipelines", admin_token)["data"]
    assert [p["name"] for p in listed] == ["Sales pipeline"]
    _call(api, "GET", "/api/v2/pipelines", admin_token, query={"sort_by": "add_time", "sort_direction": "desc"})
    assert _call(api, "GET", f"/api/v2/pipelines/{pipeline.pk}", admin_token)["data"]["name"] == "Sales pipeline"
    stages = _call(api, "GET", "/api/v2/stages", admin_token, query={"pipeline_id": pipeline.pk, "limit": 2})
    assert len(stages["data"]) == 2 and stages["additional_data"]["next_cursor"]
    _call(api, "GET", "/api/v2/stages", admin_token, query={"sort_by": "order_nr", "sort_direction": "desc"})
    got = _call(api, "GET", f"/api/v2/stages/{stage.pk}", admin_token)["data"]
    assert got["name"] == stage.name and got["pipeline_id"] == pipeline.pk and got["days_to_rotten"] is None


def test_fields_operations(api, admin_token) -> None:
    deal_fields = _call(api, "GET", "/api/v2/dealFields", admin_token)["data"]
    assert any(f["is_custom_field"] and len(f["field_code"]) == 40 for f in deal_fields)
    _call(api, "GET", "/api/v2/personFields", admin_token)


def test_notes_operations(api, admin_token, sandbox_world) -> None:
    deal = Deal.objects.filter(company=sandbox_world.acme).earliest("pk")
    _call(api, "POST", "/api/v1/notes", admin_token, body={"content": "<p>Hello</p>", "deal_id": deal.pk})
    _call(api, "POST", "/api/v1/notes", admin_token, body={"content": "Second", "person_id": deal.person_id})
    _call(api, "GET", "/api/v1/notes", admin_token, query={"deal_id": deal.pk, "start": 0, "limit": 1})
    _call(api, "GET", "/api/v1/notes", admin_token)


def test_webhooks_operations(api, admin_token) -> None:
    body = {
        "subscription_url": "https://app.example/webhooks/pipedrive/k/",
        "event_action": "*",
        "event_object": "deal",
        "name": "Deals",
        "http_auth_user": "u",
        "http_auth_password": "p",
        "version": "2.0",
    }
    created = _call(api, "POST", "/api/v1/webhooks", admin_token, body=body)["data"]
    assert created["type"] == "application" and created["http_auth_password"] is None
    _call(api, "GET", "/api/v1/webhooks", admin_token)
    _call(api, "DELETE", f"/api/v1/webhooks/{created['id']}", admin_token)
    bad = api("POST", "acme", "/api/v1/webhooks", admin_token, body={**body, "event_action": "explode"})
    assert bad.status_code == 400
    assert_contract("POST", "/sandbox/acme/api/v1/webhooks", bad, body=body)


def test_unauthorized_answer_matches_the_documented_401(api, sandbox_world) -> None:
    response = api("GET", "acme", "/api/v1/users/me", "v1u:wrong")
    assert response.status_code == 401
    assert_contract("GET", "/sandbox/acme/api/v1/users/me", response)


def test_activities_operations(api, admin_token, sandbox_world) -> None:
    deal = Deal.objects.filter(company=sandbox_world.acme, person__isnull=False).earliest("pk")
    body = {
        "subject": "Call back",
        "type": "call",
        "deal_id": deal.pk,
        "due_date": "2026-12-03",
        "due_time": "09:30",
        "note": "Ask about the budget",
    }
    created = _call(api, "POST", "/api/v2/activities", admin_token, body=body)["data"]
    assert created["deal_id"] == deal.pk and created["person_id"] == deal.person_id  # the deal's person joins
    assert created["due_date"] == "2026-12-03" and created["due_time"] == "09:30" and created["done"] is False
    minimal = _call(api, "POST", "/api/v2/activities", admin_token, body={"person_id": deal.person_id})["data"]
    assert minimal["type"] == "task" and minimal["subject"] == "Task"  # defaults named in facts/validation.py
    listed = _call(api, "GET", "/api/v2/activities", admin_token, query={"deal_id": deal.pk})["data"]
    assert [a["id"] for a in listed] == [created["id"]]
    _call(api, "GET", "/api/v2/activities", admin_token, query={"person_id": deal.person_id, "limit": 1})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "party"}, "type"),
        ({"due_date": "2026-02-30"}, "due_date"),
        ({"due_date": "tomorrow"}, "due_date"),
        ({"due_time": "25:00"}, "due_time"),
        ({"subject": 5}, "subject"),
        ({"subject": "x" * 256}, "subject"),
        ({"deal_id": "1"}, "deal_id"),
        ({"deal_id": 999_999}, "deal_id"),
        ({"done": "yes"}, "done"),
    ],
)
def test_activity_refusals_name_the_field_and_store_nothing(api, admin_token, sandbox_world, body, field) -> None:
    from sandbox.models import Activity

    person = Person.objects.filter(company=sandbox_world.acme).earliest("pk")
    response = api("POST", "acme", "/api/v2/activities", admin_token, body={"person_id": person.pk, **body})
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Activity.objects.exists()
