"""The recovery fault run: steady deliveries, a worker SIGKILLed, the broker stopped for 10 s.

Used by tests/webhooks/test_recovery.py (which checks that nothing is lost or duplicated and that
everything is processed with no periodic sweep at all) and by ``make bench-recovery``
(bench/recovery.py, which also holds the times against the target).

Deliveries are posted at a steady rate (Pipedrive's traffic, not a burst), so that what is measured
after each fault is the recovery, not the time to work off a burst. For each fault, "recovered" is
the first moment at which every event received before the fault ended is processed; the figure is
that moment minus the fault's end (the new worker process started; the broker started again).
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from bench import harness

# Deliveries per second: well under what one worker processes, so that the figures measure the
# recovery, not a backlog (on a busy machine, lower it).
RATE = float(os.environ.get("RECOVERY_RATE", "10"))
# 2,000 deliveries (1,600 unique events + 400 retries of them) for the bench; the test posts fewer.
DELIVERIES = int(os.environ.get("RECOVERY_DELIVERIES", "2000"))
CHANGES = 16
KILL_AT, BROKER_STOP_AT, BROKER_DOWN_FOR = 0.25, 0.55, 10.0  # fractions of the posting time; seconds


@dataclass
class Fault:
    name: str
    ended_at: float = 0.0  # time.time() when the component was back
    first_progress: float | None = None  # seconds from the end to the first event processed after it
    recovered: float | None = None  # seconds from the end to all events received before it processed


@dataclass
class FaultRunResult:
    posts: int
    unique: int
    expected_history_rows: int
    statuses: list[int]
    latencies: list[float]
    outage_latencies: list[float]
    faults: list[Fault] = field(default_factory=list)
    settled_after: float | None = None

    def figures(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "deliveries": self.posts,
            "unique_events": self.unique,
            "rate_per_second": RATE,
            "ack_max_ms": round(1000 * max(ordered), 1),
            "ack_p99_ms": round(1000 * ordered[int(len(ordered) * 0.99) - 1], 1),
            "ack_max_during_broker_outage_ms": round(1000 * max(self.outage_latencies or [0.0]), 1),
            "faults": {
                fault.name: {
                    "first_event_processed_after_s": _round(fault.first_progress),
                    "all_received_before_end_processed_after_s": _round(fault.recovered),
                }
                for fault in self.faults
            },
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _stamp(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, tz=UTC)


class _Monitor(threading.Thread):
    """Polls the inbox four times a second and records, per fault, when it was recovered."""

    def __init__(self, company_id: int, faults: list[Fault]) -> None:
        super().__init__(daemon=True)
        self.company_id, self.faults, self.stop = company_id, faults, threading.Event()

    def run(self) -> None:
        from django.db import connection

        from pipedrive_app.webhooks.models import InboxEvent

        inbox = InboxEvent.objects.filter(company_id=self.company_id)
        baselines: dict[str, int] = {}  # processed count when each fault ended
        try:
            while not self.stop.is_set():
                now = time.time()
                processed = inbox.filter(status=InboxEvent.Status.PROCESSED).count()
                for fault in self.faults:
                    if not fault.ended_at or now < fault.ended_at:
                        continue
                    baseline = baselines.setdefault(fault.name, processed)
                    if fault.first_progress is None and processed > baseline:
                        fault.first_progress = now - fault.ended_at
                    if fault.recovered is None:
                        waiting = inbox.filter(received_at__lte=_stamp(fault.ended_at)).exclude(
                            status=InboxEvent.Status.PROCESSED
                        )
                        if not waiting.exists():
                            fault.recovered = now - fault.ended_at
                self.stop.wait(0.25)
        finally:
            connection.close()


def fault_run(
    *,
    world: dict,
    broker: harness.PrivateRedis,
    company_id: int,
    pipedrive_company_id: int,
    deliveries: int = DELIVERIES,
    settle: float = 240,
) -> FaultRunResult:
    """Run it against ``world`` (test_load's fixture: env, queue, children, logs, state)."""
    from pipedrive_app.webhooks.models import InboxEvent

    env, state = world["env"], world["state"]
    server, base_url = harness.gunicorn(env, world["logs"])
    world["children"].append(server)
    world["children"].append(harness.celery_worker(env, world["queue"], world["logs"]))
    deals = max(1, round(deliveries * 0.8 / CHANGES))
    plan = harness.Plan(company_id=pipedrive_company_id, deals=deals, changes_per_deal=CHANGES).build()
    bodies = [json.dumps(body).encode() for body in plan.posts]
    duration = len(bodies) / RATE
    kill, stop = Fault("worker SIGKILLed"), Fault(f"broker stopped {BROKER_DOWN_FOR:.0f} s")
    outage = [0.0, 0.0]

    def faults() -> None:
        time.sleep(duration * KILL_AT)
        world["children"][1].kill()  # SIGKILL to the worker's process group, mid-task
        time.sleep(2)
        world["children"][1] = harness.celery_worker(env, world["queue"], world["logs"])
        kill.ended_at = time.time()
        time.sleep(max(0.0, duration * BROKER_STOP_AT - duration * KILL_AT - 2))
        outage[0] = time.time()
        broker.stop()  # everything queued in it is lost (no persistence)
        time.sleep(BROKER_DOWN_FOR)
        broker.start()
        stop.ended_at = outage[1] = time.time()

    monitor = _Monitor(company_id, [kill, stop])
    monitor.start()
    fault_thread = threading.Thread(target=faults, daemon=True)
    statuses, latencies, sent_at = [0] * len(bodies), [0.0] * len(bodies), [0.0] * len(bodies)
    path = f"{base_url}/webhooks/pipedrive/{state.url_key}/"
    started = time.time()
    fault_thread.start()

    def post(index: int, session: requests.Session) -> None:
        delay = started + index / RATE - time.time()
        if delay > 0:
            time.sleep(delay)
        for _ in range(3):  # a connection reset is retried, as Pipedrive does
            begin = time.time()
            try:
                response = session.post(
                    path, data=bodies[index], timeout=30, headers={"Content-Type": "application/json"}
                )
            except requests.RequestException:
                time.sleep(0.2)
                continue
            statuses[index], latencies[index], sent_at[index] = response.status_code, time.time() - begin, begin
            return

    local = threading.local()

    def run(index: int) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.auth = (state.http_auth_user, state.http_auth_password)
        post(index, local.session)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(run, range(len(bodies))))
    fault_thread.join(120)

    inbox = InboxEvent.objects.filter(company_id=company_id)
    settled = harness.wait_for(
        lambda: not inbox.exclude(status=InboxEvent.Status.PROCESSED).exists() and inbox.count() == plan.unique,
        settle,
        interval=0.5,
    )
    result = FaultRunResult(
        posts=len(bodies),
        unique=plan.unique,
        expected_history_rows=plan.expected_history_rows,
        statuses=statuses,
        latencies=latencies,
        outage_latencies=[lat for lat, at in zip(latencies, sent_at, strict=True) if outage[0] <= at <= outage[1]],
        faults=[kill, stop],
        settled_after=(time.time() - started) if settled else None,
    )
    harness.wait_for(lambda: all(f.recovered is not None for f in result.faults), 5, interval=0.25)
    monitor.stop.set()
    monitor.join(10)
    return result
