"""The Procfile's and compose.yaml's commands, started here as they are written (without Docker).

Each process runs against this test's PostgreSQL database and a private redis-server (so the
workers' production queue names, ``webhooks``/``pipedrive``/``celery``, cannot meet anyone else's
tasks), is checked for doing its job, and is then stopped with SIGTERM and must exit cleanly.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from bench import harness

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Procfile process name -> compose service name, where they differ.
COMPOSE_NAME = {"release": "migrate"}


def procfile() -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def compose_commands() -> dict[str, str]:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    return {name: spec["command"] for name, spec in services.items() if "command" in spec and "build" in spec}


def test_procfile_and_compose_run_the_same_commands() -> None:
    processes = procfile()
    assert {"release", "web", "worker-webhooks", "worker-pipedrive", "beat"} == set(processes)
    compose = compose_commands()
    assert {COMPOSE_NAME.get(name, name): command for name, command in processes.items()} == compose
    # Each queue has a consumer; the default queue is served by the Pipedrive worker.
    assert "-Q webhooks" in processes["worker-webhooks"]
    assert "-Q pipedrive,celery" in processes["worker-pipedrive"]


def argv(command: str) -> list[str]:
    """The command with its program taken from this virtualenv (as the container's PATH would)."""
    words = shlex.split(command)
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    return [str(BIN / words[0]), *words[1:]]


@pytest.fixture
def deploy_env(postgres_only, broker_url, subprocess_env, tmp_path) -> Iterator[dict[str, str]]:
    redis = harness.PrivateRedis(Path(tmp_path)).start()
    env = {
        **subprocess_env,
        "CELERY_BROKER_URL": redis.url,
        "CACHE_URL": redis.url.rsplit("/", 1)[0] + "/1",
        "LOG_LEVEL": "INFO",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "2",
    }
    for name in ("CELERY_TASK_DEFAULT_QUEUE", "CELERY_WEBHOOKS_QUEUE", "CELERY_PIPEDRIVE_QUEUE"):
        env.pop(name, None)  # the production queue names, in the private broker
    try:
        yield env
    finally:
        redis.stop()


class Process:
    def __init__(self, command: str, env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.popen = subprocess.Popen(argv(command), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 60) -> bool:
        return harness.wait_for(lambda: needle in self.text() or self.popen.poll() is not None, timeout) and (
            needle in self.text()
        )

    def stop(self) -> int:
        """SIGTERM (what Docker and Heroku send) and the exit code; killed if it does not stop in 30 s."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
                return -9
        return int(self.popen.returncode)


def _celery(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "celery"), "-A", "pipedrive_app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_release_migrates_and_exits_0(deploy_env, tmp_path) -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder

    latest = ("dashboard", "0003_encrypt_mfa_seeds")  # a data migration: cheap to take back
    call_command("migrate", latest[0], "0002_inbox_hourly_count", verbosity=0)
    assert latest not in MigrationRecorder(connection).applied_migrations()

    process = Process(procfile()["release"], deploy_env, tmp_path / "release.log")

    assert process.popen.wait(120) == 0, process.text()[-2000:]
    assert f"Applying {latest[0]}.{latest[1]}... OK" in process.text()
    assert latest in MigrationRecorder(connection).applied_migrations()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_web_serves_health_and_readiness(deploy_env, tmp_path) -> None:
    port = harness.free_port()
    env = {**deploy_env, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    process = Process(procfile()["web"], env, tmp_path / "web.log")
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return requests.get(f"{base}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return process.popen.poll() is not None

        assert harness.wait_for(up, 30), process.text()[-2000:]
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200, process.text()[-2000:]
        ready = requests.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["broker"] == "ok"
    finally:
        assert process.stop() == 0, process.text()[-2000:]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("name", "tasks"),
    [
        # Published as the app publishes them (through the router): each must reach this worker.
        ("worker-webhooks", ["pipedrive_app.webhooks.tasks.sweep_inbox"]),
        (
            "worker-pipedrive",
            [
                "pipedrive_app.installations.tasks.refresh_idle_refresh_tokens",  # pipedrive queue
                "pipedrive_app.installations.tasks.purge_expired_oauth_states",  # default queue
            ],
        ),
    ],
)
def test_worker_answers_ping_and_runs_its_queues_tasks(deploy_env, tmp_path, name, tasks) -> None:
    process = Process(procfile()[name], deploy_env, tmp_path / f"{name}.log")
    try:
        assert process.wait_for_log("ready.", 60), process.text()[-3000:]
        ping = _celery(deploy_env, "inspect", "ping", "--timeout", "10")
        assert ping.returncode == 0 and "pong" in ping.stdout, ping.stdout + ping.stderr
        for task in tasks:
            sent = _celery(deploy_env, "call", task)
            assert sent.returncode == 0, sent.stderr
            task_id = sent.stdout.strip()
            assert process.wait_for_log(f"{task}[{task_id}] succeeded", 60), process.text()[-3000:]
    finally:
        assert process.stop() == 0, process.text()[-3000:]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_beat_starts_with_the_database_scheduler(deploy_env, tmp_path) -> None:
    process = Process(procfile()["beat"], {**deploy_env, "HOME": str(tmp_path)}, tmp_path / "beat.log")
    try:
        assert process.wait_for_log("beat: Starting...", 60), process.text()[-3000:]
        text = process.text()
        assert "django_celery_beat.schedulers.DatabaseScheduler" in text, text[-3000:]
        # The database scheduler is running: it synced the settings' schedule into its tables.
        assert process.wait_for_log("DatabaseScheduler: Schedule changed.", 30), process.text()[-3000:]
    finally:
        assert process.stop() == 0, process.text()[-3000:]
