"""The inbox as the queue: leases, drains, and the wake-ups that start them (webhooks/services/inbox.py)."""

from __future__ import annotations

import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import OperationalError, connection
from django.test import override_settings
from django.utils import timezone

from pipedrive_app.history.models import ChangeRecord
from pipedrive_app.webhooks import services, tasks
from pipedrive_app.webhooks.models import InboxEvent
from pipedrive_app.webhooks.payloads import delivery_from_payload
from pipedrive_app.webhooks.worker import InboxWakeUpOnConnect
from tests.webhooks.conftest import load_event
from tests.webhooks.test_processing import flaky  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def lost(monkeypatch):
    """Store deliveries as if the broker had lost every message."""
    monkeypatch.setattr(services.inbox, "inbox_event_enqueue", lambda **kwargs: False)

    def store(state, count: int) -> list[int]:
        ids = []
        for n in range(count):
            payload = load_event("deal.change", id=f"lost-{n}")
            payload["data"]["id"] = payload["meta"]["entity_id"] = 100 + n
            result = services.inbox_event_receive(
                state=state, delivery=delivery_from_payload(payload), body=__import__("json").dumps(payload)
            )
            assert result.inbox_event_id is not None
            ids.append(result.inbox_event_id)
        return ids

    return store


@pytest.fixture
def wake_ups(monkeypatch) -> list[dict]:
    published: list[dict] = []
    monkeypatch.setattr(tasks.drain_inbox, "apply_async", lambda *args, **kwargs: published.append(kwargs))
    return published


def test_a_drained_event_is_counted_once_in_the_processing_metric(webhook_company, lost) -> None:
    """The drain's events go through inbox_event_process, whose wrapper counts the outcome; the drain
    itself adds nothing (it used to: every drained event counted twice)."""
    from pipedrive_app.metrics import instruments

    processed = instruments.EVENTS_PROCESSED.labels(outcome="processed")
    before = processed._value.get()
    _, state = webhook_company
    lost(state, 7)
    assert services.inbox_drain(batch=5).outcomes == {"processed": 7}
    assert processed._value.get() - before == 7


def test_a_drain_processes_every_pending_row_whose_message_was_lost(webhook_company, lost) -> None:
    _, state = webhook_company
    ids = lost(state, 25)
    assert InboxEvent.objects.filter(status="pending").count() == 25
    result = services.inbox_drain(batch=10)
    assert result.outcomes == {"processed": 25} and not result.more
    assert set(InboxEvent.objects.values_list("status", flat=True)) == {"processed"}
    entities = {str(entity) for entity in ChangeRecord.objects.values_list("entity_id", flat=True)}
    assert entities == {str(100 + n) for n in range(25)}
    assert ChangeRecord.objects.count() == 4 * len(ids)  # each event's lines written once
    assert services.inbox_drain().total == 0  # nothing is processed twice


def test_a_claim_leases_rows_so_another_drain_skips_them(webhook_company, lost) -> None:
    _, state = webhook_company
    lost(state, 5)
    first = services.inbox_events_claim(limit=3, lease_seconds=30)
    second = services.inbox_events_claim(limit=10, lease_seconds=30)
    assert len(first) == 3 and len(second) == 2 and not set(first) & set(second)
    assert services.inbox_events_claim(limit=10) == []  # all leased
    # A lease that ran out (its drain was killed) makes the rows due again.
    InboxEvent.objects.filter(pk__in=first).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert sorted(services.inbox_events_claim(limit=10)) == sorted(first)


def test_a_drain_stops_at_its_budget_and_says_there_is_more(webhook_company, lost) -> None:
    _, state = webhook_company
    lost(state, 12)
    result = services.inbox_drain(budget_seconds=0, batch=5)
    assert result.total == 5 and result.more  # one batch, then the budget was spent
    assert InboxEvent.objects.filter(status="pending").count() == 7


@override_settings(WEBHOOKS_PROCESSING_MAX_ATTEMPTS=3)
def test_a_transient_failure_waits_for_its_back_off_then_a_drain_retries(webhook_company, lost, flaky) -> None:  # noqa: F811
    handler = flaky(1, OperationalError("database blip"))
    _, state = webhook_company
    (pk,) = lost(state, 1)
    assert services.inbox_drain().outcomes == {"retry": 1}
    row = InboxEvent.objects.get(pk=pk)
    assert row.status == "pending" and row.attempts == 1 and row.next_attempt_at > timezone.now()
    assert services.inbox_drain().total == 0  # not due yet
    InboxEvent.objects.filter(pk=pk).update(next_attempt_at=timezone.now())
    assert services.inbox_drain().outcomes == {"processed": 1}
    assert handler.applied == [pk]


