"""Processing stored deliveries: once per event, retries, dead letters, replay, the sweeper."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test import override_settings
from django.utils import timezone

from pipedrive_app.history.models import ChangeRecord
from pipedrive_app.webhooks import services, tasks
from pipedrive_app.webhooks.handlers import handler_register, handler_unregister
from pipedrive_app.webhooks.models import InboxEvent
from pipedrive_app.webhooks.payloads import delivery_from_payload
from tests.webhooks.conftest import load_event

pytestmark = pytest.mark.django_db


class FlakyHandler:
    """Fails ``failures`` times with ``error``, then records that it ran."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures = failures
        self.error = error
        self.applied: list[int] = []

    def prepare(self, context):
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        return None

    def apply(self, context, prepared) -> None:
        self.applied.append(context.inbox_event_id)


@pytest.fixture
def flaky():
    registered: list[FlakyHandler] = []

    def make(failures: int, error: BaseException) -> FlakyHandler:
        handler = FlakyHandler(failures, error)
        handler_register(entity="deal", action="change", handler=handler)
        registered.append(handler)
        return handler

    yield make
    for handler in registered:
        handler_unregister(entity="deal", action="change", handler=handler)


def _store(state, payload) -> int:
    """Store without processing (as if the broker had lost the message)."""
    result = services.inbox_event_receive(
        state=state, delivery=delivery_from_payload(payload), body=__import__("json").dumps(payload)
    )
    assert result.inbox_event_id is not None
    return result.inbox_event_id


def test_duplicates_and_retries_are_processed_once(webhook_company, post_event) -> None:
    company, state = webhook_company
    for attempt in (1, 2, 2, 3):
        assert post_event(state, load_event("deal.change", attempt=attempt)).status_code == 200
    row = InboxEvent.objects.get()
    assert row.status == "processed" and row.attempts == 1 and row.deliveries == 4
    lines = ChangeRecord.objects.filter(company=company)
    assert lines.count() == 4  # stage_id, value, expected_close_date, one custom field
    # Enqueueing a processed event again does nothing.
    assert services.inbox_event_process(inbox_event_id=row.pk) == "skipped"
    tasks.process_inbox_event.apply(args=(row.pk,))
    assert ChangeRecord.objects.filter(company=company).count() == 4


@override_settings(WEBHOOKS_PROCESSING_MAX_ATTEMPTS=4)
def test_transient_errors_retry_then_succeed(webhook_company, post_event, flaky) -> None:
    from pipedrive_app.pipedrive.errors import PipedriveUnavailable

    handler = flaky(2, PipedriveUnavailable("503"))
    _, state = webhook_company
    post_event(state, load_event("deal.change"))  # eager: retries run at once
    row = InboxEvent.objects.get()
    assert row.status == "processed" and row.attempts == 3
    assert handler.applied == [row.pk]


@override_settings(WEBHOOKS_PROCESSING_MAX_ATTEMPTS=3)
def test_dead_letter_after_retries_then_replay(
    webhook_company, post_event, flaky, django_capture_on_commit_callbacks
) -> None:
    handler = flaky(3, OperationalError("database is down"))
    _, state = webhook_company
    post_event(state, load_event("deal.change"))
    row = InboxEvent.objects.get()
    assert row.status == "dead" and row.attempts == 3
    assert "OperationalError: database is down" in row.last_error
    assert handler.applied == []

    # Replay (service; the command and the dashboard call it) gives it a new set of attempts.
    with django_capture_on_commit_callbacks(execute=True):
        call_command("replay_webhook_events", "--event", str(row.pk))
    row.refresh_from_db()
    assert row.status == "processed" and row.attempts == 1 and row.last_error == ""
    assert handler.applied == [row.pk]
    assert services.inbox_event_replay(inbox_event_id=row.pk) is False  # processed: never again


def test_a_bug_is_dead_at_once_and_all_dead_can_be_replayed(
    webhook_company, post_event, flaky, django_capture_on_commit_callbacks
) -> None:
    handler = flaky(2, ValueError("bug"))
    _, state = webhook_company
    post_event(state, load_event("deal.change", id="a"))
    post_event(state, load_event("deal.change", id="b"))
    assert list(InboxEvent.objects.values_list("status", "attempts")) == [("dead", 1), ("dead", 1)]
    with django_capture_on_commit_callbacks(execute=True):
        call_command("replay_webhook_events", "--all-dead", "--company", "1001")
    assert set(InboxEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert sorted(handler.applied) == sorted(InboxEvent.objects.values_list("pk", flat=True))


def test_sweeper_requeues_only_stale_pending_events(webhook_company) -> None:
    company, state = webhook_company
    stale = _store(state, load_event("deal.change", id="stale"))
    fresh = _store(state, load_event("deal.change", id="fresh", timestamp="2025-03-02T11:00:00Z"))
    InboxEvent.objects.filter(pk=stale).update(next_attempt_at=timezone.now() - timedelta(minutes=10))

    assert services.inbox_events_sweep(older_than_seconds=120) == 1
    assert InboxEvent.objects.get(pk=stale).status == "processed"
    assert InboxEvent.objects.get(pk=fresh).status == "pending"
    assert tasks.sweep_inbox.apply().get() == 0


def test_processed_inbox_rows_are_purged_after_retention(webhook_company, post_event) -> None:
    _, state = webhook_company
    post_event(state, load_event("deal.change"))
    assert services.inbox_events_purge_processed() == 0
    assert services.inbox_events_purge_processed(now=timezone.now() + timedelta(days=30)) == 1


def test_skipped_and_unprocessable_rows_are_purged_after_retention_too(webhook_company, post_event) -> None:
    _, state = webhook_company
    post_event(state, load_event("deal.change", entity="product"))  # not tracked: skipped
    post_event(state, raw=b"[]")  # unprocessable
    assert sorted(InboxEvent.objects.values_list("status", flat=True)) == ["skipped", "unprocessable"]
    assert services.inbox_events_purge_processed() == 0
    assert services.inbox_events_purge_processed(now=timezone.now() + timedelta(days=30)) == 2


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_process_one_row(postgres_only, webhook_company, monkeypatch) -> None:
    _, state = webhook_company
    monkeypatch.setattr(services.inbox, "inbox_event_enqueue", lambda **kwargs: False)  # the broker lost it
    pk = _store(state, load_event("deal.change"))
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def work() -> None:
        try:
            barrier.wait()
            outcomes.append(services.inbox_event_process(inbox_event_id=pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes.count("processed") == 1 and outcomes.count("skipped") == 3
    assert ChangeRecord.objects.count() == 4
