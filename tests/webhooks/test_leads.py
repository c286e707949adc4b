"""Leads end to end: a UUID ``entity_id`` is accepted, stored, and recorded in the lead's history."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from pipedrive_app.history.models import ChangeRecord
from pipedrive_app.history.selectors import record_history
from pipedrive_app.installations.models import CompanySettings
from pipedrive_app.webhooks.models import InboxEvent
from pipedrive_app.webhooks.selectors import desired_subscriptions
from tests.webhooks.docs_examples import doc_payload

pytestmark = pytest.mark.django_db

LEAD = "b1810230-6c0d-11ed-9826-a53d0eb706a5"  # the migration guide's lead


def test_documented_lead_deliveries_are_acknowledged_and_become_the_leads_history(docs_company, post_event) -> None:
    company, state = docs_company
    for action in ("create", "change", "delete"):
        response = post_event(state, doc_payload(f"webhooks/v2/lead.{action}.json"))
        assert response.status_code == 200, response.content
    rows = list(InboxEvent.objects.order_by("pk"))
    assert [(r.entity, r.entity_id, r.status) for r in rows] == [("lead", LEAD, "processed")] * 3

    history = record_history(company_id=company.pk, entity="lead", entity_id=LEAD)
    by_kind = {(e.kind, e.field_key): e for e in history}
    assert by_kind[("created", "")].new_display == "Lead Org lead"
    assert by_kind[("deleted", "")].old_display == "Lead Org lead"
    archived, value = by_kind[("changed", "is_archived")], by_kind[("changed", "value")]
    assert (archived.field_label, archived.old_display, archived.new_display) == ("Archived", "Yes", "No")
    assert (value.field_label, value.old_display, value.new_display) == ("Value", "300 EUR", "500 EUR")
    assert ("changed", "update_time") not in by_kind and ("changed", "next_activity_id") not in by_kind
    assert {e.actor_name for e in history} == {"Sample person"}


def test_a_lead_id_in_upper_case_is_the_same_lead(docs_company, post_event) -> None:
    company, state = docs_company
    payload = doc_payload("webhooks/v2/lead.create.json", entity_id=LEAD.upper())
    assert post_event(state, payload).status_code == 200
    assert ChangeRecord.objects.get().entity_id == LEAD


def test_lead_is_a_trackable_entity_subscribed_as_v2(docs_company) -> None:
    company, state = docs_company
    assert "lead" in CompanySettings.TRACKABLE_ENTITIES
    lead = desired_subscriptions(company=company, state=state)["lead"]
    assert (lead.event_object, lead.event_action, lead.version) == ("lead", "*", "2.0")


def test_untracked_leads_are_skipped_with_a_reason(docs_company, post_event) -> None:
    company, state = docs_company
    CompanySettings.objects.filter(company=company).update(tracked_entities=["deal"])
    assert post_event(state, doc_payload("webhooks/v2/lead.create.json")).status_code == 200
    row = InboxEvent.objects.get()
    assert row.status == "skipped" and row.reason == "lead is not among the entities this company tracks"


def test_record_ids_are_text_columns_after_the_migrations() -> None:
    call_command("migrate", "history", verbosity=0)
    with connection.cursor() as cursor:
        for table in ("history_changerecord", "history_fieldvaluestate", "webhooks_inboxevent"):
            columns = {c.name: c for c in connection.introspection.get_table_description(cursor, table)}
            column = columns["entity_id"]
            assert connection.introspection.get_field_type(column.type_code, column) == "CharField", table


def test_choosing_leads_in_the_settings_subscribes_a_v2_lead_webhook(
    pipedrive, docs_company, django_capture_on_commit_callbacks
) -> None:
    from pipedrive_app.installations.models import Installation
    from pipedrive_app.installations.services import company_settings_update

    company, state = docs_company
    admin = Installation.objects.get(company=company)
    with django_capture_on_commit_callbacks(execute=True):
        company_settings_update(company=company, tracked_entities=["lead"], history_retention_days=30, updated_by=admin)
    webhooks = pipedrive.company_webhooks(company.pipedrive_company_id)
    ours = [w for w in webhooks if state.url_key in w["subscription_url"]]
    assert [(w["event_object"], w["event_action"], w["version"]) for w in ours] == [("lead", "*", "2.0")]
