"""The panel cache follows the records: a processed webhook event (or a note added from the panel)
makes the next view read Pipedrive again, for every viewer; views without changes stay cached."""

from __future__ import annotations

from typing import Any

import pytest

from pipedrive_app.installations.models import Installation
from pipedrive_app.webhooks.services import webhook_state_get_or_create
from tests.webhooks.conftest import load_event, post_event  # noqa: F401  (fixture)

from .conftest import ADMIN, COMPANY, REGULAR, make_token, panel_query

pytestmark = pytest.mark.django_db


def _page(client, resource: str, record_id: int, *, user_id: int = ADMIN):
    query = panel_query(resource=resource, record_id=record_id, user_id=user_id)
    return client.get(f"/extensions/panels/{resource}/?{query}")


def _api_calls(pipedrive, since: int) -> list[str]:
    return [r.path for r in pipedrive.requests[since:] if r.path.startswith("/api/")]


def _stage_changed_at_pipedrive(pipedrive, deal: dict[str, Any], new_stage: int, *, event_id: str) -> dict[str, Any]:
    """The user moves the deal in Pipedrive; Pipedrive then sends the v2 change event."""
    old_stage = deal["stage_id"]
    pipedrive._companies[COMPANY].deals[deal["id"]]["stage_id"] = new_stage
    payload = load_event("deal.change", id=event_id, entity_id=str(deal["id"]), company_id=str(COMPANY))
    payload["data"] = {**deal, "stage_id": new_stage}
    payload["previous"] = {"stage_id": old_stage}
    return payload


@pytest.fixture
def receiver(seeded_company):
    world = seeded_company(users=((ADMIN, True), (REGULAR, False)))
    company = Installation.objects.get(pipedrive_user_id=ADMIN).company
    return world, webhook_state_get_or_create(company=company)


def test_an_edited_deal_shows_its_new_stage_as_soon_as_the_event_is_processed(
    client,
    receiver,
    post_event,  # noqa: F811
    pipedrive,
) -> None:
    world, state = receiver
    deal = world["deal"]
    assert 'data-fact="stage">Proposal made<' in _page(client, "deal", deal["id"]).content.decode()
    before = len(pipedrive.requests)
    assert 'data-fact="stage">Proposal made<' in _page(client, "deal", deal["id"]).content.decode()
    assert _api_calls(pipedrive, before) == []  # a repeated view is a cache hit

    post_event(state, _stage_changed_at_pipedrive(pipedrive, deal, 1, event_id="stage-move"))

    html = _page(client, "deal", deal["id"]).content.decode()
    assert 'data-fact="stage">Qualified<' in html  # not the cached "Proposal made"
    # The history says the same, with names.
    history = html.split("data-history-row")[1]
    assert "<strong>Stage</strong>" in history and "Proposal made" in history and "Qualified" in history
    # And the fresh answer is cached again.
    before = len(pipedrive.requests)
    _page(client, "deal", deal["id"])
    assert _api_calls(pipedrive, before) == []


def test_an_event_for_another_record_keeps_the_cache(client, receiver, post_event, pipedrive) -> None:  # noqa: F811
    world, state = receiver
    deal, other = world["deal"], world["second_deal"]
    _page(client, "deal", deal["id"])

    post_event(state, _stage_changed_at_pipedrive(pipedrive, other, 2, event_id="other-deal"))

    before = len(pipedrive.requests)
    _page(client, "deal", deal["id"])
    assert _api_calls(pipedrive, before) == []


def test_the_person_panel_follows_its_open_deals(client, receiver, post_event, pipedrive) -> None:  # noqa: F811
    world, state = receiver
    person, second = world["person"], world["second_deal"]
    html = _page(client, "person", person["id"]).content.decode()
    assert "Qualified" in html.split(f'data-open-deal="{second["id"]}"')[1].split("</li>")[0]

    post_event(state, _stage_changed_at_pipedrive(pipedrive, second, 2, event_id="pilot-move"))

    html = _page(client, "person", person["id"]).content.decode()
    assert "Proposal made" in html.split(f'data-open-deal="{second["id"]}"')[1].split("</li>")[0]


def test_a_note_added_from_the_panel_is_not_hidden_by_the_cache(app_client, client, receiver, pipedrive) -> None:
    world, _ = receiver
    deal_id = world["deal"]["id"]
    _page(client, "deal", deal_id)
    _page(client, "deal", deal_id, user_id=REGULAR)

    response = app_client.post(
        "/extensions/actions/notes/",
        {"resource": "deal", "selectedIds": deal_id, "userId": ADMIN, "companyId": COMPANY, "content": "Called"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {make_token(user_id=ADMIN)}",
    )
    assert response.status_code == 201

    # Both viewers read the deal again (its last change moved at Pipedrive).
    for user_id in (ADMIN, REGULAR):
        before = len(pipedrive.requests)
        _page(client, "deal", deal_id, user_id=user_id)
        assert f"/api/v2/deals/{deal_id}" in _api_calls(pipedrive, before), user_id
