"""Pipeline and stage: subscribed as v2 (the current v2 guide lists both) and their v2 bodies recorded."""

from __future__ import annotations

import pytest

from pipedrive_app.history.selectors import record_history
from pipedrive_app.webhooks.models import InboxEvent
from pipedrive_app.webhooks.selectors import V1_ONLY_OBJECTS, desired_subscriptions
from tests.webhooks.docs_examples import doc_payload

pytestmark = pytest.mark.django_db


def test_pipeline_and_stage_are_subscribed_as_v2(docs_companies) -> None:
    company, state = docs_companies[12345]
    desired = desired_subscriptions(company=company, state=state)
    assert {desired[e].version for e in ("pipeline", "stage")} == {"2.0"}
    assert "pipeline" not in V1_ONLY_OBJECTS and "stage" not in V1_ONLY_OBJECTS


def test_documented_v2_pipeline_events_become_history(docs_companies, post_event) -> None:
    company, state = docs_companies[12345]
    for action in ("create", "change", "delete"):
        assert post_event(state, doc_payload(f"webhooks/v2/pipeline.{action}.json")).status_code == 200
    assert set(InboxEvent.objects.values_list("status", flat=True)) == {"processed"}
    lines = {(e.kind, e.field_key): e for e in record_history(company_id=company.pk, entity="pipeline", entity_id=9)}
    assert lines[("created", "")].new_display == "Sample pipeline"
    assert lines[("deleted", "")].old_display == "Sample pipeline"
    probability = lines[("changed", "deal_probability")]
    assert (probability.field_label, probability.old_display, probability.new_display) == (
        "Deal probability",
        "Yes",
        "No",
    )


def test_documented_v2_stage_events_become_history(docs_companies, post_event, pipedrive) -> None:
    company, state = docs_companies[12345]
    for action in ("create", "change", "delete"):
        assert post_event(state, doc_payload(f"webhooks/v2/stage.{action}.json")).status_code == 200
    assert set(InboxEvent.objects.values_list("status", flat=True)) == {"processed"}
    lines = {(e.kind, e.field_key): e for e in record_history(company_id=company.pk, entity="stage", entity_id=48)}
    assert lines[("created", "")].new_display == "Sample Stage"
    rotting = lines[("changed", "rotten_flag")]
    assert (rotting.field_label, rotting.old_display, rotting.new_display) == ("Rotting", "No", "Yes")
    days = lines[("changed", "rotten_days")]
    assert (days.field_label, days.old_display, days.new_display) == ("Rotting after (days)", "", "1")
    assert ("changed", "update_time") not in lines
