"""Refresh is single-flight across threads and processes (PostgreSQL row lock)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from pipedrive_app.installations.models import Installation

ROOT = Path(__file__).resolve().parents[2]
PROCESSES, THREADS = 4, 10


@pytest.mark.django_db(transaction=True)
def test_one_expired_installation_used_by_4_processes_x_10_threads_refreshes_once(
    postgres_only, pipedrive, install_user, subprocess_env
) -> None:
    installation = install_user()
    old_token = installation.access_token
    Installation.objects.filter(pk=installation.pk).update(
        access_token_expires_at=timezone.now() - timedelta(minutes=1)
    )
    pipedrive.expire_access_token(old_token)  # Pipedrive agrees it is dead
    pipedrive.refresh_delay = 0.3  # a slow token endpoint widens the race window
    start_at = time.time() + 8  # after every child has imported Django

    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.installations.refresh_stampede",
                str(installation.pk),
                str(THREADS),
                str(start_at),
            ],
            cwd=ROOT,
            env=subprocess_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    outputs = [child.communicate(timeout=180) for child in children]

    reports = []
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err[-2000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    errors = [e for r in reports for e in r["errors"]]
    assert errors == []
    assert sum(r["ok"] for r in reports) == PROCESSES * THREADS
    assert pipedrive.refresh_count == 1
    assert pipedrive.grants.count("refresh_token") == 1
    installation.refresh_from_db()
    assert installation.access_token != old_token
