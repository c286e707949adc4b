"""Multiprocess mode: what several processes record adds up in one scrape.

First two bare processes writing into one ``PROMETHEUS_MULTIPROC_DIR``; then the real thing:
gunicorn with two workers and a Celery worker sharing the directory, deliveries posted through
gunicorn and processed by the worker, and one scrape of ``/metrics`` that counts all of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from bench import harness
from pipedrive_app.installations.models import Company
from pipedrive_app.webhooks.models import InboxEvent
from pipedrive_app.webhooks.services import webhook_state_get_or_create
from tests.webhooks.conftest import basic, load_event

from .conftest import parse, value

ROOT = Path(__file__).resolve().parents[2]

_RECORD = """
import sys
from pipedrive_app.metrics import instruments
for _ in range(int(sys.argv[1])):
    instruments.WEBHOOK_RECEIVED.inc()
    instruments.HISTORY_LAG_SECONDS.observe(0.3)
"""


def test_two_processes_add_up(tmp_path, monkeypatch) -> None:
    # DEBUG: importing the package loads the Celery app and with it the settings (development defaults).
    env = {"PATH": "/usr/bin:/bin", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT), "DEBUG": "on"}
    for count in (3, 4):
        subprocess.run([sys.executable, "-c", _RECORD, str(count)], cwd=ROOT, env=env, check=True, timeout=60)
    assert len({p.name.split("_")[1] for p in tmp_path.glob("counter_*.db")}) == 2  # two pids

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    samples = parse(generate_latest(registry).decode())
    assert value(samples, "pipedrive_app_webhook_deliveries_received_total") == 7
    assert value(samples, "pipedrive_app_webhook_history_lag_seconds_count") == 7
    assert value(samples, "pipedrive_app_webhook_history_lag_seconds_bucket", le="0.5") == 7

    # The endpoint's own registry reads the directory when the variable names it.
    from pipedrive_app.metrics.views import registry as endpoint_registry

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    served = parse(generate_latest(endpoint_registry(scrape_time=False)).decode())
    assert value(served, "pipedrive_app_webhook_deliveries_received_total") == 7


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_gunicorn_workers_and_a_celery_worker_add_up(postgres_only, broker_url, subprocess_env, tmp_path) -> None:
    company = Company.objects.create(pipedrive_company_id=4242, name="Metrics Co", api_domain="http://127.0.0.1:9")
    state = webhook_state_get_or_create(company=company)
    queue = f"metrics-{uuid.uuid4().hex[:10]}"
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = {
        **subprocess_env,
        "CELERY_BROKER_URL": broker_url,
        **harness.private_queue_env(queue),
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "METRICS_TOKEN": "multiprocess-scrape-token",
        "METRICS_SCRAPE_CACHE_SECONDS": "0",
    }
    children: list[harness.Child] = []
    try:
        server, base = harness.gunicorn(env, tmp_path, workers=2, threads=2)
        children.append(server)
        children.append(harness.celery_worker(env, queue, tmp_path, concurrency=2))
        total = 24
        for number in range(total):
            payload = load_event("deal.change", company_id="4242", id=str(uuid.uuid4()), entity_id=str(number + 1))
            payload["data"]["id"] = number + 1
            # A new connection each time, so both gunicorn workers take a share.
            response = requests.post(
                f"{base}/webhooks/pipedrive/{state.url_key}/",
                data=json.dumps(payload),
                headers={
                    "Content-Type": "application/json",
                    "Authorization": basic(state.http_auth_user, state.http_auth_password),
                    "Connection": "close",
                },
                timeout=30,
            )
            assert response.status_code == 200, response.text
        done = harness.wait_for(
            lambda: InboxEvent.objects.filter(status=InboxEvent.Status.PROCESSED).count() == total, 90, 0.3
        )
        assert done, children[-1].tail()

        def scraped() -> dict:
            response = requests.get(
                f"{base}/metrics", headers={"Authorization": "Bearer multiprocess-scrape-token"}, timeout=30
            )
            assert response.status_code == 200, response.text[:300]
            return parse(response.text)

        # The worker records the lag right after its commit; give its last observation a moment.
        harness.wait_for(lambda: value(scraped(), "pipedrive_app_webhook_history_lag_seconds_count") == total, 20, 0.3)
        samples = scraped()
        assert value(samples, "pipedrive_app_webhook_deliveries_received_total") == total
        assert value(samples, "pipedrive_app_webhook_deliveries_acknowledged_total", duplicate="false") == total
        assert value(samples, "pipedrive_app_webhook_ack_seconds_count", outcome="acknowledged") == total
        assert value(samples, "pipedrive_app_webhook_history_lag_seconds_count") == total
        assert value(samples, "pipedrive_app_webhook_events_processed_total", outcome="processed") == total
        # Every row is processed; a message whose row a drain took first may still be on its way out.
        harness.wait_for(lambda: value(scraped(), "pipedrive_app_celery_queue_length", queue=queue) == 0, 30, 0.3)
        assert value(scraped(), "pipedrive_app_celery_queue_length", queue=queue) == 0
        pids = {path.name.rsplit("_", 1)[1] for path in multiproc.glob("*.db")}
        assert len(pids) >= 3, pids  # two gunicorn workers and at least one Celery process
    finally:
        for child in children:
            child.stop()
