"""The sandbox's record pages as Pipedrive's: their own changes only, custom fields as a person reads
them, the app's JSON panels rendered from their data structure, and the app settings surface."""

from __future__ import annotations

import html as html_lib
import json
import re
from typing import Any

import jwt
import pytest
import requests
from django.test import Client

from sandbox import json_panel_host
from sandbox.custom_field_display import custom_fields_display
from sandbox.models import ChangeEvent, Deal, FieldDefinition, Organization, Person
from sandbox.seeding import field_key

from .conftest import CLIENT_SECRET, SANDBOX_DB
from .test_live_install import browser_install

# --- "Recent changes": the entity type and the id ----------------------------------------------------------


@pytest.mark.django_db(databases=SANDBOX_DB)
def test_recent_changes_match_the_entity_type_not_only_the_id(client: Client, sandbox_world) -> None:
    company = sandbox_world.acme
    deal = Deal.objects.filter(company=company).earliest("pk")
    # a person event with the deal's numeric id, and one of another company: neither is the deal's
    ChangeEvent.objects.create(company=company, entity="person", entity_id=deal.pk, action="create", data={})
    ChangeEvent.objects.create(company=sandbox_world.globex, entity="deal", entity_id=deal.pk, action="change", data={})
    page = client.get(f"/sandbox/acme/deals/{deal.pk}/").content.decode()
    changes = page.split("<h2>Recent changes</h2>", 1)[1].split("</table>", 1)[0]
    assert f"create.deal {deal.pk}" in changes
    assert f"create.person {deal.pk}" not in changes and "change.deal" not in changes

    person = Person.objects.filter(company=company).earliest("pk")
    ChangeEvent.objects.create(company=company, entity="deal", entity_id=person.pk, action="delete", data={})
    page = client.get(f"/sandbox/acme/persons/{person.pk}/").content.decode()
    changes = page.split("<h2>Recent changes</h2>", 1)[1].split("</table>", 1)[0]
    assert f"create.person {person.pk}" in changes and f"delete.deal {person.pk}" not in changes


# --- custom fields ---------------------------------------------------------------------------------------


@pytest.mark.django_db(databases=SANDBOX_DB)
def test_deal_custom_fields_show_names_and_labels_not_a_dict(client: Client, sandbox_world) -> None:
    deal = Deal.objects.filter(company=sandbox_world.acme).earliest("pk")
    source = deal.custom_fields[field_key("acme", "deal:lead_source")]
    months = deal.custom_fields[field_key("acme", "deal:contract_months")]
    page = client.get(f"/sandbox/acme/deals/{deal.pk}/").content.decode()
    fields = page.split("data-custom-fields", 1)[1].split("</dl>", 1)[0]
    label = {1: "Web", 2: "Referral", 3: "Event"}[source]
    assert "<dt>Lead source</dt><dd>" + label + "</dd>" in fields
    assert f"<dt>Contract length (months)</dt><dd>{months}</dd>" in fields
    visible = html_lib.unescape(re.sub(r"<[^>]+>", " ", fields))
    assert "{" not in visible and field_key("acme", "deal:lead_source") not in visible


@pytest.mark.django_db(databases=SANDBOX_DB)
def test_every_custom_field_shape_reads_as_a_person_would(sandbox_world) -> None:
    company = sandbox_world.acme
    person = Person.objects.filter(company=company).earliest("pk")
    org = Organization.objects.filter(company=company).earliest("pk")
    user = sandbox_world.acme_regular
    defs = {
        "enum": ("Lead source", "enum", [{"id": 7, "label": "Partner"}]),
        "set": ("Products", "set", [{"id": 1, "label": "CRM"}, {"id": 2, "label": "Phone"}]),
        "money": ("Budget", "monetary", []),
        "range": ("Pilot", "daterange", []),
        "user": ("Account manager", "user", []),
        "people": ("Champion", "people", []),
        "org": ("Reseller", "org", []),
        "date": ("Signed", "date", []),
        "text": ("Notes", "varchar", []),
        "address": ("Site", "address", []),
    }
    for key, (name, field_type, options) in defs.items():
        FieldDefinition.objects.create(
            company=company, entity="deal", key=key.ljust(40, "0"), name=name, field_type=field_type, options=options
        )
    typed = {
        "enum": {"type": "enum", "id": 7},
        "set": {"type": "set", "values": [{"id": 1}, {"id": 2}]},
        "money": {"type": "monetary", "value": 1250.5, "currency": "EUR"},
        "range": {"type": "daterange", "from": "2026-01-05", "until": "2026-02-10"},
        "user": {"type": "user", "id": user.pk},
        "people": {"type": "people", "id": person.pk},
        "org": {"type": "org", "id": org.pk},
        "date": {"type": "date", "value": "2026-03-31"},
        "text": {"type": "varchar", "value": "Call back"},
        "address": {"type": "address", "value": "1 Main St", "formatted_address": "1 Main St, Tallinn"},
    }
    raw = {
        "enum": 7,
        "set": "1,2",
        "money": 1250.5,
        "range": "2026-01-05",
        "user": user.pk,
        "people": person.pk,
        "org": org.pk,
        "date": "2026-03-31",
        "text": "Call back",
        "address": "1 Main St",
    }
    for values in (typed, raw):
        stored = {key.ljust(40, "0"): value for key, value in values.items()}
        stored["money".ljust(40, "0") + "_currency"] = "EUR"
        stored["range".ljust(40, "0") + "_until"] = "2026-02-10"
        shown = {f.name: f.value for f in custom_fields_display(company=company, entity="deal", values=stored)}
        seeded = {k: v for k, v in shown.items() if k not in {d[0] for d in defs.values()}}
        assert {k: v for k, v in shown.items() if k not in seeded} == {
            "Lead source": "Partner",
            "Products": "CRM, Phone",
            "Budget": "1,250.50 EUR",
            "Pilot": "Jan. 5, 2026 – Feb. 10, 2026",
            "Account manager": user.name,
            "Champion": person.name,
            "Reseller": org.name,
            "Signed": "March 31, 2026",
            "Notes": "Call back",
            "Site": "1 Main St",
        }, values is typed
    gone = custom_fields_display(company=company, entity="deal", values={"user".ljust(40, "0"): 999999})
    assert {f.name: f.value for f in gone}["Account manager"] == "User #999999 (not found)"


