"""A hanging token endpoint never holds a panel past its time budget (issue 11, must-show).

Real pieces: PostgreSQL, the app on pytest-django's live server (a threaded HTTP server), real
concurrent HTTP requests from threads, and the Pipedrive double (an HTTP server thread on loopback)
whose token endpoint hangs 20 s. Every answer must come well inside Pipedrive's 10 s, the token
endpoint must be called at most once for all of them, and once the endpoint recovers the next load
shows the deal.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.utils import timezone

from pipedrive_app.installations.models import Installation

from .conftest import ADMIN, panel_query

BUDGET = 10.0  # Pipedrive hides an iframe that has not initialized within 10 s


def _load_concurrently(url: str, count: int) -> list[tuple[float, int, str]]:
    """``count`` simultaneous GETs of ``url``; (seconds, status, body) per answer."""
    barrier = threading.Barrier(count)
    answers: list[tuple[float, int, str]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def load() -> None:
        try:
            barrier.wait(timeout=30)
            started = time.monotonic()
            response = requests.get(url, timeout=60)
            with lock:
                answers.append((time.monotonic() - started, response.status_code, response.text))
        except Exception as exc:  # reported below
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=load) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert errors == []
    return answers


def _slow_and_initialized(body: str) -> bool:
    return 'data-state="slow"' in body and "app-extensions-sdk/index.umd.js" in body and "Retry" in body


def _wait_until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.django_db(transaction=True)
def test_hanging_token_endpoint_4_then_40_panel_loads_answer_in_time_with_one_token_call(
    postgres_only, live_server, seeded_company, pipedrive, settings
) -> None:
    settings.PIPEDRIVE_HTTP_TIMEOUT = 12.0  # longer than a panel may take: the budget must bound it
    settings.PIPEDRIVE_TOKEN_FAILURE_MEMORY_SECONDS = 3.0
    seeded = seeded_company()
    viewer = seeded["installations"][ADMIN]
    old_token = viewer.access_token
    Installation.objects.filter(pk=viewer.pk).update(access_token_expires_at=timezone.now() - timedelta(minutes=1))
    pipedrive.expire_access_token(old_token)
    url = f"{live_server.url}/extensions/panels/deal/?{panel_query(record_id=seeded['deal']['id'])}"
    token_calls_before = pipedrive.grants.count("refresh_token")
    pipedrive.refresh_delay = 20.0  # the token endpoint hangs

    first = _load_concurrently(url, 4)
    then = _load_concurrently(url, 40)

    answers = first + then
    assert len(first) == 4 and len(then) == 40  # every load answered
    slowest = max(seconds for seconds, _, _ in answers)
    assert slowest < BUDGET, f"slowest panel answer took {slowest:.1f} s"
    assert all(status == 200 and _slow_and_initialized(body) for _, status, body in answers)
    during_hang = pipedrive.grants.count("refresh_token") - token_calls_before
    assert during_hang <= 1

    # The endpoint recovers: once the hanging call has ended and its failure is forgotten, the next
    # load refreshes the token and shows the deal.
    pipedrive.refresh_delay = 0.0

    def refresh_settled() -> bool:
        row = Installation.objects.get(pk=viewer.pk)
        now = timezone.now()
        return not row.refresh_lease_id and (row.refresh_blocked_until is None or row.refresh_blocked_until <= now)

    assert _wait_until(refresh_settled, timeout=40), "the background refresh never ended"
    response = requests.get(url, timeout=30)
    assert response.status_code == 200
    assert 'data-state="ready"' in response.text and "Northwind renewal" in response.text
    viewer.refresh_from_db()
    assert viewer.access_token != old_token
    print(
        f"\npanel loads with a hanging token endpoint: {len(answers)} answered, slowest {slowest:.2f} s, "
        f"token calls during the hang {during_hang}"
    )
