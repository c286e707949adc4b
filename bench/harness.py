"""Processes and traffic for the load and fault tests: gunicorn, Celery workers, a private Redis."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]


def private_queue_env(queue: str) -> dict[str, str]:
    """Environment that points every Celery queue of a child process (default, webhooks, pipedrive)
    at one private queue, so a test's worker started with ``-Q queue`` gets all of its tasks."""
    return {"CELERY_TASK_DEFAULT_QUEUE": queue, "CELERY_WEBHOOKS_QUEUE": queue, "CELERY_PIPEDRIVE_QUEUE": queue}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@dataclass
class Child:
    """A subprocess in its own process group (so SIGKILL takes its children too), logging to a file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.process = subprocess.Popen(  # noqa: S603 - argv is built here, from sys.executable and fixed names
            self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def gunicorn(env: dict[str, str], log_dir: Path, *, workers: int = 2, threads: int = 8) -> tuple[Child, str]:
    port = free_port()
    child = Child(
        "gunicorn",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "pipedrive_app.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread",
            "--log-level",
            "warning",
            "--timeout",
            "60",
        ],
        env,
        log_dir / "gunicorn.log",
    ).start()
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    if not wait_for(ready, 30):
        child.stop()
        raise RuntimeError("gunicorn did not start:\n" + child.tail())
    return child, base


def worker_argv(queue: str, *, pool: str, loglevel: str, concurrency: int | None = None) -> list[str]:
    """A Celery worker of this project consuming ``queue`` only, without cluster chatter."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "pipedrive_app",
        "worker",
        f"--pool={pool}",
        *([f"--concurrency={concurrency}"] if concurrency is not None else []),
        "-Q",
        queue,
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def celery_worker(env: dict[str, str], queue: str, log_dir: Path, *, concurrency: int = 2) -> Child:
    return Child(
        "worker",
        [
            *worker_argv(queue, pool="prefork", loglevel=env.get("LOG_LEVEL", "WARNING"), concurrency=concurrency),
            "--prefetch-multiplier=1",
            f"--hostname=w{uuid.uuid4().hex[:6]}@%h",
        ],
        env,
        log_dir / "worker.log",
    ).start()


def sweep(env: dict[str, str], *, older_than: float) -> str:
    """One run of the periodic sweeper, in its own process (it publishes to the test's broker)."""
    done = subprocess.run(  # noqa: S603 - a fixed manage.py command
        [sys.executable, "manage.py", "sweep_webhook_inbox", "--older-than", str(older_than)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout.strip() or done.stderr.strip()[-300:]


@dataclass
class PrivateRedis:
    """A redis-server of the test's own on a free loopback port, without persistence."""

    log_dir: Path
    port: int = field(default_factory=free_port)
    child: Child | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.child = Child(
            "redis",
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            dict(os.environ),
            self.log_dir / "redis.log",
        ).start()

        def ready() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        if not wait_for(ready, 10, 0.05):
            raise RuntimeError("private redis-server did not start:\n" + self.child.tail())
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.child.kill()  # everything queued in it is lost, as with a crashed broker


# --- traffic --------------------------------------------------------------------------------------

CUSTOM_KEY = "8f4b27fbd5d3a6c4e1f2a9b0c7d6e5f4a3b2c1d0"


@dataclass
class Plan:
    """Unique events per deal (value 0 -> 10 -> 20 ...), plus re-sent copies, in a shuffled order."""

    company_id: int
    deals: int
    changes_per_deal: int
    duplicate_share: float = 0.2
    seed: int = 7
    posts: list[dict[str, Any]] = field(default_factory=list)
    unique: int = 0
    expected_history_rows: int = 0

    def build(self) -> Plan:
        rng = random.Random(self.seed)
        base = 1_740_000_000
        events: list[dict[str, Any]] = []
        for deal in range(1, self.deals + 1):
            for step in range(1, self.changes_per_deal + 1):
                data: dict[str, Any] = {
                    "id": deal,
                    "title": f"Deal {deal}",
                    "value": step * 10,
                    "currency": "EUR",
                    "custom_fields": {},
                }
                previous: dict[str, Any] = {"value": (step - 1) * 10}
                rows = 1
                if step % 4 == 0:  # every fourth edit also flips an enum custom field
                    data["custom_fields"][CUSTOM_KEY] = {"type": "enum", "id": 12 if step % 8 else 11}
                    previous["custom_fields"] = {CUSTOM_KEY: {"type": "enum", "id": 11 if step % 8 else 12}}
                    rows = 2
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + deal * 1000 + step)) + ".000Z"
                events.append(
                    {
                        "meta": {
                            "action": "change",
                            "entity": "deal",
                            "entity_id": str(deal),
                            "company_id": str(self.company_id),
                            "user_id": "501",
                            "id": str(uuid.UUID(int=rng.getrandbits(128))),
                            "timestamp": stamp,
                            "version": "2.0",
                            "type": "application",
                            "change_source": "app",
                            "attempt": 1,
                            "webhook_id": "1",
                            "is_bulk_edit": False,
                        },
                        "data": data,
                        "previous": previous,
                    }
                )
                self.expected_history_rows += rows
        self.unique = len(events)
        copies = []
        for _ in range(int(self.unique * self.duplicate_share / (1 - self.duplicate_share))):
            original = rng.choice(events)
            copy = json.loads(json.dumps(original))
            copy["meta"]["attempt"] = rng.randint(2, 4)  # a retry: same event id, higher attempt
            copies.append(copy)
        self.posts = events + copies
        rng.shuffle(self.posts)  # arrival order is not Pipedrive's order
        return self


def post_all(
    base_url: str,
    path: str,
    auth: tuple[str, str],
    bodies: list[dict[str, Any]],
    *,
    threads: int = 16,
    on_progress: Callable[[int], None] | None = None,
) -> list[int]:
    """POST every body concurrently; returns the status codes (0 for a connection failure)."""
    encoded = [json.dumps(body).encode() for body in bodies]
    statuses = [0] * len(encoded)
    chunks = [list(range(i, len(encoded), threads)) for i in range(threads)]
    done = [0]

    def run(indexes: list[int]) -> None:
        session = requests.Session()
        session.auth = auth
        for index in indexes:
            for _ in range(3):  # a connection reset while the server restarts is retried, as Pipedrive does
                try:
                    response = session.post(
                        f"{base_url}{path}",
                        data=encoded[index],
                        timeout=30,
                        headers={"Content-Type": "application/json"},
                    )
                    statuses[index] = response.status_code
                    break
                except requests.RequestException:
                    time.sleep(0.2)
            done[0] += 1
            if on_progress is not None:
                on_progress(done[0])
        session.close()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, chunks))
    return statuses
