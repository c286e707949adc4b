"""Recovery in seconds, not at the next sweep: the fault run (tests/webhooks/fault_run.py).

Deliveries at a steady rate (1,000 here; 2,000 in ``make bench-recovery``) through gunicorn,
PostgreSQL, a private redis-server and a real Celery worker; the worker is SIGKILLed mid-run and
restarted, later the broker is stopped for 10 s (losing everything queued in it) and started again.
No sweep runs at all: the drains woken by the worker's (re)connection, by the web processes' first
working publish and by the processing tasks themselves must bring every event through. Checked:
every delivery acknowledged, no event lost, none processed twice, the history exact. The times
after each fault are printed here and held against the target by
``make bench-recovery``.
"""

from __future__ import annotations

import json
import os

import pytest
from django.db.models import Count, Sum

from pipedrive_app.history.models import ChangeRecord
from pipedrive_app.webhooks.models import InboxEvent
from tests.webhooks.fault_run import fault_run
from tests.webhooks.test_load import private_broker, world  # noqa: F401 - fixtures

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_fault_run_recovers_without_a_sweep_and_loses_nothing(world, private_broker) -> None:  # noqa: F811
    state = world["state"]
    deliveries = int(os.environ.get("RECOVERY_DELIVERIES", "1000"))
    result = fault_run(
        world=world,
        broker=private_broker,
        company_id=state.company_id,
        pipedrive_company_id=1001,
        deliveries=deliveries,
    )
    figures = result.figures()
    print("\nrecovery fault run: " + json.dumps(figures, indent=2))
    if os.environ.get("RECOVERY_FIGURES"):
        with open(os.environ["RECOVERY_FIGURES"], "w") as out:
            json.dump(figures, out, indent=2)

    assert result.statuses.count(200) == result.posts, {s: result.statuses.count(s) for s in set(result.statuses)}
    inbox = InboxEvent.objects.filter(company_id=state.company_id)
    assert result.settled_after is not None, (
        f"statuses {dict(inbox.values_list('status').annotate(Count('pk')))}\n"
        + "\n".join(child.tail(15) for child in world["children"])
    )
    assert inbox.count() == result.unique  # none lost, none stored twice
    assert inbox.aggregate(total=Sum("deliveries"))["total"] == result.posts  # every post accounted for
    assert not inbox.exclude(status=InboxEvent.Status.PROCESSED).exists()
    assert set(inbox.values_list("attempts", flat=True)) == {1}  # each processed exactly once
    history = ChangeRecord.objects.filter(company_id=state.company_id)
    assert history.count() == result.expected_history_rows  # each event's lines written exactly once
    assert all(fault.recovered is not None for fault in result.faults)
    # The outage did happen while deliveries were arriving, and they were acknowledged anyway.
    assert result.outage_latencies
    assert "not queued" in (world["logs"] / "gunicorn.log").read_text(errors="replace")
