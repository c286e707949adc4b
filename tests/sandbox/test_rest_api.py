"""The REST subset: authentication, scopes, pagination, the webhook limit, company isolation, limits."""

from __future__ import annotations

import time

import pytest
import requests

from pipedrive_app.pipedrive.client import PipedriveClient
from sandbox import api_limits
from sandbox.models import Deal, Organization, Person, Pipeline, SandboxCompany, SandboxUser, Stage

from .conftest import SANDBOX_DB

pytestmark = pytest.mark.django_db(databases=SANDBOX_DB)

WEBHOOK = {"subscription_url": "https://app.example/hook", "event_action": "*", "event_object": "deal", "name": "x"}


@pytest.fixture
def admin_token(grant, sandbox_world) -> str:
    return grant(sandbox_world.acme_admin)["access_token"]


@pytest.fixture
def regular_token(grant, sandbox_world) -> str:
    return grant(sandbox_world.acme_regular)["access_token"]


def test_requests_without_a_valid_bearer_token_are_401(api, sandbox_world, admin_token) -> None:
    assert api("GET", "acme", "/api/v1/users/me", None).status_code == 401
    wrong = api("GET", "acme", "/api/v1/users/me", "v1u:" + "x" * 100)
    assert wrong.status_code == 401
    assert wrong.json() == {"success": False, "error": "unauthorized access", "errorCode": 401}


def test_users_me_identifies_the_installing_user(api, sandbox_world, regular_token) -> None:
    me = api("GET", "acme", "/api/v1/users/me", regular_token).json()["data"]
    assert me["id"] == sandbox_world.acme_regular.pk and me["company_id"] == sandbox_world.acme.pk
    assert me["is_admin"] == 0 and me["company_name"] == "Acme Sales" and me["company_domain"] == "acme"


def test_a_token_is_401_at_another_companys_api_domain(api, sandbox_world, admin_token) -> None:
    assert api("GET", "acme", "/api/v2/deals", admin_token).status_code == 200
    assert api("GET", "globex", "/api/v2/deals", admin_token).status_code == 401
    assert api("GET", "nowhere", "/api/v2/deals", admin_token).status_code == 404


def test_records_of_another_company_are_not_found(api, sandbox_world, admin_token) -> None:
    foreign_deal = Deal.objects.filter(company=sandbox_world.globex).earliest("pk")
    foreign_person = Person.objects.filter(company=sandbox_world.globex).earliest("pk")
    assert api("GET", "acme", f"/api/v2/deals/{foreign_deal.pk}", admin_token).status_code == 404
    assert api("GET", "acme", f"/api/v2/persons/{foreign_person.pk}", admin_token).status_code == 404
    patch = api("PATCH", "acme", f"/api/v2/deals/{foreign_deal.pk}", admin_token, body={"title": "mine"})
    assert patch.status_code == 404
    note = api("POST", "acme", "/api/v1/notes", admin_token, body={"content": "x", "deal_id": foreign_deal.pk})
    assert note.status_code == 400
    listed = api("GET", "acme", "/api/v2/deals", admin_token, query={"limit": 500}).json()["data"]
    assert {d["id"] for d in listed} == set(
        Deal.objects.filter(company=sandbox_world.acme, is_deleted=False).values_list("pk", flat=True)
    )


def test_webhooks_need_the_admin_scope(api, sandbox_world, regular_token) -> None:
    response = api("POST", "acme", "/api/v1/webhooks", regular_token, body=WEBHOOK)
    assert response.status_code == 403
    assert api("GET", "acme", "/api/v1/webhooks", regular_token).status_code == 403
    # Deals and contacts are still fine for a regular user.
    assert api("GET", "acme", "/api/v2/deals", regular_token).status_code == 200


def test_users_get_needs_the_users_read_scope(api, grant, sandbox_world, settings) -> None:
    path = f"/api/v1/users/{sandbox_world.acme_regular.pk}"
    token = grant(sandbox_world.acme_admin)["access_token"]
    assert api("GET", "acme", path, token).json()["data"]["email"] == "rob@acme.example"
    settings.SANDBOX_APP_SCOPES = "base,deals:full,contacts:full,admin"  # an app registered without users:read
    narrow = grant(sandbox_world.acme_admin)["access_token"]
    refused = api("GET", "acme", path, narrow)
    assert refused.status_code == 403 and "users:read" in refused.json()["error"]
    assert api("GET", "acme", "/api/v1/users/me", narrow).status_code == 200  # base still suffices


