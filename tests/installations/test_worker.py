"""Token tasks run by a real Celery worker process over the real broker."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from bench.harness import private_queue_env, worker_argv
from pipedrive_app.installations import tasks
from pipedrive_app.installations.models import Installation

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def celery_worker_process(postgres_only, broker_url: str, subprocess_env: dict[str, str]) -> Iterator[str]:
    queue = f"test-{uuid.uuid4().hex[:12]}"
    # The worker's own fan-out goes to the same private queue.
    env = {**subprocess_env, "CELERY_BROKER_URL": broker_url, **private_queue_env(queue)}
    worker = subprocess.Popen(
        worker_argv(queue, pool="solo", loglevel="INFO"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield queue
    finally:
        worker.terminate()
        try:
            worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()


def _wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_refreshes_idle_refresh_tokens(pipedrive, install_user, celery_worker_process) -> None:
    idle = install_user(1001, 501)
    fresh = install_user(1001, 502)
    long_ago = timezone.now() - timedelta(days=52)
    Installation.objects.filter(pk=idle.pk).update(refresh_token_used_at=long_ago)

    tasks.refresh_idle_refresh_tokens.apply_async(queue=celery_worker_process)

    def refreshed() -> bool:
        used_at = Installation.objects.get(pk=idle.pk).refresh_token_used_at
        return used_at is not None and used_at > long_ago + timedelta(days=51)

    assert _wait_for(refreshed), "the worker did not refresh the idle installation"
    assert pipedrive.refresh_count == 1
    assert Installation.objects.get(pk=fresh.pk).last_refresh_at == fresh.last_refresh_at
