"""`make bench-webhooks`: the webhook receiver under gunicorn on loopback with PostgreSQL.

Prints (figures, not asserts):
  1. receiver throughput and p50/p99 acknowledgement latency, beside a bare Django view returning 200
     on the same gunicorn set-up (the ratio is the figure). With Debian's ``wrk`` installed (``make
     bench-tools``) the load comes from wrk, an external generator that does not share the Python
     client's GIL, in BENCH_PAIRS (3) alternating bare/receiver pairs: per pair and min/median/max of
     the ratio, both p99s, socket errors (connection resets) and the load average; every receiver
     request that got a 2xx must be a stored inbox row. Without wrk, a Python client (figures marked so);
  2. end-to-end lag from a delivery being posted to its history row, at a steady rate, with a real
     Celery worker: p50/p95/p99.

Needs DATABASE_URL (PostgreSQL). Uses a throwaway database next to it and a private queue; the
broker is CELERY_BROKER_URL if set, else a private redis-server on a free loopback port.
Knobs (environment): BENCH_REQUESTS (3000), BENCH_CONCURRENCY (16), BENCH_RATE (40/s),
BENCH_SECONDS (20), BENCH_GUNICORN_WORKERS (2), BENCH_GUNICORN_THREADS (8).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import harness  # noqa: E402  (process helpers, no test code)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def _event(company_id: int, deal: int, step: int) -> dict:
    return {
        "meta": {
            "action": "change",
            "entity": "deal",
            "entity_id": str(deal),
            "company_id": str(company_id),
            "user_id": "1",
            "id": str(uuid.uuid4()),
            "version": "2.0",
            "attempt": 1,
            "change_source": "app",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        },
        "data": {"id": deal, "title": f"Deal {deal}", "value": step, "currency": "EUR", "custom_fields": {}},
        "previous": {"value": step - 1},
    }


def _hammer(
    url: str, auth: tuple[str, str] | None, bodies: list[bytes], concurrency: int
) -> tuple[float, list[float], dict]:
    latencies: list[float] = []
    statuses: dict[int | str, int] = {}
    lock = threading.Lock()
    chunks = [bodies[i::concurrency] for i in range(concurrency)]

    def run(chunk: list[bytes]) -> None:
        session = requests.Session()
        session.auth = auth
        for body in chunk:
            began = time.perf_counter()
            try:
                status: int | str = session.post(
                    url, data=body, headers={"Content-Type": "application/json"}, timeout=30
                ).status_code
            except requests.ConnectionError:
                status = "reset"  # counted, not fatal: a reset is a figure this benchmark reports
            spent = time.perf_counter() - began
            with lock:
                latencies.append(spent)
                statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(run, chunks))
    return time.perf_counter() - started, latencies, statuses


# wrk's Lua: every request a new v2 deal.change (a fresh meta.id per thread and counter), so the
# receiver stores each one instead of answering duplicates.
_WRK_RECEIVER_LUA = """
-- `run` (this benchmark run's nonce) and `auth` are set above; wrk numbers the threads in setup().
local next_thread = 0
function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_number", next_thread)
end
counter = 0
request = function()
  counter = counter + 1
  local id = run .. "-" .. thread_number .. "-" .. counter
  local deal = counter % 500 + 1
  local body = '{"meta":{"action":"change","entity":"deal","entity_id":"' .. deal ..
    '","company_id":"777","user_id":"1","id":"' .. id .. '","version":"2.0","attempt":1,' ..
    '"change_source":"app","timestamp":"2026-01-01T00:00:00Z"},' ..
    '"data":{"id":' .. deal .. ',"title":"Deal","value":' .. counter ..
    ',"currency":"EUR","custom_fields":{}},"previous":{"value":' .. (counter - 1) .. '}}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = auth}, body)
end
"""


@dataclass
class WrkRun:
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx: int


def _group(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"wrk's output has no {pattern!r}:\n{text}")
    return match.group(1)


def _wrk_ms(text: str) -> float:
    number = float(text[:-2] if text.endswith("ms") else text[:-2] if text.endswith("us") else text[:-1])
    if text.endswith("us"):
        return number / 1000
    if text.endswith("ms"):
        return number
    return number * 1000  # seconds


def _wrk(url: str, *, auth: tuple[str, str] | None, seconds: int, connections: int, threads: int, logs: Path) -> WrkRun:
    script = logs / "wrk-receiver.lua"
    header = ""
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        header = f'auth = "Basic {token}"\nrun = "{uuid.uuid4().hex}"\n'
    script.write_text(
        header
        + (
            _WRK_RECEIVER_LUA
            if auth is not None
            else 'request = function() return wrk.format("POST", nil, nil, "{}") end\n'
        )
    )
    done = subprocess.run(  # noqa: S603 - wrk's absolute path, arguments built here
        [
            shutil.which("wrk") or "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = done.stdout
    requests_done = int(_group(r"(\d+) requests in", out))
    per_second = float(_group(r"Requests/sec:\s+([\d.]+)", out))
    p50 = _wrk_ms(_group(r"\s50%\s+(\S+)", out))
    p99 = _wrk_ms(_group(r"\s99%\s+(\S+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    socket_errors = sum(int(n) for n in errors.groups()) if errors else 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkRun(requests_done, per_second, p50, p99, socket_errors, int(non_2xx.group(1)) if non_2xx else 0)


def _wrk_pairs(
    base: str,
    receiver_url: str,
    auth: tuple[str, str],
    *,
    pairs: int,
    seconds: int,
    logs: Path,
    stored: Callable[[], int],
) -> None:
    """Alternating bare/receiver pairs with wrk; prints each pair and the ratio's min/median/max."""
    connections, threads = int(os.environ.get("BENCH_WRK_CONNECTIONS", 16)), int(os.environ.get("BENCH_WRK_THREADS", 2))
    ratios: list[float] = []
    p99_ratios: list[float] = []
    resets = 0
    acknowledged = 0
    print(f"\nwrk -t{threads} -c{connections} -d{seconds}s, {pairs} alternating pairs (bare first in odd pairs)")
    print(
        f"{'pair':>4}  {'bare req/s':>10} {'recv req/s':>10} {'ratio':>6}  "
        f"{'bare p99':>9} {'recv p99':>9}  errors  load avg"
    )
    for pair in range(1, pairs + 1):
        order = ["bare", "receiver"] if pair % 2 else ["receiver", "bare"]
        runs: dict[str, WrkRun] = {}
        for which in order:
            if which == "bare":
                runs[which] = _wrk(
                    f"{base}/bench/bare/",
                    auth=None,
                    seconds=seconds,
                    connections=connections,
                    threads=threads,
                    logs=logs,
                )
            else:
                runs[which] = _wrk(
                    receiver_url, auth=auth, seconds=seconds, connections=connections, threads=threads, logs=logs
                )
        bare, recv = runs["bare"], runs["receiver"]
        ratio = recv.per_second / bare.per_second
        ratios.append(ratio)
        p99_ratios.append(recv.p99_ms / bare.p99_ms if bare.p99_ms else float("nan"))
        resets += bare.socket_errors + recv.socket_errors
        acknowledged += recv.requests - recv.non_2xx
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"{pair:>4}  {bare.per_second:10.0f} {recv.per_second:10.0f} {ratio:6.2f}  "
            f"{bare.p99_ms:8.1f}ms {recv.p99_ms:8.1f}ms  {bare.socket_errors + recv.socket_errors:>6}  {load}"
        )
    print(
        f"receiver/bare throughput ratio: min {min(ratios):.2f} / median {statistics.median(ratios):.2f} / "
        f"max {max(ratios):.2f} (target >= 0.6); receiver p99 / bare p99: median {statistics.median(p99_ratios):.1f}x "
        f"(target <= 2x); socket errors {resets} (target 0)"
    )
    time.sleep(1)  # requests still in flight when wrk stopped (stored, their answers not counted)
    rows = stored()
    print(
        f"acknowledged (2xx) {acknowledged}, inbox rows {rows}: "
        f"{'every acknowledged delivery stored' if rows >= acknowledged else 'DELIVERIES MISSING'}"
    )