def test_pipelines_stages_and_organizations_of_another_company_are_not_found(api, sandbox_world, admin_token) -> None:
    foreign_pipeline = Pipeline.objects.get(company=sandbox_world.globex)
    foreign_stage = Stage.objects.filter(pipeline=foreign_pipeline).earliest("pk")
    foreign_org = Organization.objects.filter(company=sandbox_world.globex).earliest("pk")
    assert api("GET", "acme", f"/api/v2/pipelines/{foreign_pipeline.pk}", admin_token).status_code == 404
    assert api("GET", "acme", f"/api/v2/stages/{foreign_stage.pk}", admin_token).status_code == 404
    assert api("GET", "acme", f"/api/v2/organizations/{foreign_org.pk}", admin_token).status_code == 404
    own = {p["id"] for p in api("GET", "acme", "/api/v2/pipelines", admin_token).json()["data"]}
    assert own == {Pipeline.objects.get(company=sandbox_world.acme).pk}
    stages = api("GET", "acme", "/api/v2/stages", admin_token, query={"pipeline_id": foreign_pipeline.pk})
    assert stages.json()["data"] == []


def test_stages_list_filters_sorts_and_pages(api, sandbox_world, admin_token) -> None:
    pipeline = Pipeline.objects.get(company=sandbox_world.acme)
    expected = list(Stage.objects.filter(pipeline=pipeline).order_by("-order_nr").values_list("name", flat=True))
    seen: list[str] = []
    cursor = None
    while True:
        query = {"pipeline_id": pipeline.pk, "sort_by": "order_nr", "sort_direction": "desc", "limit": 3}
        payload = api(
            "GET", "acme", "/api/v2/stages", admin_token, query={**query, **({"cursor": cursor} if cursor else {})}
        )
        assert payload.status_code == 200
        seen.extend(stage["name"] for stage in payload.json()["data"])
        cursor = payload.json()["additional_data"].get("next_cursor")
        if not cursor:
            break
    assert seen == expected
    assert api("GET", "acme", "/api/v2/stages", admin_token, query={"sort_by": "name"}).status_code == 400
    assert api("GET", "acme", "/api/v2/pipelines", admin_token, query={"sort_direction": "up"}).status_code == 400
    assert api("GET", "acme", "/api/v2/stages", admin_token, query={"cursor": "%%%"}).status_code == 400


def test_a_regular_user_reads_pipelines_stages_organizations_and_users(api, sandbox_world, regular_token) -> None:
    """deals:full / contacts:full / users:read cover what the panels look up; admin is not needed."""
    deal = Deal.objects.filter(company=sandbox_world.acme, org__isnull=False).earliest("pk")
    for path in (
        f"/api/v2/pipelines/{deal.pipeline_id}",
        f"/api/v2/stages/{deal.stage_id}",
        f"/api/v2/organizations/{deal.org_id}",
        f"/api/v1/users/{sandbox_world.acme_admin.pk}",
    ):
        assert api("GET", "acme", path, regular_token).status_code == 200, path


def test_lookups_are_charged_their_openapi_token_cost(api, sandbox_world, admin_token) -> None:
    costs = {key: api_limits.operation_cost(key) for key in ("pipelines.get", "stages.get", "organizations.get")}
    assert costs == {"pipelines.get": 1, "stages.get": 1, "organizations.get": 1}
    assert api_limits.operation_cost("users.get") == 2 and api_limits.operation_cost("stages.list") == 5
    assert api_limits.operation_scopes("users.get") == ("users:read",)
    SandboxCompany.objects.filter(pk=sandbox_world.acme.pk).update(budget_used=0, budget_day=None)
    deal = Deal.objects.filter(company=sandbox_world.acme).earliest("pk")
    api("GET", "acme", f"/api/v2/stages/{deal.stage_id}", admin_token)
    api("GET", "acme", f"/api/v1/users/{deal.owner_id}", admin_token)
    assert SandboxCompany.objects.get(pk=sandbox_world.acme.pk).budget_used == 3


def test_v2_cursor_pagination_walks_every_deal_once(api, sandbox_world, admin_token) -> None:
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        payload = api("GET", "acme", "/api/v2/deals", admin_token, query=query).json()
        seen.extend(d["id"] for d in payload["data"])
        pages += 1
        cursor = payload["additional_data"].get("next_cursor")
        if not cursor:
            break
    expected = list(Deal.objects.filter(company=sandbox_world.acme).order_by("pk").values_list("pk", flat=True))
    assert seen == expected and pages == 3


def test_v2_limit_bounds_and_bad_cursor(api, sandbox_world, admin_token) -> None:
    assert api("GET", "acme", "/api/v2/deals", admin_token, query={"limit": 501}).status_code == 400
    assert api("GET", "acme", "/api/v2/deals", admin_token, query={"limit": 500}).status_code == 200
    assert api("GET", "acme", "/api/v2/deals", admin_token, query={"cursor": "%%%"}).status_code == 400