def test_drain_task_hands_over_when_out_of_budget(webhook_company, lost, wake_ups, settings) -> None:
    _, state = webhook_company
    lost(state, 4)
    settings.WEBHOOKS_DRAIN_BUDGET_SECONDS = 0
    settings.WEBHOOKS_DRAIN_BATCH = 2
    assert tasks.drain_inbox.apply().get() == {"processed": 2}
    assert len(wake_ups) == 1 and wake_ups[0].get("countdown") is None  # a fresh task goes on


def test_the_next_due_row_schedules_one_wake_up(webhook_company, lost, wake_ups) -> None:
    from pipedrive_app.celery import app

    _, state = webhook_company
    (pk,) = lost(state, 1)
    InboxEvent.objects.filter(pk=pk).update(next_attempt_at=timezone.now() + timedelta(seconds=7))
    app.conf.task_always_eager = False  # a real broker is configured (the _celery_eager fixture restores it)
    delay = services.inbox_drain_wake_when_due()
    assert delay is not None and 6 < delay < 8.5
    assert services.inbox_drain_wake_when_due() is None  # the same second: already scheduled
    assert len(wake_ups) == 1 and 6 < wake_ups[0]["countdown"] < 8.5
    # Far away: left to the periodic sweep.
    InboxEvent.objects.filter(pk=pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    assert services.inbox_drain_wake_when_due() is None


def test_the_first_publish_that_works_again_wakes_a_drain(webhook_company, post_event, monkeypatch, wake_ups) -> None:
    from pipedrive_app.celery import app

    attempts: list[int] = []
    broker = {"up": False}

    def publish(*args, **kwargs):
        attempts.append(1)
        if not broker["up"]:
            raise ConnectionRefusedError("broker down")

    clock = [1000.0]
    monkeypatch.setattr(services.inbox, "broker_clock", lambda: clock[0])
    monkeypatch.setattr(services.inbox, "_broker_down_until", 0.0)
    monkeypatch.setattr(services.inbox, "_broker_failed", False)
    monkeypatch.setattr(tasks.process_inbox_event, "apply_async", publish)
    app.conf.task_always_eager = False
    _, state = webhook_company
    assert post_event(state, load_event("deal.change", id="during")).status_code == 200
    assert wake_ups == []
    broker["up"] = True
    clock[0] += services.BROKER_BACKOFF_SECONDS + 0.1
    assert post_event(state, load_event("deal.change", id="after")).status_code == 200
    assert len(attempts) == 2 and len(wake_ups) == 1  # the drain takes the delivery stored meanwhile
    assert post_event(state, load_event("deal.change", id="later")).status_code == 200
    assert len(wake_ups) == 1  # only once per outage


def _consumer(queues: list[str], concurrency: int) -> SimpleNamespace:
    return SimpleNamespace(
        task_consumer=SimpleNamespace(queues=[SimpleNamespace(name=name) for name in queues]),
        controller=SimpleNamespace(concurrency=concurrency),
    )


def test_a_worker_of_the_webhooks_queue_wakes_a_drain_per_process_on_each_connection(wake_ups, settings) -> None:
    settings.CELERY_WEBHOOKS_QUEUE = "webhooks"
    step = InboxWakeUpOnConnect(_consumer(["webhooks"], 3))
    step.start(_consumer(["webhooks"], 3))
    assert len(wake_ups) == 3
    step.start(_consumer(["pipedrive", "celery"], 3))  # another queue's worker does nothing
    assert len(wake_ups) == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_drains_process_each_row_once(postgres_only, webhook_company, lost) -> None:
    _, state = webhook_company
    lost(state, 40)
    barrier = threading.Barrier(4)
    totals: list[dict] = []

    def work() -> None:
        try:
            barrier.wait()
            totals.append(dict(services.inbox_drain(batch=3).outcomes))
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(t.get("processed", 0) for t in totals) == 40
    assert sum(t.get("skipped", 0) for t in totals) == 0  # leases kept the drains apart
    assert ChangeRecord.objects.count() == 4 * 40


def test_a_processing_task_also_takes_the_stragglers(webhook_company, lost) -> None:
    """As a worker runs it (not eagerly): its own event, then one batch of rows due for a while."""
    _, state = webhook_company
    stragglers = lost(state, 3)
    InboxEvent.objects.filter(pk__in=stragglers).update(next_attempt_at=timezone.now() - timedelta(seconds=30))
    payload = load_event("deal.change", id="fresh")
    own = services.inbox_event_receive(
        state=state, delivery=delivery_from_payload(payload), body=__import__("json").dumps(payload)
    ).inbox_event_id
    assert own is not None
    assert tasks.process_inbox_event.run(own) == "processed"
    assert set(InboxEvent.objects.values_list("status", flat=True)) == {"processed"}


def test_a_processing_task_leaves_a_leased_row_to_its_drain(webhook_company, lost) -> None:
    _, state = webhook_company
    (pk,) = lost(state, 1)
    assert services.inbox_events_claim(limit=1) == [pk]  # a drain holds it
    assert tasks.process_inbox_event.run(pk) == "leased"
    assert InboxEvent.objects.get(pk=pk).status == "pending"
