"""5,000 concurrent deliveries through gunicorn, PostgreSQL, Redis and real Celery workers.

Each test posts 4,000 unique deal changes plus 1,000 retries of them (20%), shuffled so that
deliveries arrive out of Pipedrive's order, and checks that exactly the unique events were
processed and that the history and the current values are exactly right. Variants kill the worker
with SIGKILL mid-run, and stop the broker (a private redis-server) mid-run; the sweeper (run as the
periodic task would) recovers what they lost.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db.models import Count, Max, Sum

from bench import harness
from pipedrive_app.celery import app as celery_app
from pipedrive_app.history.models import ChangeRecord, FieldValueState
from pipedrive_app.installations.models import Company
from pipedrive_app.webhooks.models import CompanyWebhookState, InboxEvent
from pipedrive_app.webhooks.services import webhook_state_get_or_create

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

COMPANY = 1001
DEALS, CHANGES = 250, 16  # 4,000 unique events


@pytest.fixture
def world(postgres_only, broker_url, subprocess_env, pipedrive, install_user, tmp_path, settings) -> Iterator[dict]:
    """An installed company (its webhook state and the custom field at the double) and a private queue."""
    queue = f"load-{uuid.uuid4().hex[:10]}"
    previous_queue, previous_eager = celery_app.conf.task_default_queue, celery_app.conf.task_always_eager
    celery_app.conf.task_default_queue = queue  # nothing of ours may land on a shared queue
    settings.CELERY_WEBHOOKS_QUEUE = settings.CELERY_PIPEDRIVE_QUEUE = queue  # routed tasks too (core/queues.py)
    celery_app.conf.task_always_eager = True  # the install's own follow-up work runs here
    try:
        installation = install_user(COMPANY, 501, name="Ann Admin")
    finally:
        celery_app.conf.task_always_eager = previous_eager
    pipedrive.add_field(
        COMPANY,
        "deal",
        field_code=harness.CUSTOM_KEY,
        field_name="Deal size",
        field_type="enum",
        options=[{"id": 11, "label": "Small"}, {"id": 12, "label": "Large"}],
    )
    state = webhook_state_get_or_create(company=installation.company)
    env = {
        **subprocess_env,
        "CELERY_BROKER_URL": broker_url,
        **harness.private_queue_env(queue),
        "WEBHOOKS_RETRY_BACKOFF_SECONDS": "1",
        "WEBHOOKS_RETRY_BACKOFF_MAX_SECONDS": "5",
        "LOG_LEVEL": os.environ.get("LOAD_TEST_LOG_LEVEL", "WARNING"),
    }
    children: list[harness.Child] = []
    try:
        yield {"state": state, "env": env, "queue": queue, "children": children, "logs": Path(tmp_path)}
    finally:
        for child in children:
            child.stop()
        celery_app.conf.task_default_queue = previous_queue


def _processed() -> int:
    return InboxEvent.objects.filter(status=InboxEvent.Status.PROCESSED).count()


def _run(world: dict, *, fault=None, sweep_after: float = 30.0) -> None:
    state: CompanyWebhookState = world["state"]
    env = world["env"]
    server, base_url = harness.gunicorn(env, world["logs"])
    world["children"].append(server)
    world["children"].append(harness.celery_worker(env, world["queue"], world["logs"]))
    plan = harness.Plan(company_id=COMPANY, deals=DEALS, changes_per_deal=CHANGES).build()
    assert len(plan.posts) == 5000 and plan.unique == 4000

    started = time.monotonic()
    fault_thread = threading.Thread(target=fault, args=(world,), daemon=True) if fault else None
    if fault_thread:
        fault_thread.start()
    statuses = harness.post_all(
        base_url, f"/webhooks/pipedrive/{state.url_key}/", (state.http_auth_user, state.http_auth_password), plan.posts
    )
    posted = time.monotonic() - started
    assert statuses.count(200) == len(plan.posts), {s: statuses.count(s) for s in set(statuses)}
    if fault_thread:
        fault_thread.join(60)

    # The periodic sweeper, as beat would run it (every 10 s here), until everything is processed. It
    # re-queues only rows pending for ``sweep_after`` seconds, so a long queue is not flooded.
    last_sweep = [time.monotonic()]

    def settled() -> bool:
        if _processed() == plan.unique:
            return True
        if time.monotonic() - last_sweep[0] > 10:
            harness.sweep(env, older_than=sweep_after)
            last_sweep[0] = time.monotonic()
        return _processed() == plan.unique

    assert harness.wait_for(settled, 170, interval=1), (
        f"processed {_processed()} of {plan.unique}; "
        f"statuses {dict(InboxEvent.objects.values_list('status').annotate(Count('pk')))}\n"
        + "\n".join(child.tail(15) for child in world["children"])
    )
    elapsed = time.monotonic() - started

    company = Company.objects.get(pipedrive_company_id=COMPANY)
    inbox = InboxEvent.objects.filter(company=company)
    assert inbox.count() == plan.unique  # no duplicate stored, none lost
    assert inbox.aggregate(total=Sum("deliveries"))["total"] == len(plan.posts)  # every post accounted for
    assert not inbox.exclude(status=InboxEvent.Status.PROCESSED).exists()
    history = ChangeRecord.objects.filter(company=company)
    assert history.count() == plan.expected_history_rows  # each event's lines written exactly once
    per_deal = dict(history.filter(field_key="value").values_list("entity_id").annotate(Count("pk")))
    assert per_deal == {str(deal): CHANGES for deal in range(1, DEALS + 1)}  # record ids are text (lead UUIDs)
    assert set(history.filter(field_key=harness.CUSTOM_KEY).values_list("field_label", flat=True)) == {"Deal size"}
    # Arrival was shuffled; the current value is the one with the latest Pipedrive timestamp.
    current = FieldValueState.objects.filter(company=company, field_key="value")
    assert current.count() == DEALS
    assert set(current.values_list("value", flat=True)) == {CHANGES * 10}
    latest = dict(history.filter(field_key="value").values_list("entity_id").annotate(Max("occurred_at")))
    assert all(row.as_of == latest[row.entity_id] for row in current)
    print(f"\n5000 posts in {posted:.1f}s ({len(plan.posts) / posted:.0f}/s); all processed after {elapsed:.1f}s")


def test_5000_concurrent_deliveries_are_processed_exactly_once(world) -> None:
    _run(world)


def test_worker_killed_mid_run_loses_nothing(world) -> None:
    def kill_and_restart(world: dict) -> None:
        harness.wait_for(lambda: _processed() >= 800, 90)
        worker = world["children"][1]
        worker.kill()  # SIGKILL to the whole worker process group, mid-task
        time.sleep(2)
        world["children"][1] = harness.celery_worker(world["env"], world["queue"], world["logs"])

    _run(world, fault=kill_and_restart)


@pytest.fixture
def private_broker(world) -> Iterator[harness.PrivateRedis]:
    """A redis-server of this test's own: stopping it cannot disturb anyone else."""
    redis = harness.PrivateRedis(world["logs"]).start()
    world["env"]["CELERY_BROKER_URL"] = redis.url
    try:
        yield redis
    finally:
        redis.stop()


def test_broker_stopped_mid_run_loses_nothing(world, private_broker) -> None:
    def stop_and_restart(world: dict) -> None:
        harness.wait_for(lambda: InboxEvent.objects.count() >= 1200, 90)
        private_broker.stop()  # its queue is gone with it
        harness.wait_for(lambda: InboxEvent.objects.count() >= 2400, 60)
        private_broker.start()

    _run(world, fault=stop_and_restart)
    # Deliveries received while the broker was down were stored and acknowledged anyway.
    assert "not queued" in (world["logs"] / "gunicorn.log").read_text(errors="replace")
