"""History lines from real-shaped v2 and v1 events, with labels resolved through the double."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from pipedrive_app.history.models import ChangeRecord, FieldDefinitionCache, FieldValueState
from pipedrive_app.history.selectors import HistoryEntry, record_current_values, record_history
from pipedrive_app.history.services import history_purge_expired
from pipedrive_app.installations.models import Company, CompanySettings
from pipedrive_app.webhooks.models import InboxEvent
from pipedrive_app.webhooks.services import webhook_state_get_or_create
from tests.webhooks.conftest import load_event

pytestmark = pytest.mark.django_db

STAGE_KEY = "8f4b27fbd5d3a6c4e1f2a9b0c7d6e5f4a3b2c1d0"
SOURCE_KEY = "d1c2b3a4e5f60718293a4b5c6d7e8f9012345678"
INTERESTS_KEY = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"


@pytest.fixture
def installed(pipedrive, install_user):
    """Company 1001 installed by admin 501 (Ann), with custom fields at the double."""
    installation = install_user(1001, 501, name="Ann Admin")
    pipedrive.add_field(
        1001,
        "deal",
        field_code=None,
        field_name="Deal size",
        field_type="enum",
        options=[{"id": 11, "label": "Small"}, {"id": 12, "label": "Large"}],
    )
    # add_field picks a random hash; pin the one the fixtures use.
    pipedrive._companies[1001].fields["deal"][-1]["field_code"] = STAGE_KEY
    pipedrive.add_field(
        1001,
        "person",
        field_name="Interests",
        field_type="set",
        options=[{"id": 21, "label": "Golf"}, {"id": 23, "label": "Sailing"}],
    )
    pipedrive._companies[1001].fields["person"][-1]["field_code"] = INTERESTS_KEY
    pipedrive.add_pipeline(1001, id=1, name="Sales pipeline")
    pipedrive.add_stage(1001, id=2, name="Qualified", pipeline_id=1)
    pipedrive.add_stage(1001, id=3, name="Proposal made", pipeline_id=1)
    state = webhook_state_get_or_create(company=installation.company)
    return installation.company, state


def _by_key(company: Company, entity: str = "deal", entity_id: int = 42) -> dict[str, HistoryEntry]:
    return {e.field_key: e for e in record_history(company_id=company.pk, entity=entity, entity_id=entity_id)}


def test_v2_change_records_one_line_per_field_with_people_labels(installed, post_event, pipedrive) -> None:
    company, state = installed
    assert post_event(state, load_event("deal.change")).status_code == 200

    lines = _by_key(company)
    assert set(lines) == {"stage_id", "value", "expected_close_date", STAGE_KEY}  # update_time is noise
    assert lines["stage_id"].field_label == "Stage"
    # Stage names as Pipedrive shows them, never the ids (the raw ids stay in old/new_value).
    assert (lines["stage_id"].old_display, lines["stage_id"].new_display) == ("Qualified", "Proposal made")
    assert (lines["stage_id"].old_value, lines["stage_id"].new_value) == (2, 3)
    assert lines["value"].field_label == "Value"
    assert (lines["value"].old_display, lines["value"].new_display) == ("1500 EUR", "2500 EUR")
    assert lines["expected_close_date"].field_label == "Expected close date"
    assert (lines["expected_close_date"].old_display, lines["expected_close_date"].new_display) == ("", "2025-04-30")
    custom = lines[STAGE_KEY]
    assert custom.field_label == "Deal size"
    assert (custom.old_display, custom.new_display) == ("Small", "Large")
    assert custom.kind == "changed" and custom.actor_user_id == 501 and custom.actor_name == "Ann Admin"
    assert custom.change_source == "app"
    assert custom.occurred_at.isoformat() == "2025-03-02T10:15:00.123000+00:00"
    assert len(pipedrive.requests_to("/api/v2/dealFields")) == 1
    # The cache answers the next event with the same key without asking Pipedrive again.
    post_event(state, load_event("deal.change", id="second-event", timestamp="2025-03-02T11:00:00Z"))
    assert len(pipedrive.requests_to("/api/v2/dealFields")) == 1


def test_system_follow_ups_are_folded_into_the_edit_that_caused_them(installed, post_event) -> None:
    """A deal won: Pipedrive also sets its won and close times; the history shows the status change."""
    company, state = installed
    event = load_event("deal.change", id="won-event")
    event["data"].update(status="won", won_time="2025-03-02T10:15:00Z", close_time="2025-03-02T10:15:00Z")
    event["previous"] = {
        "status": "open",
        "won_time": None,
        "close_time": None,
        "stage_change_time": "2025-03-01T09:00:00Z",
        "update_time": "2025-03-01T09:00:00Z",
    }
    assert post_event(state, event).status_code == 200
    assert set(_by_key(company)) == {"status"}


def test_a_system_field_alone_in_an_event_is_still_recorded(installed, post_event) -> None:
    company, state = installed
    event = load_event("deal.change", id="close-time-only")
    event["data"]["close_time"] = "2025-03-05T08:00:00Z"
    event["previous"] = {"close_time": None}
    assert post_event(state, event).status_code == 200
    line = _by_key(company)["close_time"]
    assert line.field_label == "Deal closed on" and line.old_display == ""


def test_unknown_custom_key_refreshes_the_cache_and_unresolvable_is_never_a_hash(
    installed, post_event, pipedrive
) -> None:
    company, state = installed
    post_event(state, load_event("deal.change"))
    new_key = "ab" * 20
    pipedrive.add_field(1001, "deal", field_name="Renewal date", field_type="date")
    pipedrive._companies[1001].fields["deal"][-1]["field_code"] = new_key
    payload = load_event("deal.change", id="evt-new-field", timestamp="2025-03-02T12:00:00Z")
    payload["previous"] = {"custom_fields": {new_key: None, "cd" * 20: "a"}}
    payload["data"]["custom_fields"] = {new_key: {"type": "date", "value": "2025-06-01"}, "cd" * 20: "b"}
    # The cache was filled a moment ago: allow a refresh now.
    from pipedrive_app.history.models import FieldCatalog

    FieldCatalog.objects.update(refreshed_at=timezone.now() - timedelta(hours=1))
    post_event(state, payload)

    lines = {
        e.field_key: e
        for e in record_history(company_id=company.pk, entity="deal", entity_id=42)
        if e.occurred_at.hour == 12
    }
    assert lines[new_key].field_label == "Renewal date" and lines[new_key].new_display == "2025-06-01"
    assert lines["cd" * 20].field_label == "Custom field"
    assert FieldDefinitionCache.objects.filter(field_key=new_key).exists()
    assert len(pipedrive.requests_to("/api/v2/dealFields")) == 2
    for entry in record_history(company_id=company.pk, entity="deal", entity_id=42):
        assert len(entry.field_label) != 40


def test_fields_are_read_across_cursor_pages(installed, post_event, pipedrive) -> None:
    company, state = installed
    for number in range(600):
        pipedrive.add_field(1001, "deal", field_code=f"extra_{number}", field_name=f"Extra {number}")
    post_event(state, load_event("deal.change"))
    assert FieldDefinitionCache.objects.filter(company=company, entity="deal").count() == 601
    assert len(pipedrive.requests_to("/api/v2/dealFields")) == 2


def test_set_fields_and_contact_points_display_as_text(installed, post_event) -> None:
    company, state = installed
    post_event(state, load_event("person.change"))
    lines = _by_key(company, "person", 7)
    assert lines[INTERESTS_KEY].field_label == "Interests"
    assert (lines[INTERESTS_KEY].old_display, lines[INTERESTS_KEY].new_display) == ("Golf", "Golf, Sailing")
    assert lines["emails"].field_label == "Email"
    assert (lines["emails"].old_display, lines["emails"].new_display) == ("mari@old.example.com", "mari@example.com")
    assert lines["emails"].change_source == "api"


def test_create_and_delete_lines(installed, post_event) -> None:
    company, state = installed
    post_event(state, load_event("deal.create"))
    post_event(state, load_event("deal.delete"))
    kinds = [
        (e.kind, e.old_display, e.new_display)
        for e in record_history(company_id=company.pk, entity="deal", entity_id=42)
    ]
    assert kinds == [("deleted", "Big deal", ""), ("created", "", "Big deal")]


def test_v1_change_and_merge(installed, post_event) -> None:
    company, state = installed
    post_event(state, load_event("deal.updated"))
    post_event(state, load_event("deal.merged"))
    lines = record_history(company_id=company.pk, entity="deal", entity_id=42)
    assert lines[0].kind == "merged" and lines[0].new_display == "Merged with #43"
    changed = {e.field_key: e for e in lines if e.kind == "changed"}
    assert set(changed) == {"stage_id", "value", "expected_close_date", STAGE_KEY}
    assert changed[STAGE_KEY].field_label == "Deal size"
    assert (changed[STAGE_KEY].old_display, changed[STAGE_KEY].new_display) == ("Small", "Large")


def test_v2_merge_is_a_delete_plus_a_change(installed, post_event) -> None:
    company, state = installed
    gone = load_event("deal.delete", entity_id="43", id="merge-delete", merged_to_id="42")
    gone["previous"]["id"] = 43
    gone["previous"]["title"] = "Big deal (copy)"
    kept = load_event("deal.change", id="merge-change", merged_from_id="43")
    post_event(state, gone)
    post_event(state, kept)
    removed = record_history(company_id=company.pk, entity="deal", entity_id=43)
    assert [(e.kind, e.old_display, e.new_display) for e in removed] == [
        ("merged", "Big deal (copy)", "Merged into #42")
    ]
    survivor = record_history(company_id=company.pk, entity="deal", entity_id=42)
    assert any(e.kind == "merged" and e.new_display == "Merged with #43" for e in survivor)


def test_v1_pipeline_objects_are_recorded(installed, post_event) -> None:
    company, state = installed
    CompanySettings.objects.update_or_create(company=company, defaults={"tracked_entities": ["deal", "stage"]})
    post_event(state, load_event("stage.updated"))
    lines = {e.field_key: e for e in record_history(company_id=company.pk, entity="stage", entity_id=3)}
    assert lines["name"].field_label == "Name" and lines["name"].new_display == "Proposal made"
    assert lines["deal_probability"].field_label == "Deal probability"


def _value_change(event_id: str, minute: int, old: int, new: int) -> dict:
    payload = load_event("deal.change", id=event_id, timestamp=f"2025-03-02T10:{minute:02d}:00Z")
    payload["previous"] = {"value": old}
    payload["data"]["value"] = new
    return payload


def test_out_of_order_deliveries_keep_the_history_and_current_value_right(installed, post_event) -> None:
    company, state = installed
    # Pipedrive's order: 100 -> 200 (10:01) -> 300 (10:02) -> 400 (10:03); arrival: 3, 1, 2, 1 again.
    for payload in (
        _value_change("e3", 3, 300, 400),
        _value_change("e1", 1, 100, 200),
        _value_change("e2", 2, 200, 300),
        _value_change("e1", 1, 100, 200),
    ):
        assert post_event(state, payload).status_code == 200

    history = record_history(company_id=company.pk, entity="deal", entity_id=42)
    assert [(e.old_display, e.new_display) for e in history] == [
        ("300 EUR", "400 EUR"),
        ("200 EUR", "300 EUR"),
        ("100 EUR", "200 EUR"),
    ]
    current = record_current_values(company_id=company.pk, entity="deal", entity_id=42)
    assert current["value"].value == 400 and current["value"].display == "400 EUR"
    assert current["value"].as_of.minute == 3


def test_retention_purges_old_history_per_company(installed, post_event) -> None:
    company, state = installed
    post_event(state, load_event("deal.change"))
    CompanySettings.objects.filter(company=company).update(history_retention_days=30)
    count = ChangeRecord.objects.count()
    assert history_purge_expired(now=timezone.now() - timedelta(days=3650)) == 0
    assert history_purge_expired() == count
    assert ChangeRecord.objects.count() == 0


def test_company_deletion_cascades_to_history_and_inbox(installed, post_event) -> None:
    company, state = installed
    post_event(state, load_event("deal.change"))
    assert ChangeRecord.objects.exists() and InboxEvent.objects.exists() and FieldValueState.objects.exists()
    company.delete()
    assert not ChangeRecord.objects.exists()
    assert not InboxEvent.objects.exists()
    assert not FieldValueState.objects.exists()
    assert not FieldDefinitionCache.objects.exists()