def main() -> int:
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        print(
            "bench-webhooks needs PostgreSQL: set DATABASE_URL=postgres://user@host:5432/dbname "
            "(a throwaway database '<dbname>_webhooks_bench' is created next to it and dropped afterwards)."
        )
        return 2
    requests_total = int(os.environ.get("BENCH_REQUESTS", 3000))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", 16))
    rate = float(os.environ.get("BENCH_RATE", 40))
    seconds = float(os.environ.get("BENCH_SECONDS", 20))
    workers = os.environ.get("BENCH_GUNICORN_WORKERS", "2")
    threads = os.environ.get("BENCH_GUNICORN_THREADS", "8")

    parts = urlsplit(database_url)
    bench_db = f"{parts.path.lstrip('/') or 'postgres'}_webhooks_bench"
    bench_url = urlunsplit(parts._replace(path=f"/{bench_db}"))
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    logs = Path(os.environ.get("BENCH_LOG_DIR") or tempfile.mkdtemp(prefix="bench-webhooks-"))
    logs.mkdir(parents=True, exist_ok=True)
    children: list[harness.Child] = []
    redis: harness.PrivateRedis | None = None

    import psycopg

    with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{bench_db}"')
        conn.execute(f'CREATE DATABASE "{bench_db}"')
    try:
        broker = os.environ.get("CELERY_BROKER_URL", "")
        if not broker:
            redis = harness.PrivateRedis(logs).start()
            broker = redis.url
        env = {
            **os.environ,
            "DATABASE_URL": bench_url,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DEBUG": os.environ.get("DEBUG", "off"),
            "LOG_LEVEL": "WARNING",
            "CELERY_BROKER_URL": broker,
            "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key"),
            "PIPEDRIVE_CLIENT_ID": "bench",
            "PIPEDRIVE_CLIENT_SECRET": "bench",
            "TOKEN_ENCRYPTION_KEYS": os.environ.get("TOKEN_ENCRYPTION_KEYS", "") or _fernet_key(),
            "PIPEDRIVE_SANDBOX": "off",
        }
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        os.environ.update(
            {
                k: env[k]
                for k in (
                    "DATABASE_URL",
                    "DJANGO_SETTINGS_MODULE",
                    "SECRET_KEY",
                    "PIPEDRIVE_CLIENT_ID",
                    "PIPEDRIVE_CLIENT_SECRET",
                    "TOKEN_ENCRYPTION_KEYS",
                    "DEBUG",
                    "PIPEDRIVE_SANDBOX",
                )
            }
        )
        import django

        django.setup()
        from django.db.models import Max

        from pipedrive_app.history.models import ChangeRecord
        from pipedrive_app.installations.models import Company
        from pipedrive_app.webhooks.models import InboxEvent
        from pipedrive_app.webhooks.services import webhook_state_get_or_create

        company = Company.objects.create(pipedrive_company_id=777, name="Bench", api_domain="http://127.0.0.1:9")
        state = webhook_state_get_or_create(company=company)
        auth = (state.http_auth_user, state.http_auth_password)

        # 1. Receiver vs bare view. Nothing consumes this queue: only acknowledgement is measured.
        idle_queue = f"bench-idle-{uuid.uuid4().hex[:8]}"
        server, base = harness.gunicorn(
            {**env, **harness.private_queue_env(idle_queue)}, logs, workers=int(workers), threads=int(threads)
        )
        children.append(server)
        bodies = [json.dumps(_event(777, i % 500 + 1, i)).encode() for i in range(requests_total)]
        _hammer(f"{base}/bench/bare/", None, bodies[:300], concurrency)  # warm-up
        if shutil.which("wrk"):
            _wrk_pairs(
                base,
                f"{base}/webhooks/pipedrive/{state.url_key}/",
                auth,
                pairs=int(os.environ.get("BENCH_PAIRS", 3)),
                seconds=int(os.environ.get("BENCH_WRK_SECONDS", 10)),
                logs=logs,
                stored=InboxEvent.objects.count,
            )
            InboxEvent.objects.all().delete()
        else:
            print("\nwrk is not installed (make bench-tools): the Python client below shares the CPU with the server.")
        bare_time, bare_lat, bare_status = _hammer(f"{base}/bench/bare/", None, bodies, concurrency)
        recv_time, recv_lat, recv_status = _hammer(
            f"{base}/webhooks/pipedrive/{state.url_key}/", auth, bodies, concurrency
        )
        dup_time, dup_lat, dup_status = _hammer(
            f"{base}/webhooks/pipedrive/{state.url_key}/", auth, bodies[:1000], concurrency
        )
        server.stop()
        _purge(broker, idle_queue)
        stored = InboxEvent.objects.count()
        InboxEvent.objects.all().delete()

        print(
            f"\ngunicorn gthread {workers} workers x {threads} threads, {concurrency} concurrent clients, "
            f"{requests_total} POSTs of a v2 deal.change; PostgreSQL; broker {'private redis' if redis else broker}"
        )
        print(f"{'':28}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}  statuses")
        for name, elapsed, lat, status in (
            ("bare view (200, no work)", bare_time, bare_lat, bare_status),
            ("webhook receiver", recv_time, recv_lat, recv_status),
            ("receiver, duplicates", dup_time, dup_lat, dup_status),
        ):
            print(
                f"{name:28}{len(lat) / elapsed:9.0f}{_percentile(lat, 0.5) * 1000:9.1f}"
                f"{_percentile(lat, 0.99) * 1000:9.1f}  {status}"
            )
        print(
            f"receiver/bare throughput ratio: {(requests_total / recv_time) / (requests_total / bare_time):.2f}; "
            f"p50 latency ratio {_percentile(recv_lat, 0.5) / _percentile(bare_lat, 0.5):.2f}; "
            f"inbox rows stored: {stored} of {requests_total}"
        )

        # 2. End-to-end lag at a steady rate, with a real worker.
        queue = f"bench-e2e-{uuid.uuid4().hex[:8]}"
        server, base = harness.gunicorn(
            {**env, **harness.private_queue_env(queue)}, logs, workers=int(workers), threads=int(threads)
        )
        children.append(server)
        worker = harness.celery_worker({**env, **harness.private_queue_env(queue)}, queue, logs)
        children.append(worker)
        time.sleep(3)  # worker boot
        session = requests.Session()
        session.auth = auth
        sent: dict[int, float] = {}
        total = int(rate * seconds)
        start = time.time()
        for number in range(total):
            target = start + number / rate
            time.sleep(max(0.0, target - time.time()))
            deal = 100_000 + number  # one deal per event: its history row identifies it
            sent[deal] = time.time()
            session.post(f"{base}/webhooks/pipedrive/{state.url_key}/", json=_event(777, deal, 1), timeout=30)
        ids = [str(deal) for deal in sent]  # record ids are stored as text
        harness.wait_for(lambda: ChangeRecord.objects.filter(entity_id__in=ids).count() >= total, 120, 0.5)
        written = {
            int(deal): at
            for deal, at in ChangeRecord.objects.filter(entity_id__in=ids)
            .values_list("entity_id")
            .annotate(Max("created_at"))
        }
        lags = [written[deal].timestamp() - at for deal, at in sent.items() if deal in written]
        print(
            f"\nend-to-end at {rate:.0f} deliveries/s for {seconds:.0f} s (1 worker, prefork x2): "
            f"{len(lags)}/{total} history rows; lag p50 {_percentile(lags, 0.5) * 1000:.0f} ms, "
            f"p95 {_percentile(lags, 0.95) * 1000:.0f} ms (target < 1000), "
            f"p99 {_percentile(lags, 0.99) * 1000:.0f} ms, max {max(lags) * 1000 if lags else float('nan'):.0f} ms"
        )
        print(f"(logs in {logs})")
        return 0
    finally:
        for child in children:
            child.stop()
        if redis is not None:
            redis.stop()
        from django.db import connections

        connections.close_all()
        with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')


def _libpq(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _purge(broker: str, queue: str) -> None:
    import redis as redis_client

    redis_client.Redis.from_url(broker).delete(queue)


if __name__ == "__main__":
    raise SystemExit(main())
