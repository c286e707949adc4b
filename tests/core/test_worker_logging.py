"""A real Celery worker keeps the project's logging: secrets redacted, JSON lines, request id.

The worker is started as ``make worker`` would start it (``celery -A pipedrive_app worker``), plus
``--include`` of a test module whose tasks plant a secret in a log argument, an Authorization
header, a ``print``, a return value and an exception's traceback. Its whole output is scanned.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from bench.harness import worker_argv
from pipedrive_app.core.request_id import bind_request_id, reset_request_id
from tests.core import worker_log_tasks

ROOT = Path(__file__).resolve().parents[2]


def _worker_output(broker_url: str, pool: str, publish) -> str:
    queue = f"test-logs-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DEBUG": "on",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CELERY_WEBHOOKS_QUEUE": queue,
        "CELERY_PIPEDRIVE_QUEUE": queue,
        "PYTHONPATH": str(ROOT),
    }
    worker = subprocess.Popen(
        [*worker_argv(queue, pool=pool, loglevel="INFO", concurrency=1), "--include", "tests.core.worker_log_tasks"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(worker.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        publish(queue)
        deadline = time.monotonic() + 90
        # The failing task is published last: its traceback is the worker's last word.
        while time.monotonic() < deadline and worker.poll() is None:
            if any("raised unexpected" in line for line in lines):
                time.sleep(0.5)
                break
            time.sleep(0.2)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        reader.join(timeout=10)
    output = "".join(lines)
    return output


@pytest.mark.worker
@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_a_real_worker_redacts_planted_secrets_and_keeps_json_and_the_request_id(broker_url: str, pool: str) -> None:
    secret = "planted" + secrets.token_hex(16)
    request_id = "req-" + uuid.uuid4().hex

    def publish(queue: str) -> None:
        token = bind_request_id(request_id)  # as a web request that enqueues would
        try:
            worker_log_tasks.leak_secrets.apply_async(args=(secret,), queue=queue)
            worker_log_tasks.fail_with_secret.apply_async(args=(secret,), queue=queue)
        finally:
            reset_request_id(token)

    output = _worker_output(broker_url, pool, publish)

    assert secret not in output
    entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    by_message = {entry["message"]: entry for entry in entries}
    assert "refreshing with refresh_token=[redacted]" in by_message
    assert "calling with Authorization: Bearer [redacted]" in by_message
    assert "access_token=[redacted]" in by_message  # the print(), through the redirected stdout
    assert any(m.endswith("'refresh_token=[redacted]'") for m in by_message)  # Celery's "succeeded" line
    failure = next(e for e in entries if "raised unexpected" in e["message"])
    assert "client_secret=[redacted]" in failure["message"] and "client_secret=[redacted]" in failure["exception"]
    task_lines = [e for e in entries if e["logger"] in {"tests.worker_log_tasks", "celery.redirected"}]
    assert task_lines and all(e["request_id"] == request_id for e in task_lines)
    assert failure["request_id"] == request_id