# --- the JSON panel host, with a stand-in app answer ---------------------------------------------------


class _Answer(requests.adapters.BaseAdapter):
    def __init__(self, status: int, body: Any = None, *, fail: bool = False) -> None:
        super().__init__()
        self.status, self.body, self.fail = status, body, fail
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.requests.append(request)
        if self.fail:
            raise requests.Timeout("no answer")
        response = requests.Response()
        response.status_code = self.status
        response._content = json.dumps(self.body).encode()
        response.headers["Content-Type"] = "application/json"
        response.request = request
        return response

    def close(self) -> None:
        pass


def _answering(monkeypatch, adapter: _Answer) -> None:
    def session() -> requests.Session:
        s = requests.Session()
        s.mount("http://", adapter)
        return s

    monkeypatch.setattr(json_panel_host, "http_session", session)


def _show(world, **kwargs: Any) -> json_panel_host.JsonPanelShown:
    deal = Deal.objects.filter(company=world.acme).earliest("pk")
    return json_panel_host.json_panel_show(
        company=world.acme, user=world.acme_regular, resource="deal", record_id=deal.pk, is_shared=True, **kwargs
    )


@pytest.mark.django_db(databases=SANDBOX_DB)
def test_the_host_calls_the_panel_as_pipedrive_does_and_renders_by_type(monkeypatch, settings, sandbox_world) -> None:
    settings.PIPEDRIVE_EXTENSION_JWT_SECRETS = {"deal_json_panel": "deal-json-secret-" + "x" * 30}
    settings.EXTENSIONS_JSON_PANEL_HTTP_AUTH_USER = "pd"
    settings.EXTENSIONS_JSON_PANEL_HTTP_AUTH_PASSWORD = "pw-0123456789"
    body = {
        "data": [
            {
                "id": 12,
                "header": "Big deal",
                "value": {"code": "EUR", "value": 12500.5},
                "status": {"color": "grey", "label": "Deleted"},
                "expected_close_date": "2026-03-31",
                "last_change": {"markdown": True, "value": "See [the log](https://example.test/log)"},
                "days_since_last_change": 3,
            }
        ]
    }
    adapter = _Answer(200, body)
    _answering(monkeypatch, adapter)

    shown = _show(sandbox_world)

    (request,) = adapter.requests
    assert request.url
    query = dict(re.findall(r"[?&]([^=&]+)=([^&]*)", request.url))
    assert request.url.startswith("http://testserver/extensions/json-panels/deal/?")
    assert set(query) == {"resource", "view", "userId", "companyId", "selectedIds", "isShared", "token"}
    assert query["isShared"] == "true" and query["view"] == "details"
    claims = jwt.decode(query["token"], "deal-json-secret-" + "x" * 30, algorithms=["HS256"])
    assert claims["userId"] == sandbox_world.acme_regular.pk and claims["companyId"] == sandbox_world.acme.pk
    assert request.headers["Authorization"].startswith("Basic ")

    assert shown.state == "ready"
    (obj,) = shown.objects
    fields = {f.key: f for f in obj.fields}
    assert obj.header == "Big deal" and list(fields)[:2] == ["value", "status"]  # the data structure's order
    assert fields["value"].label == "Value" and fields["value"].value.text == "EUR 12,500.50"
    assert (fields["status"].value.kind, fields["status"].value.color) == ("label", "grey")
    assert fields["expected_close_date"].label == "Expected close date"
    assert 'href="https://example.test/log"' in str(fields["last_change"].value.html)


