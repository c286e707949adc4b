"""Hostile content that reaches processing never ends as a dead event (run these on PostgreSQL).

PostgreSQL refuses NUL in ``text`` and in ``jsonb``, and lone UTF-16 surrogates cannot be encoded at
all; both are valid JSON escapes ("\\u0000", "\\ud800"). A value nested hundreds deep is valid JSON
too. The payload reader cleans such text and replaces over-deep values before anything is written.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipedrive_app.history.models import ChangeRecord, FieldValueState
from pipedrive_app.webhooks import services
from pipedrive_app.webhooks.models import InboxEvent
from pipedrive_app.webhooks.payloads import TOO_DEEP, delivery_from_payload
from tests.webhooks.docs_examples import doc_payload

pytestmark = pytest.mark.django_db


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def _store_and_process(state, payload: dict[str, Any]) -> InboxEvent:
    """Store as the receiver would (whatever its own limits) and run the processing task."""
    from pipedrive_app.webhooks.tasks import process_inbox_event

    delivery = delivery_from_payload(payload)
    result = services.inbox_event_receive(state=state, delivery=delivery, body=json.dumps(payload))
    assert result.inbox_event_id is not None
    process_inbox_event.run(result.inbox_event_id)
    return InboxEvent.objects.get(pk=result.inbox_event_id)


def test_nul_in_a_title_is_recorded_without_it(docs_company, post_event) -> None:
    company, state = docs_company
    payload = doc_payload("webhooks/v2/deal.change.json")
    payload["data"]["title"] = "Big\u0000 deal"
    payload["previous"] = {"title": "Old\u0000 deal", "custom_fields": {"0" * 40: None}}
    payload["data"]["custom_fields"] = {"0" * 40: {"type": "varchar", "value": "x\u0000y"}}
    payload["meta"]["change_source"] = "app\u0000"
    response = post_event(state, payload)  # the receiver accepts it: "\u0000" is valid JSON
    assert response.status_code == 200
    row = InboxEvent.objects.get()
    assert row.status == "processed", row.last_error
    title = ChangeRecord.objects.get(field_key="title")
    assert (title.old_display, title.new_display, title.new_value) == ("Old deal", "Big deal", "Big deal")
    assert ChangeRecord.objects.get(field_key="0" * 40).new_display == "xy"
    assert FieldValueState.objects.get(field_key="title").value == "Big deal"


def test_a_lone_surrogate_is_replaced_not_fatal(docs_company) -> None:
    _, state = docs_company
    payload = doc_payload("webhooks/v2/deal.create.json")
    payload["data"]["title"] = "half \ud800 pair"
    row = _store_and_process(state, payload)
    assert row.status == "processed", row.last_error
    assert ChangeRecord.objects.get().new_display == "half \ufffd pair"


def test_a_previous_nested_500_deep_is_recorded_with_a_marker(docs_company) -> None:
    _, state = docs_company
    payload = doc_payload("webhooks/v2/deal.change.json")
    payload["previous"] = {"title": _nested(500), "label_ids": _nested(500)}
    row = _store_and_process(state, payload)
    assert row.status == "processed", row.last_error
    lines = {line.field_key: line for line in ChangeRecord.objects.all()}
    assert lines["title"].old_display == TOO_DEEP and lines["title"].new_display == "Sample Org deal"
    assert lines["label_ids"].old_value == TOO_DEEP


def test_a_meta_nested_500_deep_and_a_data_key_with_nul_are_harmless(docs_company) -> None:
    _, state = docs_company
    payload = doc_payload("webhooks/v2/deal.change.json")
    payload["meta"]["extra"] = _nested(500)
    payload["previous"] = {"ti\u0000tle": "Old"}
    row = _store_and_process(state, payload)
    assert row.status == "processed", row.last_error
    assert ChangeRecord.objects.get().field_key == "title"


@pytest.mark.usefixtures("postgres_only")
def test_on_postgresql_the_hostile_bodies_are_all_processed(docs_company) -> None:
    """The same inputs, asserted on PostgreSQL itself (skipped on SQLite, which stores anything)."""
    _, state = docs_company
    bodies = []
    for number, hostile in enumerate(
        [{"title": "a\u0000b"}, {"title": "\ud800"}, {"title": _nested(500)}, {"x\u0000": _nested(40)}]
    ):
        payload = doc_payload("webhooks/v2/deal.change.json", id=f"hostile-{number}", correlation_id=f"c-{number}")
        payload["previous"] = hostile
        bodies.append(payload)
    statuses = [_store_and_process(state, body).status for body in bodies]
    assert statuses == ["processed"] * 4