def test_deals_filter_by_person(api, sandbox_world, admin_token) -> None:
    person = Person.objects.filter(company=sandbox_world.acme, deals__isnull=False).earliest("pk")
    data = api("GET", "acme", "/api/v2/deals", admin_token, query={"person_id": person.pk}).json()["data"]
    assert data and all(d["person_id"] == person.pk for d in data)
    assert len(data) == Deal.objects.filter(person=person).count()


def test_create_and_patch_deal_and_person(api, sandbox_world, admin_token) -> None:
    person = api("POST", "acme", "/api/v2/persons", admin_token, body={"name": "New Person", "emails": ["n@x.example"]})
    assert person.status_code == 200
    person_id = person.json()["data"]["id"]
    assert person.json()["data"]["emails"] == [{"value": "n@x.example", "primary": True, "label": "work"}]
    deal = api(
        "POST", "acme", "/api/v2/deals", admin_token, body={"title": "Fresh", "value": 10, "person_id": person_id}
    )
    assert deal.status_code == 200 and deal.json()["data"]["person_id"] == person_id
    deal_id = deal.json()["data"]["id"]
    patched = api("PATCH", "acme", f"/api/v2/deals/{deal_id}", admin_token, body={"value": 99.5, "status": "lost"})
    assert patched.json()["data"]["value"] == 99.5 and patched.json()["data"]["status"] == "lost"
    assert api("POST", "acme", "/api/v2/deals", admin_token, body={"value": 1}).status_code == 400
    assert api("PATCH", "acme", f"/api/v2/deals/{deal_id}", admin_token, body={"status": "maybe"}).status_code == 400


def test_v1_notes_start_limit_pagination(api, sandbox_world, admin_token) -> None:
    deal = Deal.objects.filter(company=sandbox_world.acme).earliest("pk")
    for n in range(5):
        assert (
            api("POST", "acme", "/api/v1/notes", admin_token, body={"content": f"n{n}", "deal_id": deal.pk}).status_code
            == 200
        )
    first = api("GET", "acme", "/api/v1/notes", admin_token, query={"deal_id": deal.pk, "limit": 2}).json()
    assert [n["content"] for n in first["data"]] == ["n0", "n1"]
    assert first["additional_data"]["pagination"] == {
        "start": 0,
        "limit": 2,
        "more_items_in_collection": True,
        "next_start": 2,
    }
    last = api("GET", "acme", "/api/v1/notes", admin_token, query={"deal_id": deal.pk, "start": 4, "limit": 2}).json()
    assert [n["content"] for n in last["data"]] == ["n4"]
    assert last["additional_data"]["pagination"]["more_items_in_collection"] is False
    assert api("POST", "acme", "/api/v1/notes", admin_token, body={"content": "orphan"}).status_code == 400


def test_forty_webhooks_per_app_user_then_422(api, sandbox_world, grant) -> None:
    token = grant(sandbox_world.acme_admin)["access_token"]
    for n in range(40):
        body = {**WEBHOOK, "name": f"w{n}"}
        assert api("POST", "acme", "/api/v1/webhooks", token, body=body).status_code == 201
    over = api("POST", "acme", "/api/v1/webhooks", token, body=WEBHOOK)
    assert over.status_code == 422
    listed = api("GET", "acme", "/api/v1/webhooks", token).json()["data"]
    assert len(listed) == 40 and all(w["type"] == "application" for w in listed)
    # Deleting one frees a slot.
    assert api("DELETE", "acme", f"/api/v1/webhooks/{listed[0]['id']}", token).status_code == 200
    assert api("POST", "acme", "/api/v1/webhooks", token, body=WEBHOOK).status_code == 201
    # Another company's admin has their own limit and does not see these.
    other = grant(sandbox_world.globex_admin)["access_token"]
    assert api("GET", "globex", "/api/v1/webhooks", other).json()["data"] == []
    assert api("DELETE", "globex", f"/api/v1/webhooks/{listed[1]['id']}", other).status_code == 404


def test_unimplemented_paths_say_so(api, sandbox_world, admin_token) -> None:
    response = api("GET", "acme", "/api/v2/products", admin_token)
    assert response.status_code == 404 and "does not implement" in response.json()["error"]


# --- rate limits ---------------------------------------------------------------------------------------


def test_burst_limit_answers_429_with_headers(api, sandbox_world, admin_token) -> None:
    SandboxCompany.objects.filter(pk=sandbox_world.acme.pk).update(burst_limit=3)
    ok = [api("GET", "acme", "/api/v1/users/me", admin_token) for _ in range(3)]
    assert all(r.status_code == 200 for r in ok)
    assert [r["x-ratelimit-remaining"] for r in ok] == ["2", "1", "0"]
    over = api("GET", "acme", "/api/v1/users/me", admin_token)
    assert over.status_code == 429
    assert over["x-ratelimit-limit"] == "3" and over["x-ratelimit-remaining"] == "0"
    assert 1 <= int(over["x-ratelimit-reset"]) <= 2 and over["Retry-After"] == over["x-ratelimit-reset"]


