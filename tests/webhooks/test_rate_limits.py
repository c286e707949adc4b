"""Pipedrive's limits kept by the client across threads and processes, measured at the double, and
the daily budget's reserve pausing background work until the budget resets."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from celery.exceptions import Retry

from pipedrive_app.installations.models import Installation
from pipedrive_app.installations.services import installation_client
from pipedrive_app.pipedrive import ratelimit
from pipedrive_app.webhooks import tasks

ROOT = Path(__file__).resolve().parents[2]
COMPANY = 1001
PIPEDRIVE_LIMIT, WINDOW = 80, 2.0  # Pipedrive's smallest plan; the app keeps below it (settings: 75)


@pytest.fixture
def install(install_user, django_capture_on_commit_callbacks):
    def run(*args, **kwargs) -> Installation:
        with django_capture_on_commit_callbacks(execute=True):
            return install_user(*args, **kwargs)

    return run


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _me_times(pipedrive) -> list[float]:
    return [r.received_at for r in pipedrive.requests_to("/api/v1/users/me")]


@pytest.mark.django_db(transaction=True)
def test_threads_sharing_one_token_stay_under_the_burst_limit(pipedrive, install, settings) -> None:
    settings.PIPEDRIVE_BURST_LIMIT, settings.PIPEDRIVE_BURST_WINDOW_SECONDS = 75, WINDOW
    installation = install(COMPANY, 501)
    before = len(_me_times(pipedrive))
    threads, calls = 8, 25

    def work() -> None:
        client = installation_client(installation=installation)
        for _ in range(calls):
            client.get_current_user()
        client.close()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(60)
    times = _me_times(pipedrive)[before:]
    assert len(times) == threads * calls
    # As Pipedrive counts them (arrivals at the double): never more than the limit in any window,
    # so the 200 calls spread over three windows (0, 2 and 4 s) whatever the machine's speed.
    assert _max_in_window(times, WINDOW) <= PIPEDRIVE_LIMIT


_CHILD = """
import json, sys, threading, time
from pipedrive_app.pipedrive.client import PipedriveClient
from pipedrive_app.pipedrive.ratelimit import Limits, RedisRateStore, RequestLimiter

cfg = json.loads(sys.argv[1])
store = RedisRateStore.from_url(cfg["redis"])

class Token:
    def access_token(self):
        return cfg["token"]
    def refresh_after_unauthorized(self, stale):
        raise RuntimeError("unexpected 401")

def work():
    limiter = RequestLimiter(store, token_key=cfg["key"], company_key=cfg["key"], limits=Limits(burst_limit=75))
    client = PipedriveClient(api_domain=cfg["api"], token_source=Token(), rate_limiter=limiter)
    for _ in range(cfg["calls"]):
        client.get_current_user()

while time.time() < cfg["start_at"]:
    time.sleep(0.01)
pool = [threading.Thread(target=work) for _ in range(cfg["threads"])]
[t.start() for t in pool]
[t.join() for t in pool]
"""


@pytest.mark.django_db(transaction=True)
def test_redis_limiter_holds_across_two_processes(pipedrive, install, redis_url, subprocess_env) -> None:
    installation = install(COMPANY, 501)
    before = len(_me_times(pipedrive))
    config = {
        "redis": redis_url,
        "token": installation.access_token,
        "api": installation.company.api_domain,
        "key": f"test-{uuid.uuid4().hex}",  # a token key of this test's own
        "threads": 4,
        "calls": 30,
        "start_at": time.time() + 2.0,  # both start together, after their imports
    }
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, json.dumps(config)],
            cwd=ROOT,
            env=subprocess_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    for child in children:
        output, _ = child.communicate(timeout=90)
        assert child.returncode == 0, output[-2000:]
    times = _me_times(pipedrive)[before:]
    assert len(times) == 2 * 4 * 30
    assert _max_in_window(times, WINDOW) <= PIPEDRIVE_LIMIT
    assert max(times) - min(times) >= 2 * WINDOW  # 240 calls at 75 per 2 s: at least three windows


@pytest.mark.django_db
def test_budget_reserve_pauses_background_reconcile_until_the_budget_resets(
    pipedrive, install, settings, monkeypatch
) -> None:
    admin = install(COMPANY, 501)
    day = 20_500 * ratelimit.DAY
    now = [day + 10 * 3600.0]  # 10:00 UTC
    monkeypatch.setattr(ratelimit, "wall_clock", lambda: now[0])
    settings.PIPEDRIVE_DAILY_TOKEN_BUDGET, settings.PIPEDRIVE_DAILY_TOKEN_RESERVE = 40, 30
    settings.PIPEDRIVE_BUDGET_RECHECK_SECONDS = 30 * 60

    # Background work spends up to budget - reserve (10 tokens: one webhooks list).
    assert tasks.reconcile_company_webhooks.apply(args=(admin.company_id,)).get() == "available"
    lists = len(pipedrive.requests_to("/api/v1/webhooks", "GET"))

    # The next run does not fit: paused, nothing sent, a retry planned within the recheck interval.
    with pytest.raises(Retry) as paused:
        tasks.reconcile_company_webhooks.apply(args=(admin.company_id,))
    assert paused.value.when == 30 * 60
    assert "daily token budget spent for background calls; resets in 50400 s" in str(paused.value.exc)  # 14 h
    assert len(pipedrive.requests_to("/api/v1/webhooks", "GET")) == lists

    # A panel may still spend the reserve.
    panel = installation_client(installation=admin, interactive=True)
    assert panel.get_current_user().id == 501
    panel.close()

    # Close to midnight the retry waits only until the reset; the next day the task runs again.
    now[0] = day + ratelimit.DAY - 60
    with pytest.raises(Retry) as paused:
        tasks.reconcile_company_webhooks.apply(args=(admin.company_id,))
    assert paused.value.when == pytest.approx(60)
    now[0] = day + ratelimit.DAY + 5
    assert tasks.reconcile_company_webhooks.apply(args=(admin.company_id,)).get() == "available"
    assert len(pipedrive.requests_to("/api/v1/webhooks", "GET")) == lists + 1
