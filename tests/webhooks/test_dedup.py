"""De-duplication: every attempt of one delivery is one inbox row; distinct changes never collapse.

The migration guide's ``user`` examples carry ``meta.id`` equal to the user's id, so ``meta.id`` alone
would merge every change of one user into the first. Retries repeat the delivery with a higher
``meta.attempt`` (Guide for webhooks v2, "Retry logic").
"""

from __future__ import annotations

import pytest

from pipedrive_app.webhooks.models import InboxEvent
from tests.webhooks.docs_examples import doc_payload, webhook_examples

pytestmark = pytest.mark.django_db


def _second_change_of_the_same_user() -> dict:
    """Another change of user 12415231 a minute later: same ``meta.id`` (the user's id), its own
    correlation id, as the guide's user examples show."""
    later = doc_payload(
        "webhooks/v2/user.change.json", correlation_id="5d0e2a51-7c1b-4f0e-9a4e-2b8f3c6d7e90", timestamp=1669304602
    )
    later["previous"] = {"phone": None}
    return later


def test_two_changes_of_one_user_with_the_same_meta_id_are_both_kept(docs_company, post_event) -> None:
    _, state = docs_company
    first, second = doc_payload("webhooks/v2/user.change.json"), _second_change_of_the_same_user()
    assert first["meta"]["id"] == second["meta"]["id"] == first["meta"]["entity_id"]
    for payload in (first, second):
        response = post_event(state, payload)
        assert response.status_code == 200 and response.json()["duplicate"] is False
    assert InboxEvent.objects.filter(entity="user", entity_id="12415231").count() == 2


def test_a_retried_delivery_is_still_one_row(docs_company, post_event) -> None:
    _, state = docs_company
    first = doc_payload("webhooks/v2/user.change.json")
    for attempt in (2, 3, 4):
        retry = doc_payload("webhooks/v2/user.change.json", attempt=attempt)
        post_event(state, first if attempt == 2 else retry)
        assert post_event(state, retry).json()["duplicate"] is True
    row = InboxEvent.objects.get()
    assert row.deliveries == 6


def test_without_a_correlation_id_the_content_tells_changes_apart_and_retries_match(docs_company, post_event) -> None:
    _, state = docs_company
    first, second = doc_payload("webhooks/v2/user.change.json"), _second_change_of_the_same_user()
    for payload in (first, second):
        del payload["meta"]["correlation_id"]
    retry = doc_payload("webhooks/v2/user.change.json", attempt=2)
    del retry["meta"]["correlation_id"]
    results = [post_event(state, payload).json()["duplicate"] for payload in (first, second, retry)]
    assert results == [False, False, True]
    assert InboxEvent.objects.count() == 2


def test_no_two_documented_examples_share_a_key(docs_company, post_event) -> None:
    from pipedrive_app.webhooks.payloads import delivery_from_payload

    keys = [delivery_from_payload(example.payload()).dedup_key for example in webhook_examples()]
    assert len(keys) == len(set(keys)) == len(webhook_examples())


def test_a_merge_sends_two_events_of_one_correlation_and_both_are_kept(docs_company, post_event) -> None:
    """v2 reports a merge as a delete and a change (migration guide); they may share a correlation id."""
    _, state = docs_company
    gone = doc_payload("webhooks/v2/person.delete.json", merged_to_id="9")
    kept = doc_payload("webhooks/v2/person.change.json", entity_id="9", merged_from_id="8")
    kept["meta"]["correlation_id"] = gone["meta"]["correlation_id"]
    assert [post_event(state, p).json()["duplicate"] for p in (gone, kept)] == [False, False]
    assert InboxEvent.objects.count() == 2