def test_burst_window_rolls(sandbox_world) -> None:
    limiter = api_limits.BurstLimiter()
    assert [limiter.hit("t", limit=2, window=2.0, now=t).allowed for t in (0.0, 0.5, 1.0)] == [True, True, False]
    assert limiter.hit("t", limit=2, window=2.0, now=2.01).allowed  # the first hit left the window
    assert not limiter.hit("t", limit=2, window=2.0, now=2.2).allowed
    assert limiter.hit("other", limit=2, window=2.0, now=2.2).allowed  # per token


def test_daily_budget_is_charged_with_the_openapi_token_cost(api, sandbox_world, admin_token) -> None:
    # x-token-cost from the official files: /users/me costs 2, GET /deals 10.
    assert api_limits.operation_cost("users.me") == 2 and api_limits.operation_cost("deals.list") == 10
    SandboxCompany.objects.filter(pk=sandbox_world.acme.pk).update(daily_budget=13, budget_used=0, budget_day=None)
    assert api("GET", "acme", "/api/v2/deals", admin_token).status_code == 200  # 10
    assert api("GET", "acme", "/api/v1/users/me", admin_token).status_code == 200  # 12
    over = api("GET", "acme", "/api/v1/users/me", admin_token)  # 14 > 13
    assert over.status_code == 429 and over["x-ratelimit-limit"] == "13" and over["x-ratelimit-remaining"] == "1"
    assert int(over["Retry-After"]) > 0
    assert SandboxCompany.objects.get(pk=sandbox_world.acme.pk).budget_used == 12


def test_without_the_openapi_files_the_sandbox_says_where_they_belong(monkeypatch, tmp_path) -> None:
    """No second table of costs or scopes to drift from the files: without them, a clear error."""
    monkeypatch.setenv("PIPEDRIVE_OPENAPI_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="make update-openapi"):
        api_limits.operation_cost("notes.list")


@pytest.mark.django_db(transaction=True, databases=SANDBOX_DB)
def test_the_apps_client_backs_off_on_429_and_succeeds(live_sandbox, browser, sandbox_world, settings) -> None:
    """The app's PipedriveClient, over HTTP, against the sandbox's burst limit."""
    settings.SANDBOX_BURST_WINDOW_SECONDS = 1.0
    SandboxCompany.objects.filter(pk=sandbox_world.acme.pk).update(burst_limit=2)
    tokens = _live_tokens(live_sandbox, sandbox_world.acme_admin, browser)

    class Fixed:
        def access_token(self) -> str:
            return tokens["access_token"]

        def refresh_after_unauthorized(self, stale_token: str) -> str:
            raise AssertionError("no 401 expected")

    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    client = PipedriveClient(api_domain=tokens["api_domain"], token_source=Fixed(), timeout=10, sleep=sleep)
    try:
        users = [client.get_current_user() for _ in range(4)]
    finally:
        client.close()
    assert all(u.id == sandbox_world.acme_admin.pk for u in users)
    assert waits and all(0 < w <= 1 for w in waits)


def _live_tokens(live, user, session: requests.Session) -> dict:
    import re
    from urllib.parse import parse_qs, urlsplit

    from .conftest import CLIENT_ID, CLIENT_SECRET

    consent = f"{live.oauth_url}/oauth/authorize?client_id={CLIENT_ID}&redirect_uri={live.url}/oauth/callback"
    page = session.get(consent, timeout=10)
    csrf_field = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert csrf_field, page.text
    csrf = csrf_field.group(1)
    answer = session.post(
        consent,
        data={"csrfmiddlewaretoken": csrf, "user_id": user.pk, "decision": "allow"},
        allow_redirects=False,
        timeout=10,
    )
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    response = session.post(
        f"{live.oauth_url}/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": f"{live.url}/oauth/callback"},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_an_admin_demoted_after_installing_gets_403_on_webhooks(api, sandbox_world, admin_token) -> None:
    """The token keeps its ``admin`` scope; the user is no longer an admin (one rule with the double)."""
    SandboxUser.objects.filter(pk=sandbox_world.acme_admin.pk).update(is_admin=False)
    refused = api("GET", "acme", "/api/v1/webhooks", admin_token)
    assert refused.status_code == 403 and "permission" in refused.json()["error"]
    assert api("GET", "acme", "/api/v2/deals", admin_token).status_code == 200
