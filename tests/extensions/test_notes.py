"""Add note from inside the iframe: a fetch POST with a Bearer JWT, no cookie, no CSRF token."""

from __future__ import annotations

import pytest

from pipedrive_app.installations.models import Installation

from .conftest import ADMIN, COMPANY, OTHER_COMPANY, OUTSIDER, REGULAR, make_token

pytestmark = pytest.mark.django_db


def _post_note(app_client, *, token: str, **body):
    return app_client.post(
        "/extensions/actions/notes/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def test_add_note_creates_the_note_at_pipedrive_as_the_viewer(app_client, seeded_company, pipedrive) -> None:
    world = seeded_company(users=((ADMIN, True), (REGULAR, False)))
    deal_id = world["deal"]["id"]

    response = _post_note(
        app_client,
        token=make_token(user_id=REGULAR),
        resource="deal",
        selectedIds=deal_id,
        userId=REGULAR,
        companyId=COMPANY,
        content="Called Mia <b>today</b>\nShe wants a quote",
    )

    assert response.status_code == 201, response.content
    assert response.json()["ok"] is True and response.json()["message"] == "Note added."
    assert not response.cookies
    notes = pipedrive.company_notes(COMPANY)
    assert len(notes) == 1
    assert notes[0]["deal_id"] == deal_id and notes[0]["user_id"] == REGULAR
    assert notes[0]["content"] == "Called Mia &lt;b&gt;today&lt;/b&gt;<br>She wants a quote"
    post = pipedrive.requests_to("/api/v1/notes", "POST")[0]
    assert post.bearer_token in pipedrive.access_tokens_of(COMPANY, REGULAR)


def test_add_note_on_a_person(app_client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    response = _post_note(
        app_client, token=make_token(), resource="person", selectedIds=world["person"]["id"], content="Met at expo"
    )
    assert response.status_code == 201
    assert pipedrive.company_notes(COMPANY)[0]["person_id"] == world["person"]["id"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"resource": "deal", "selectedIds": 1, "content": "   "}, 400),
        ({"resource": "deal", "selectedIds": 1, "content": "x" * 10_001}, 400),
        ({"resource": "activity", "selectedIds": 1, "content": "hi"}, 400),
        ({"resource": "deal", "content": "hi"}, 400),
        ({"resource": "deal", "selectedIds": "abc", "content": "hi"}, 400),
        ({"resource": "deal", "selectedIds": 424242, "content": "hi"}, 422),
        ({"resource": "deal", "selectedIds": 1, "content": "hi", "companyId": OTHER_COMPANY}, 403),
    ],
)
def test_bad_note_requests_are_refused_readably(app_client, seeded_company, pipedrive, body, status) -> None:
    seeded_company()
    response = _post_note(app_client, token=make_token(), **body)
    assert response.status_code == status, response.content
    assert response.json()["ok"] is False and response.json()["message"]
    assert pipedrive.company_notes(COMPANY) == []


def test_a_viewer_who_has_not_installed_cannot_add_notes(app_client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    response = _post_note(
        app_client, token=make_token(user_id=OUTSIDER), resource="deal", selectedIds=world["deal"]["id"], content="x"
    )
    assert response.status_code == 403 and "Install" in response.json()["message"]
    Installation.objects.filter(pipedrive_user_id=ADMIN).update(status=Installation.Status.NEEDS_REAUTH)
    response = _post_note(app_client, token=make_token(), resource="deal", selectedIds=world["deal"]["id"], content="x")
    assert response.status_code == 409 and "Reconnect" in response.json()["message"]
    assert pipedrive.company_notes(COMPANY) == []


def test_rate_limit_and_outage_are_readable(app_client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    pipedrive.rate_limit_next("/api/v1/notes", times=2, retry_after=1, reset=None)
    response = _post_note(app_client, token=make_token(), resource="deal", selectedIds=world["deal"]["id"], content="x")
    assert response.status_code == 429 and "rate limit" in response.json()["message"]
    pipedrive.fail_next("/api/v1/notes", status=503)
    response = _post_note(app_client, token=make_token(), resource="deal", selectedIds=world["deal"]["id"], content="x")
    assert response.status_code == 503 and "could not be reached" in response.json()["message"]
    assert len(pipedrive.requests_to("/api/v1/notes", "POST")) == 3  # a POST that failed is never re-sent


def test_company_a_cannot_write_a_note_on_company_bs_deal(app_client, seeded_company, pipedrive) -> None:
    seeded_company()
    seeded_company(OTHER_COMPANY, users=((ADMIN + 100, True),))
    b_deal = pipedrive.add_deal(OTHER_COMPANY, id=888, title="B's deal")

    response = _post_note(app_client, token=make_token(), resource="deal", selectedIds=b_deal["id"], content="x")
    assert response.status_code == 422
    response = _post_note(
        app_client, token=make_token(), resource="deal", selectedIds=b_deal["id"], companyId=OTHER_COMPANY, content="x"
    )
    assert response.status_code == 403
    assert pipedrive.company_notes(OTHER_COMPANY) == [] and pipedrive.company_notes(COMPANY) == []


def test_get_is_not_an_action(client) -> None:
    assert client.get("/extensions/actions/notes/").status_code == 405
