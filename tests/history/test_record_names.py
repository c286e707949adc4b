"""History shows the names of the records an event refers to (stage, pipeline, users, person,
organization), looked up once per company through the double, and falls back readably when a
lookup fails, without ever failing the event."""

from __future__ import annotations

import pytest

from pipedrive_app.history.selectors import HistoryEntry, record_history
from pipedrive_app.installations.models import Company
from pipedrive_app.webhooks.models import InboxEvent
from pipedrive_app.webhooks.services import webhook_state_get_or_create
from tests.webhooks.conftest import load_event

pytestmark = pytest.mark.django_db

SCOPES_WITH_USERS = "base,deals:full,contacts:full,admin,users:read"


@pytest.fixture
def world(pipedrive, install_user):
    """Company 1001: admin 501 installed (with users:read); pipelines, stages, people and orgs."""
    installation = install_user(1001, 501, name="Ann Admin", scopes=SCOPES_WITH_USERS)
    pipedrive.add_user(1001, 777, name="Nora Notinstalled")
    pipedrive.add_pipeline(1001, id=1, name="Sales pipeline")
    pipedrive.add_pipeline(1001, id=2, name="Partners")
    pipedrive.add_stage(1001, id=1, name="Qualified", pipeline_id=1)
    pipedrive.add_stage(1001, id=3, name="Proposal made", pipeline_id=1)
    pipedrive.add_stage(1001, id=8, name="Qualified", pipeline_id=2)
    pipedrive.add_person(1001, id=7, name="Mari Maasikas")
    pipedrive.add_person(1001, id=9, name="Jaan Tamm")
    pipedrive.add_organization(1001, id=3, name="Northwind")
    pipedrive.add_organization(1001, id=4, name="Contoso")
    return installation.company, webhook_state_get_or_create(company=installation.company)


def _change(previous: dict, data: dict, **meta: object) -> dict:
    payload = load_event("deal.change", **meta)
    payload["previous"] = previous
    payload["data"].update(data)
    return payload


def _lines(company: Company) -> dict[str, HistoryEntry]:
    return {e.field_key: e for e in record_history(company_id=company.pk, entity="deal", entity_id=42)}


def test_stage_change_shows_stage_names(world, post_event, pipedrive) -> None:
    company, state = world
    post_event(state, _change({"stage_id": 3}, {"stage_id": 1}))

    line = _lines(company)["stage_id"]
    assert (line.field_label, line.old_display, line.new_display) == ("Stage", "Proposal made", "Qualified")
    # Once per company: the next event naming the same stages asks Pipedrive nothing.
    asked = len(pipedrive.requests_to("/api/v2/stages/1")) + len(pipedrive.requests_to("/api/v2/stages/3"))
    post_event(state, _change({"stage_id": 1}, {"stage_id": 3}, id="back-again", timestamp="2025-03-02T11:00:00Z"))
    assert len(pipedrive.requests_to("/api/v2/stages/1")) + len(pipedrive.requests_to("/api/v2/stages/3")) == asked


def test_a_move_to_another_pipeline_names_both_pipelines(world, post_event) -> None:
    company, state = world
    post_event(state, _change({"stage_id": 3, "pipeline_id": 1}, {"stage_id": 8, "pipeline_id": 2}))

    lines = _lines(company)
    assert (lines["stage_id"].old_display, lines["stage_id"].new_display) == (
        "Proposal made (Sales pipeline)",
        "Qualified (Partners)",
    )
    assert (lines["pipeline_id"].old_display, lines["pipeline_id"].new_display) == ("Sales pipeline", "Partners")


def test_owner_person_and_organization_show_names(world, post_event, pipedrive) -> None:
    company, state = world
    post_event(
        state,
        _change(
            {"owner_id": 501, "person_id": 7, "org_id": 3},
            {"owner_id": 777, "person_id": 9, "org_id": 4},
            user_id="777",
        ),
    )

    lines = _lines(company)
    # 501 installed the app (name known); 777 did not: read with users:read.
    assert (lines["owner_id"].old_display, lines["owner_id"].new_display) == ("Ann Admin", "Nora Notinstalled")
    assert (lines["person_id"].old_display, lines["person_id"].new_display) == ("Mari Maasikas", "Jaan Tamm")
    assert (lines["org_id"].old_display, lines["org_id"].new_display) == ("Northwind", "Contoso")
    # The actor is named too, not "User 777".
    assert lines["owner_id"].actor_name == "Nora Notinstalled"
    assert pipedrive.requests_to("/api/v1/users/501") == []


