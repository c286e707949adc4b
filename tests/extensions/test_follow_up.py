""" "Schedule a follow-up" on its three surfaces, against the Pipedrive double over real HTTP:

- the custom modal (``GET /extensions/modals/follow-up/``) and its action
  (``POST /extensions/actions/follow-up/``, Bearer JWT from GET_SIGNED_TOKEN),
- the link action's page (``GET|POST /extensions/links/follow-up/``, JWT then a signed form ticket),
- the JSON modal (``GET|POST /extensions/json-modals/follow-up/``).

Every refusal is a clear 4xx that creates nothing at Pipedrive.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from pipedrive_app.installations.models import Installation

from .conftest import ADMIN, COMPANY, OTHER_COMPANY, OUTSIDER, REGULAR, make_token, panel_query

pytestmark = pytest.mark.django_db

MODAL_SECRET = "follow-up-modal-secret-" + "m" * 24
LINK_SECRET = "follow-up-link-secret-" + "l" * 24
ZONE = "Europe/Berlin"


@pytest.fixture(autouse=True)
def _own_secrets(settings) -> None:
    """Each surface has its own JWT secret, as Developer Hub allows: a token of another one is refused."""
    settings.PIPEDRIVE_EXTENSION_JWT_SECRETS = {"follow_up_modal": MODAL_SECRET, "follow_up_link": LINK_SECRET}


def _berlin_viewers() -> None:
    Installation.objects.update(timezone_name=ZONE)


def _in_days(days: int) -> str:
    return (datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=days)).isoformat()


def _post(app_client, *, token: str, **body):
    return app_client.post(
        "/extensions/actions/follow-up/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def _valid(deal_id: int, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "resource": "deal",
        "selectedIds": deal_id,
        "userId": REGULAR,
        "companyId": COMPANY,
        "subject": "  Call   about the renewal ",
        "type": "call",
        "due_date": _in_days(10),
        "due_time": "09:30",
        "note": "Ask about <budget>\nand timing",
    }
    body.update(changes)
    return body


# --- the custom modal page --------------------------------------------------------------------------------


def test_modal_page_shows_the_form_for_the_record(app_client, seeded_company) -> None:
    world = seeded_company()
    token = make_token(secret=MODAL_SECRET)
    query = panel_query(record_id=world["deal"]["id"], token=token, data='{"title": "Northwind renewal"}')

    response = app_client.get(f"/extensions/modals/follow-up/?{query}")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Schedule a follow-up" in html and "For “Northwind renewal”" in html
    for name in ("subject", "type", "due_date", "due_time", "note"):
        assert f'name="{name}"' in html
    assert 'data-surface="modal"' in html and "data-close-modal" in html
    assert token not in html  # the JWT never lands in the page
    assert "frame-ancestors https://*.pipedrive.com" in response["Content-Security-Policy"]
    assert "X-Frame-Options" not in response


def test_modal_page_refuses_a_token_signed_for_another_extension(app_client, seeded_company) -> None:
    world = seeded_company()
    response = app_client.get(f"/extensions/modals/follow-up/?{panel_query(record_id=world['deal']['id'])}")
    assert response.status_code == 401 and b'data-state="refused"' in response.content
    assert b"<form" not in response.content


def test_modal_page_for_a_viewer_who_never_installed(app_client, seeded_company) -> None:
    world = seeded_company()
    token = make_token(user_id=OUTSIDER, secret=MODAL_SECRET)
    query = panel_query(record_id=world["deal"]["id"], user_id=OUTSIDER, token=token)
    response = app_client.get(f"/extensions/modals/follow-up/?{query}")
    assert response.status_code == 200 and b'data-state="not_installed"' in response.content


# --- the modal's action -------------------------------------------------------------------------------------


def test_follow_up_creates_the_activity_as_the_viewer_in_utc(app_client, seeded_company, pipedrive) -> None:
    world = seeded_company(users=((ADMIN, True), (REGULAR, False)))
    _berlin_viewers()
    deal_id = world["deal"]["id"]
    body = _valid(deal_id)

    response = _post(app_client, token=make_token(user_id=REGULAR, secret=MODAL_SECRET), **body)

    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["ok"] is True and answer["message"].startswith("Follow-up scheduled for ")
    [activity] = pipedrive.company_activities(COMPANY)
    assert answer["activity_id"] == activity["id"]
    local = datetime.combine(date.fromisoformat(str(body["due_date"])), time(9, 30), tzinfo=ZoneInfo(ZONE))
    utc = local.astimezone(ZoneInfo("UTC"))
    assert (activity["due_date"], activity["due_time"]) == (utc.date().isoformat(), utc.strftime("%H:%M"))
    assert activity["subject"] == "Call about the renewal" and activity["type"] == "call"
    assert activity["deal_id"] == deal_id and activity["owner_id"] == REGULAR
    assert activity["note"] == "Ask about &lt;budget&gt;<br>and timing"  # plain text, stored as HTML
    post = pipedrive.requests_to("/api/v2/activities", "POST")[0]
    assert post.bearer_token in pipedrive.access_tokens_of(COMPANY, REGULAR)  # the viewer's own installation
    assert pipedrive.take_contract_violations() == []
    assert not response.cookies


@pytest.mark.parametrize("resource", ["person", "organization"])
def test_follow_up_on_a_person_or_organization(app_client, seeded_company, pipedrive, resource) -> None:
    world = seeded_company()
    record_id = world["person" if resource == "person" else "org"]["id"]
    body = _valid(record_id, resource=resource, userId=ADMIN, due_time="")
    response = _post(app_client, token=make_token(secret=MODAL_SECRET), **body)
    assert response.status_code == 201, response.content
    [activity] = pipedrive.company_activities(COMPANY)
    field = "person_id" if resource == "person" else "org_id"
    assert activity[field] == record_id and "due_time" not in activity and activity["due_date"] == body["due_date"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"subject": "   "}, "subject"),
        ({"subject": "x" * 256}, "subject"),
        ({"subject": ["a list"]}, "subject"),
        ({"type": "party"}, "type"),
        ({"type": True}, "type"),
        ({"due_date": "2031-02-30"}, "due_date"),
        ({"due_date": "tomorrow"}, "due_date"),
        ({"due_date": "２０３０-01-01"}, "due_date"),  # full-width digits
        ({"due_date": "2000-01-01"}, "due_date"),  # in the past
        ({"due_date": "2999-01-01"}, "due_date"),  # years away: a typo
        ({"due_time": "24:00"}, "due_time"),
        ({"due_time": "9:30\n"}, "due_time"),
        ({"note": "x" * 10_001}, "note"),
    ],
)
def test_bad_fields_are_named_and_nothing_is_created(app_client, seeded_company, pipedrive, changes, field) -> None:
    world = seeded_company()
    body = _valid(world["deal"]["id"], userId=ADMIN, **changes)
    response = _post(app_client, token=make_token(secret=MODAL_SECRET), **body)
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["ok"] is False and field in answer["errors"] and answer["message"]
    assert pipedrive.requests_to("/api/v2/activities") == []


@pytest.mark.parametrize(
    ("changes", "token_kwargs", "status"),
    [
        ({"resource": "activity"}, {}, 400),
        ({"selectedIds": "²"}, {}, 400),
        ({"selectedIds": None}, {}, 400),
        ({"selectedIds": 424242}, {}, 422),  # the record is gone at Pipedrive
        ({"companyId": OTHER_COMPANY}, {}, 403),
        ({}, {"secret": "a-panel-secret-is-not-this-one-" + "x" * 10}, 401),
        ({}, {"user_id": OUTSIDER}, 403),  # never installed
    ],
)
def test_refusals_are_readable_4xx(app_client, seeded_company, pipedrive, changes, token_kwargs, status) -> None:
    world = seeded_company()
    body = {k: v for k, v in _valid(world["deal"]["id"], userId=None, **changes).items() if v is not None}
    kwargs = {"secret": MODAL_SECRET, **token_kwargs}
    response = _post(app_client, token=make_token(**kwargs), **body)
    assert response.status_code == status, response.content
    assert response.json()["ok"] is False and response.json()["message"]
    assert pipedrive.company_activities(COMPANY) == []


def test_a_viewer_who_must_reconnect_is_told_so(app_client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    Installation.objects.filter(pipedrive_user_id=ADMIN).update(status=Installation.Status.NEEDS_REAUTH)
    response = _post(app_client, token=make_token(secret=MODAL_SECRET), **_valid(world["deal"]["id"], userId=ADMIN))
    assert response.status_code == 409 and "Reconnect" in response.json()["message"]
    assert pipedrive.company_activities(COMPANY) == []


def test_no_bearer_no_work_and_a_malformed_body_is_400(app_client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    anonymous = app_client.post(
        "/extensions/actions/follow-up/", _valid(world["deal"]["id"]), content_type="application/json"
    )
    assert anonymous.status_code == 401
    malformed = app_client.post(
        "/extensions/actions/follow-up/",
        "[" * 50_000,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {make_token(secret=MODAL_SECRET)}",
    )
    assert malformed.status_code == 400
    assert pipedrive.requests_to("/api/v2/activities") == []


def test_german_viewer_gets_german_messages(app_client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    Installation.objects.update(locale="de_DE")
    response = _post(
        app_client, token=make_token(secret=MODAL_SECRET), **_valid(world["deal"]["id"], userId=ADMIN, subject="")
    )
    assert response.status_code == 400 and response.json()["errors"]["subject"] == "Geben Sie einen Betreff ein."


# --- the link action -------------------------------------------------------------------------------------------


def _ticket(html: str) -> str:
    found = re.search(r'name="ticket" value="([^"]+)"', html)
    assert found, "the page has no form ticket"
    return found.group(1)


def test_link_page_then_form_post_creates_the_activity(app_client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    _berlin_viewers()
    token = make_token(secret=LINK_SECRET)
    page = app_client.get(f"/extensions/links/follow-up/?{panel_query(record_id=world['deal']['id'], token=token)}")
    html = page.content.decode()
    assert page.status_code == 200 and 'data-surface="page"' in html
    assert token not in html  # a ticket of the app's own, never Pipedrive's JWT

    form = {"ticket": _ticket(html), "subject": "Send the offer", "type": "email", "due_date": _in_days(3)}
    done = app_client.post("/extensions/links/follow-up/", form)

    assert done.status_code == 200, done.content
    assert b"data-follow-up-done" in done.content
    [activity] = pipedrive.company_activities(COMPANY)
    assert (activity["subject"], activity["type"], activity["deal_id"]) == (
        "Send the offer",
        "email",
        world["deal"]["id"],
    )


def test_link_form_with_a_bad_field_keeps_the_input_and_creates_nothing(app_client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    token = make_token(secret=LINK_SECRET)
    page = app_client.get(f"/extensions/links/follow-up/?{panel_query(record_id=world['deal']['id'], token=token)}")
    form = {"ticket": _ticket(page.content.decode()), "subject": "Keep me", "type": "call", "due_date": "2000-01-01"}
    response = app_client.post("/extensions/links/follow-up/", form)
    assert response.status_code == 400
    assert b'value="Keep me"' in response.content and b'aria-invalid="true"' in response.content
    assert pipedrive.company_activities(COMPANY) == []


@pytest.mark.parametrize("ticket", ["", "forged:abc:def", "x" * 5000])
def test_link_form_without_a_valid_ticket_is_refused(app_client, seeded_company, pipedrive, ticket) -> None:
    seeded_company()
    form = {"ticket": ticket, "subject": "Nope", "type": "call", "due_date": _in_days(2)}
    response = app_client.post("/extensions/links/follow-up/", form)
    assert response.status_code == 401 and b'data-state="expired"' in response.content
    assert pipedrive.requests_to("/api/v2/activities") == []


def test_link_with_several_records_asks_for_one(app_client, seeded_company) -> None:
    world = seeded_company()
    token = make_token(secret=LINK_SECRET)
    query = panel_query(record_id=f"{world['deal']['id']},{world['second_deal']['id']}", token=token)
    response = app_client.get(f"/extensions/links/follow-up/?{query}")
    assert response.status_code == 200 and b'data-state="one_record"' in response.content


def test_link_refuses_the_modal_token(app_client, seeded_company) -> None:
    world = seeded_company()
    query = panel_query(record_id=world["deal"]["id"], token=make_token(secret=MODAL_SECRET))
    assert app_client.get(f"/extensions/links/follow-up/?{query}").status_code == 401


# --- the JSON modal ------------------------------------------------------------------------------------------------


def test_json_modal_initial_data_and_submit(app_client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    query = panel_query(record_id=world["deal"]["id"])  # no own secret configured: the fallback secret
    loaded = app_client.get(f"/extensions/json-modals/follow-up/?{query}")
    assert loaded.status_code == 200
    blocks = loaded.json()["data"]["blocks"]
    assert (
        blocks["follow_up_type"] == {"value": "call"}
        and blocks["follow_up_due_date"]["value"] > date.today().isoformat()
    )

    values = {"follow_up_subject": "Quick call", "follow_up_type": "call", "follow_up_due_date": _in_days(1)}
    submitted = app_client.post(f"/extensions/json-modals/follow-up/?{query}", values, content_type="application/json")

    assert submitted.status_code == 200, submitted.content
    assert submitted.json()["success"]["type"] == "snackbar"
    assert submitted.json()["success"]["message"].startswith("Follow-up scheduled")
    assert [a["subject"] for a in pipedrive.company_activities(COMPANY)] == ["Quick call"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"follow_up_subject": "", "follow_up_type": "call", "follow_up_due_date": "2099-01-01"}, 400),
        ({"follow_up_subject": "x", "follow_up_type": "call", "follow_up_due_date": "soon"}, 400),
        ("[1, 2]", 400),
    ],
)
def test_json_modal_refusals(app_client, seeded_company, pipedrive, body, status) -> None:
    world = seeded_company()
    query = panel_query(record_id=world["deal"]["id"])
    response = app_client.post(f"/extensions/json-modals/follow-up/?{query}", body, content_type="application/json")
    assert response.status_code == status
    assert response.json()["error"]["message"]
    assert pipedrive.company_activities(COMPANY) == []


def test_json_modal_needs_a_verified_token(app_client, seeded_company) -> None:
    world = seeded_company()
    query = panel_query(record_id=world["deal"]["id"], token="not-a-jwt")
    assert app_client.get(f"/extensions/json-modals/follow-up/?{query}").status_code == 401


def test_a_request_that_names_no_record_type_is_400_on_every_surface(app_client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    deal_id = world["deal"]["id"]
    body = {k: v for k, v in _valid(deal_id, userId=ADMIN).items() if k != "resource"}
    action = _post(app_client, token=make_token(secret=MODAL_SECRET), **body)
    assert action.status_code == 400 and action.json()["ok"] is False

    modal = panel_query(resource=None, record_id=deal_id, token=make_token(secret=MODAL_SECRET))
    assert app_client.get(f"/extensions/modals/follow-up/?{modal}").status_code == 400
    link = panel_query(resource=None, record_id=deal_id, token=make_token(secret=LINK_SECRET))
    assert app_client.get(f"/extensions/links/follow-up/?{link}").status_code == 400
    json_modal = panel_query(resource=None, record_id=deal_id)
    values = {"follow_up_subject": "x", "follow_up_type": "call", "follow_up_due_date": _in_days(1)}
    posted = app_client.post(
        f"/extensions/json-modals/follow-up/?{json_modal}", values, content_type="application/json"
    )
    assert posted.status_code == 400 and posted.json()["error"]["message"]
    assert pipedrive.requests_to("/api/v2/activities") == []