@pytest.mark.django_db(databases=SANDBOX_DB)
@pytest.mark.parametrize(
    ("answer", "state", "message"),
    [
        (_Answer(200, {"data": [{"id": "deal:1", "header": "x"}]}), "invalid", "id"),
        (
            _Answer(200, {"data": [{"id": 1, "header": "x", "status": {"color": "gray", "label": "L"}}]}),
            "invalid",
            "gray",
        ),
        (_Answer(200, {"data": []}), "empty", ""),
        (_Answer(403, {"error": {"title": "Install the app first", "subtitle": "s"}}), "error", ""),
        (_Answer(500, {"error": {"title": "x" * 31}}), "error", "long"),
        (_Answer(200, fail=True), "unreachable", ""),
    ],
)
def test_the_host_shows_what_pipedrive_would(monkeypatch, sandbox_world, answer, state, message) -> None:
    _answering(monkeypatch, answer)
    shown = _show(sandbox_world)
    assert shown.state == state
    if message:
        assert shown.problems
    if state == "error" and not message:
        assert shown.error["title"] == "Install the app first"


@pytest.mark.django_db(databases=SANDBOX_DB)
def test_a_deal_page_shows_the_apps_json_panel_error_before_install(
    client: Client, sandbox_world, _json_panels_in_process
) -> None:
    deal = Deal.objects.filter(company=sandbox_world.acme).earliest("pk")
    page = client.get(f"/sandbox/acme/deals/{deal.pk}/").content.decode()
    assert 'data-json-panel="deal" data-state="error"' in page and "Install the app first" in page
    assert _json_panels_in_process.calls == ["/extensions/json-panels/deal/"]


@pytest.mark.django_db(databases=SANDBOX_DB)
def test_the_token_endpoint_signs_for_the_extension_that_asks(client: Client, settings, sandbox_world) -> None:
    settings.PIPEDRIVE_EXTENSION_JWT_SECRETS = {"settings_page": "settings-secret-" + "s" * 30}
    query = {"company": sandbox_world.acme.pk, "user": sandbox_world.acme_admin.pk}
    settings_token = client.get("/sandbox/extensions/token", {**query, "extension": "settings_page"}).json()["token"]
    panel_token = client.get("/sandbox/extensions/token", {**query, "extension": "deal_panel"}).json()["token"]
    assert jwt.decode(settings_token, "settings-secret-" + "s" * 30, algorithms=["HS256"])["userId"] == query["user"]
    assert jwt.decode(panel_token, CLIENT_SECRET, algorithms=["HS256"])["companyId"] == query["company"]
    assert client.get("/sandbox/extensions/token", {**query, "extension": "nope"}).status_code == 404


# --- end to end on a live server: install, then the JSON panel and the settings surface --------------------


def _json_panel_html(page: str) -> str:
    return page.split("data-json-panel=", 1)[1].split("</section>", 1)[0]


@pytest.mark.django_db(transaction=True, databases=SANDBOX_DB)
def test_live_json_panels_and_settings_surface_from_sandbox_pages(live_sandbox, browser, sandbox_world) -> None:
    admin, regular = sandbox_world.acme_admin, sandbox_world.acme_regular
    assert browser_install(live_sandbox, admin, browser).status_code == 200
    deal = Deal.objects.filter(company=sandbox_world.acme, is_deleted=False).earliest("pk")
    person = deal.person
    assert person, "the seed gives every deal a person"

    # the admin installed: their own installation reads the deal
    page = browser.get(f"{live_sandbox.oauth_url}/acme/deals/{deal.pk}/?as={admin.pk}", timeout=30).text
    panel = _json_panel_html(page)
    assert '"deal" data-state="ready"' in panel and "data-shared" not in panel
    assert f'data-object-id="{deal.pk}"' in panel and html_lib.escape(deal.title) in panel
    assert f"<dd>{deal.stage.name}</dd>" in panel.replace("\n", "").replace("  ", "")

    # the regular user never installed: the shared panel still shows the company's deal
    page = browser.get(f"{live_sandbox.oauth_url}/acme/deals/{deal.pk}/?as={regular.pk}", timeout=30).text
    panel = _json_panel_html(page)
    assert '"deal" data-state="ready"' in panel and "data-shared" in panel
    assert html_lib.escape(deal.title) in panel

    page = browser.get(f"{live_sandbox.oauth_url}/acme/persons/{person.pk}/?as={admin.pk}", timeout=30).text
    assert '"person" data-state="ready"' in _json_panel_html(page)

    # the settings surface, from the installed-apps page
    apps = browser.get(f"{live_sandbox.oauth_url}/acme/apps/", timeout=10).text
    link = re.search(r'href="(/sandbox/acme/apps/settings/\?as=\d+)"', apps)
    assert link, apps
    settings_page = browser.get(f"{live_sandbox.url}{link.group(1)}", timeout=10).text
    frame = re.search(r'data-pd-frame="panel" src="([^"]+)"', settings_page)
    assert frame, settings_page
    src = html_lib.unescape(frame.group(1))
    assert src.startswith(f"{live_sandbox.url}/extensions/settings/?") and "token=" in src
    framed = browser.get(src, timeout=10)
    assert framed.status_code == 200 and 'name="history_retention_days"' in framed.text
