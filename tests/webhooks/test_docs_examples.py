"""Pipedrive's documentation as the test oracle: every documented webhook example, through the real path.

Each example in tests/fixtures/pipedrive_docs/webhooks (the migration guide's v2 examples, its v1
example and the two v2 format templates) is POSTed to the receiver of the company it names, with that
company's Basic credentials; processing runs as the task does. Every one must be acknowledged (2xx),
kept as its own inbox row (no two examples collapse), and either processed into history (its entity
is tracked) or skipped / kept unprocessable with a stated reason. Every custom-field shape the guide
shows is displayed as a person reads it. Run with ``-s`` to see the tally.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from pipedrive_app.history.models import ChangeRecord
from pipedrive_app.history.selectors import record_history
from pipedrive_app.installations.models import CompanySettings
from pipedrive_app.webhooks.models import InboxEvent
from tests.webhooks.docs_examples import DOCS_COMPANY, custom_field_examples, doc_payload, webhook_examples

pytestmark = pytest.mark.django_db

# What the app does with each documented example that it does not record, and why (the reason must
# contain the text given). Everything else must be processed into history.
NOT_RECORDED = {
    "webhooks/v2/user.create": ("skipped", "not a trackable entity"),
    "webhooks/v2/user.change": ("skipped", "not a trackable entity"),
    "webhooks/v2/user.change.2": ("skipped", "not a trackable entity"),
    # Printed with "xxx" placeholders for ids and prose in place of objects (see the fixture's note).
    "webhooks/v1/deal.added": ("unprocessable", "current must be an object"),
    "webhooks/format/v2.guide-for-webhooks-v2": ("unprocessable", "data must be an object"),
    "webhooks/format/v2.migration-guide": ("unprocessable", "data must be an object"),
}


def _company_of(payload: Any, companies: dict[int, Any]) -> Any:
    meta = payload.get("meta") if isinstance(payload, dict) else None
    named = str((meta or {}).get("company_id", ""))
    return companies[int(named)] if named.isdigit() and int(named) in companies else companies[DOCS_COMPANY]


def test_every_documented_webhook_example_is_acknowledged_and_processed_or_skipped_with_a_reason(
    docs_companies, post_event
) -> None:
    examples = webhook_examples()
    sources = {example.source_url for example in examples}
    for example in examples:
        _, state = _company_of(example.body, docs_companies)
        response = post_event(state, example.payload())
        assert response.status_code == 200, (example.name, response.content)
        assert response.json()["duplicate"] is False, f"{example.name} collapsed into an earlier example"

    rows = list(InboxEvent.objects.order_by("pk"))
    assert len(rows) == len(examples), "two documented examples became one inbox event"
    outcomes: dict[str, list[str]] = {}
    for example, row in zip(examples, rows, strict=True):
        expected_status, reason_part = NOT_RECORDED.get(example.name, ("processed", ""))
        assert row.status == expected_status, (example.name, row.status, row.reason, row.last_error)
        if expected_status == "processed":
            history = record_history(company_id=row.company_id, entity=row.entity, entity_id=row.entity_id or "")
            assert history, f"{example.name}: processed but no history line"
            assert all("{" not in (e.old_display + e.new_display) for e in history), example.name
        else:
            assert reason_part in row.reason, (example.name, row.reason)
        outcomes.setdefault(row.status, []).append(f"{example.name}: {row.reason}" if row.reason else example.name)

    processed, skipped = len(outcomes.get("processed", [])), len(rows) - len(outcomes.get("processed", []))
    print(
        f"\n{len(examples)} documented webhook examples (from {len(sources)} pages: {', '.join(sorted(sources))}): "
        f"{processed} processed into history, {skipped} skipped with reasons"
    )
    for status in ("skipped", "unprocessable"):
        for line in outcomes.get(status, []):
            print(f"  {status}: {line}")
    assert (len(examples), processed, skipped) == (33, 27, 6)
    entities = {row.entity for row in rows if row.status == "processed"}
    assert {"lead", "deal", "person", "organization", "activity", "note", "product", "pipeline", "stage"} <= entities


def test_with_the_default_tracked_entities_the_others_are_skipped_with_a_reason(docs_companies, post_event) -> None:
    CompanySettings.objects.update(tracked_entities=list(CompanySettings.DEFAULT_TRACKED_ENTITIES))
    for example in webhook_examples():
        _, state = _company_of(example.body, docs_companies)
        assert post_event(state, example.payload()).status_code == 200
    readable = InboxEvent.objects.exclude(status="unprocessable")  # the templates and the v1 example
    statuses = dict(readable.values_list("entity", "status").distinct())
    assert statuses["deal"] == statuses["person"] == "processed"
    for entity in ("lead", "organization", "activity", "note", "product", "pipeline", "stage"):
        assert statuses[entity] == "skipped"
    reasons = set(InboxEvent.objects.filter(entity="lead").values_list("reason", flat=True))
    assert reasons == {"lead is not among the entities this company tracks"}


# --- custom fields ---------------------------------------------------------------------------------

# The definitions a company would have for these fields (labels chosen here; the value shapes are
# the guide's). Options 13, 14 and 17 are the ids the guide's set and enum examples use.
FIELD_SETUP = {
    "enum": {"options": [{"id": 17, "label": "Hot lead"}]},
    "set": {"options": [{"id": 13, "label": "Golf"}, {"id": 14, "label": "Sailing"}]},
}
# How each documented shape must read in history.
EXPECTED_DISPLAY = {
    "address": "Mustamäe tee 3a, Tallinn, Estonia",
    "date": "2023-06-27",
    "daterange": "2023-06-06 \u2013 2023-06-14",
    "double": "123",
    "enum": "Hot lead",
    "monetary": "200 EUR",
    "org": "Sample Org",
    "people": "Fragment Person",
    "phone": "1234-5678",
    "set": "Golf, Sailing",
    "text": "This is a custom text field with details about a particular Pipedrive entity.",
    "time": "00:45",
    "timerange": "00:00 \u2013 01:15",
    "user": "Custom User",
    "varchar": "This is a custom text field.",
    "varchar_auto": "Hello there",
}


def _field_key(shape: str) -> str:
    return hashlib.sha1(shape.encode()).hexdigest()  # a 40-hex key, as Pipedrive's


def test_every_documented_custom_field_shape_is_expected() -> None:
    assert sorted(EXPECTED_DISPLAY) == sorted(example.path.stem for example in custom_field_examples())


@pytest.mark.parametrize("shape", sorted(EXPECTED_DISPLAY))
def test_each_documented_custom_field_shape_reads_as_a_person_would(
    docs_companies, post_event, pipedrive, shape
) -> None:
    company, state = docs_companies[DOCS_COMPANY]
    fragment = next(e for e in custom_field_examples() if e.path.stem == shape).body["custom_field_hash"]
    key = _field_key(shape)
    pipedrive.add_field(
        DOCS_COMPANY, "deal", field_name=f"My {shape} field", field_type=shape, **FIELD_SETUP.get(shape, {})
    )
    pipedrive._companies[DOCS_COMPANY].fields["deal"][-1]["field_code"] = key
    pipedrive.add_organization(DOCS_COMPANY, id=1, name="Sample Org")
    pipedrive.add_person(DOCS_COMPANY, id=17818, name="Fragment Person")
    pipedrive.add_user(DOCS_COMPANY, 13075973, name="Custom User")

    # The guide's "Update deal" example, with this shape set on a field that was empty.
    payload = doc_payload("webhooks/v2/deal.change.json")
    payload["data"]["custom_fields"] = {key: fragment}
    payload["previous"] = {"custom_fields": {key: None}}
    assert post_event(state, payload).status_code == 200
    assert InboxEvent.objects.get().status == "processed"

    line = ChangeRecord.objects.get(field_key=key)
    assert line.field_label == f"My {shape} field"
    assert (line.old_display, line.new_display) == ("", EXPECTED_DISPLAY[shape])
    # And back: the old value is displayed the same way.
    removal = doc_payload("webhooks/v2/deal.change.json", id="removal", correlation_id="removal")
    removal["data"]["custom_fields"] = {key: None}
    removal["previous"] = {"custom_fields": {key: fragment}}
    assert post_event(state, removal).status_code == 200
    assert ChangeRecord.objects.filter(field_key=key).latest("pk").old_display == EXPECTED_DISPLAY[shape]