def test_without_users_read_owner_falls_back_without_asking(pipedrive, install_user, post_event) -> None:
    # An app registered without users:read (the sandbox's default app scopes include it).
    installation = install_user(1001, 501, name="Ann Admin", scopes="base,deals:full,contacts:full,admin")
    state = webhook_state_get_or_create(company=installation.company)
    post_event(state, _change({"owner_id": 501}, {"owner_id": 777}))

    line = _lines(installation.company)["owner_id"]
    assert (line.old_display, line.new_display) == ("Ann Admin", "User #777")
    assert pipedrive.requests_to("/api/v1/users/777") == []


@pytest.mark.parametrize("status", [404, 403, 500, 503, 429])
def test_a_failed_lookup_falls_back_and_never_fails_the_event(world, post_event, pipedrive, status) -> None:
    company, state = world
    pipedrive.fail_next("/api/v2/stages/3", status=status, times=10)

    assert post_event(state, _change({"stage_id": 3}, {"stage_id": 1})).status_code == 200

    event = InboxEvent.objects.get()
    assert (event.status, event.attempts) == ("processed", 1)
    line = _lines(company)["stage_id"]
    assert line.old_display == "Stage #3"
    # Looked up before stage 3 (references are fetched in id order), so named whatever stage 3 did;
    # only the lookups after an outage fall back without asking.
    assert line.new_display == "Qualified"
    assert not line.old_display.isdigit()


def test_a_deleted_stage_is_remembered_as_missing(world, post_event, pipedrive) -> None:
    company, state = world
    post_event(state, _change({"stage_id": 99}, {"stage_id": 1}))
    post_event(state, _change({"stage_id": 99}, {"stage_id": 3}, id="second", timestamp="2025-03-02T11:00:00Z"))

    assert [e.old_display for e in record_history(company_id=company.pk, entity="deal", entity_id=42)] == [
        "Stage #99",
        "Stage #99",
    ]
    assert len(pipedrive.requests_to("/api/v2/stages/99")) == 1


def test_without_any_active_installation_names_fall_back(webhook_company, post_event) -> None:
    company, state = webhook_company
    post_event(state, _change({"stage_id": 3, "org_id": 3}, {"stage_id": 1, "org_id": None}))

    lines = _lines(company)
    assert (lines["stage_id"].old_display, lines["stage_id"].new_display) == ("Stage #3", "Stage #1")
    assert (lines["org_id"].old_display, lines["org_id"].new_display) == ("Organization #3", "")
    assert InboxEvent.objects.get().status == "processed"


def test_a_merge_names_the_surviving_record(world, post_event, pipedrive) -> None:
    company, state = world
    pipedrive.add_deal(1001, id=42, title="Big deal")
    gone = load_event("deal.delete", entity_id="43", id="merge-delete", merged_to_id="42")
    gone["previous"]["id"] = 43
    post_event(state, gone)

    removed = record_history(company_id=company.pk, entity="deal", entity_id=43)
    assert [(e.kind, e.new_display) for e in removed] == [("merged", "Merged into Big deal")]


def test_even_a_broken_name_lookup_never_fails_the_event(world, post_event, monkeypatch) -> None:
    from pipedrive_app.history import handlers

    def broken(**kwargs):
        raise RuntimeError("cache down")

    monkeypatch.setattr(handlers, "record_names_resolve", broken)
    company, state = world
    post_event(state, _change({"stage_id": 3}, {"stage_id": 1}))

    assert InboxEvent.objects.get().status == "processed"
    line = _lines(company)["stage_id"]
    assert (line.old_display, line.new_display) == ("Stage #3", "Stage #1")


def test_a_reference_that_only_looks_like_an_id_is_none() -> None:
    from pipedrive_app.history.references import reference_id

    assert reference_id("²") is None and reference_id("9" * 5000) is None and reference_id(" 42 ") == 42
