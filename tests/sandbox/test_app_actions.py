"""The sandbox runs the app's actions as Pipedrive does, over real HTTP on the live server:

- a record page's "Actions" menu lists the registered actions, with no token in the page;
- a link action's tab is redirected to the app only for a user who installed, with the selection and
  a token signed with that action's own JWT secret; the app's page then creates the activity;
- a JSON modal's initial data and submit go through the sandbox's server to the app;
- the record page lists the activity the app created.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from sandbox.models import Activity, Deal

from .conftest import SANDBOX_DB
from .test_live_install import browser_install

pytestmark = pytest.mark.django_db(transaction=True, databases=SANDBOX_DB)

LINK_SECRET = "follow-up-link-secret-" + "l" * 32
JSON_MODAL_SECRET = "follow-up-json-modal-secret-" + "j" * 32


@pytest.fixture(autouse=True)
def _own_secrets(settings) -> None:
    settings.PIPEDRIVE_EXTENSION_JWT_SECRETS = {
        "follow_up_link": LINK_SECRET,
        "follow_up_json_modal": JSON_MODAL_SECRET,
    }


def _found(pattern: str, text: str) -> str:
    """The first group of ``pattern`` in ``text``; the test fails if it is not there."""
    match = re.search(pattern, text)
    assert match is not None, pattern
    return match[1]


def _deal(world):
    return Deal.objects.filter(company=world.acme, is_deleted=False).order_by("pk").first()


def test_menu_lists_the_actions_without_tokens(live_sandbox, browser, sandbox_world) -> None:
    deal = _deal(sandbox_world)
    page = browser.get(f"{live_sandbox.oauth_url}/acme/deals/{deal.pk}/?as={sandbox_world.acme_admin.pk}", timeout=10)
    assert page.status_code == 200
    for label in ("Schedule a follow-up", "Schedule a follow-up (new tab)", "Quick follow-up"):
        assert label in page.text
    actions = json.loads(_found(r'<script id="pd-app-actions" type="application/json">(.*?)</script>', page.text))
    assert {a["kind"] for a in actions} == {"custom_modal", "link", "json_modal"}
    modal = next(a for a in actions if a["kind"] == "custom_modal")
    assert modal["url"] == f"{live_sandbox.url}/extensions/modals/follow-up/"
    assert "extension=follow_up_modal" in modal["token_url"]
    assert "eyJ" not in page.text.split("data-pd-actions", 1)[1].split("</ul>", 1)[0]  # no JWT in the menu
    assert "data-pd-activities" in page.text and "No activities yet." in page.text


def test_link_action_needs_an_installation(live_sandbox, browser, sandbox_world) -> None:
    deal = _deal(sandbox_world)
    url = f"{live_sandbox.oauth_url}/acme/apps/actions/follow-up-link/"
    response = browser.get(
        url, params={"as": sandbox_world.acme_regular.pk, "resource": "deal", "id": deal.pk}, timeout=10
    )
    assert response.status_code == 403 and "has not installed the app" in response.text
    for params in ({"resource": "activity", "id": deal.pk}, {"resource": "deal", "id": "²"}, {"resource": "deal"}):
        assert browser.get(url, params=params, timeout=10).status_code == 404
    unknown = browser.get(f"{live_sandbox.oauth_url}/acme/apps/actions/nope/?resource=deal&id=1", timeout=10)
    assert unknown.status_code == 404


def test_link_action_lands_on_the_apps_form_and_creates_the_activity(live_sandbox, browser, sandbox_world) -> None:
    admin = sandbox_world.acme_admin
    browser_install(live_sandbox, admin, browser)
    deal = _deal(sandbox_world)

    redirect = browser.get(
        f"{live_sandbox.oauth_url}/acme/apps/actions/follow-up-link/",
        params={"as": admin.pk, "resource": "deal", "id": deal.pk},
        allow_redirects=False,
        timeout=10,
    )
    assert redirect.status_code == 302
    target = urlsplit(redirect.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{live_sandbox.url}/extensions/links/follow-up/"
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert (query["resource"], query["selectedIds"], query["userId"]) == ("deal", str(deal.pk), str(admin.pk))
    claims = jwt.decode(query["token"], LINK_SECRET, algorithms=["HS256"])  # the link action's own secret
    assert (claims["userId"], claims["companyId"]) == (admin.pk, sandbox_world.acme.pk)

    page = browser.get(redirect.headers["Location"], timeout=10)
    assert page.status_code == 200 and query["token"] not in page.text
    ticket = _found(r'name="ticket" value="([^"]+)"', page.text)
    due = (date.today() + timedelta(days=4)).isoformat()
    done = browser.post(
        f"{live_sandbox.url}/extensions/links/follow-up/",
        data={"ticket": ticket, "subject": "Send the offer", "type": "email", "due_date": due, "due_time": ""},
        timeout=30,
    )
    assert done.status_code == 200 and "data-follow-up-done" in done.text, done.text[:500]
    activity = Activity.objects.get()
    assert (activity.deal_id, activity.type, activity.subject, activity.creator_id) == (
        deal.pk,
        "email",
        "Send the offer",
        admin.pk,
    )
    record = browser.get(f"{live_sandbox.oauth_url}/acme/deals/{deal.pk}/?as={admin.pk}", timeout=10)
    assert f'data-pd-activity="{activity.pk}"' in record.text and "Send the offer" in record.text


def test_json_modal_through_the_sandbox(live_sandbox, browser, sandbox_world) -> None:
    admin = sandbox_world.acme_admin
    browser_install(live_sandbox, admin, browser)
    deal = _deal(sandbox_world)
    record = browser.get(f"{live_sandbox.oauth_url}/acme/deals/{deal.pk}/?as={admin.pk}", timeout=10)
    csrf = _found(r'data-csrf="([^"]+)"', record.text)
    url = f"{live_sandbox.oauth_url}/acme/apps/actions/follow-up-quick/?as={admin.pk}&resource=deal&id={deal.pk}"

    opened = browser.get(url, timeout=30).json()
    assert opened["ok"] is True and opened["problems"] == []
    assert set(opened["schema"]["properties"]["blocks"]["properties"]) >= {"follow_up_subject", "follow_up_due_date"}
    assert opened["data"]["blocks"]["follow_up_type"] == {"value": "call"}

    headers = {"X-CSRFToken": csrf, "Referer": record.url}
    refused = browser.post(url, json={"follow_up_subject": "", "follow_up_type": "call"}, headers=headers, timeout=30)
    assert refused.json()["ok"] is False and "subject" in refused.json()["message"].lower()
    due = (date.today() + timedelta(days=2)).isoformat()
    values = {"follow_up_subject": "Quick call", "follow_up_type": "call", "follow_up_due_date": due}
    submitted = browser.post(url, json=values, headers=headers, timeout=30).json()
    assert submitted["ok"] is True and submitted["success"]["type"] == "snackbar"
    assert Activity.objects.get().subject == "Quick call"


def test_json_modal_schema_follows_the_component_library() -> None:
    from sandbox.json_modal_host import json_modal_schema, schema_problems

    assert schema_problems(json_modal_schema("follow-up-quick")) == []
    broken = {"properties": {"blocks": {"properties": {"x": {"$ref": "#/definitions/element-rocket"}}}}}
    assert schema_problems(broken) == ["block x: unknown type '#/definitions/element-rocket'"]
