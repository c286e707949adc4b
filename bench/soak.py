"""Soak: steady load with faults against the production process layout, on loopback.

gunicorn (Procfile ``web``, 4 workers) + the two Procfile workers (``webhooks``; ``pipedrive,celery``)
+ beat, with PostgreSQL (two fresh databases: the app's and the sandbox's) and a private redis-server
(append-only file, as compose runs it, so it can be restarted). The sandbox is the app's own
``/sandbox/`` (PIPEDRIVE_SANDBOX=on, PIPEDRIVE_SANDBOX_FORCE=on since DEBUG is off).

For ``SOAK_SECONDS`` (default 180) it drives, at a steady rate: installs and reinstalls through the
sandbox's consent page and the app's callback; custom panel views (``/extensions/panels/deal/`` with a
JWT signed like the sandbox signs it); and deal edits on the sandbox's pages, which the sandbox's
webhook sender delivers to the app's receiver. One third in, the webhooks worker is SIGKILLed and
restarted; two thirds in, Redis is restarted. Then it waits for the app to catch up and prints the
figures. Exit status 1 if an event was lost or the sandbox answered the app with 429.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pipedrive_app make soak
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import jwt
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "180"))
EDITS_PER_SECOND = float(os.environ.get("SOAK_EDITS_PER_SECOND", "3"))
PANELS_PER_SECOND = float(os.environ.get("SOAK_PANELS_PER_SECOND", "2"))
INSTALL_EVERY_SECONDS = float(os.environ.get("SOAK_INSTALL_EVERY_SECONDS", "15"))
CLIENT_ID, CLIENT_SECRET = "soak-client", "soak-client-secret-0123456789-abcdefghij"


def procfile() -> dict[str, list[str]]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if ":" in line and not line.startswith("#"):
            name, _, command = line.partition(":")
            words = command.split()
            program = sys.executable if words[0] == "python" else str(Path(sys.executable).parent / words[0])
            entries[name.strip()] = [program, *words[1:]]
    return entries


def recreate_databases(admin_url: str, names: list[str]) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')


class Redis:
    """A private redis-server with an append-only file: a restart keeps what was queued."""

    def __init__(self, logs: Path) -> None:
        self.port, self.dir, self.logs = harness.free_port(), logs / "redis", logs
        self.child: harness.Child | None = None
        self.dir.mkdir(exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(self.dir), "--appendonly", "yes", "--save", ""]
        child = self.child = harness.Child("redis", argv, dict(os.environ), self.logs / "redis.log").start()

        def up() -> bool:
            try:
                import redis

                return bool(redis.Redis.from_url(self.url, socket_timeout=0.5).ping())
            except Exception:
                return False

        if not harness.wait_for(up, 10, 0.05):
            raise RuntimeError("redis did not start:\n" + child.tail())

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()  # SIGTERM: Redis flushes its append-only file and exits


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, list[str]] = {}

    def record(self, kind: str, started: float, ok: bool, detail: str = "") -> None:
        with self.lock:
            self.latencies.setdefault(kind, []).append(time.monotonic() - started)
            if not ok:
                self.errors.setdefault(kind, []).append(detail)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def csrf(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    if not match:
        raise RuntimeError("no CSRF token on the page")
    return match.group(1)


def install(base: str, user_id: int, stats: Stats) -> None:
    """The browser flow: the app's install link, the sandbox's consent page, Allow, the app's callback."""
    browser = requests.Session()
    started = time.monotonic()
    try:
        first = browser.get(f"{base}/oauth/install", allow_redirects=False, timeout=15)
        consent = first.headers["Location"]
        page = browser.get(consent, timeout=15)
        answer = browser.post(
            consent,
            data={"csrfmiddlewaretoken": csrf(page.text), "user_id": user_id, "decision": "allow"},
            allow_redirects=False,
            timeout=15,
        )
        final = browser.get(answer.headers["Location"], timeout=30)
        ok = final.status_code == 200 and "/oauth/installed/" in final.url
        stats.record("install", started, ok, f"{final.status_code} {final.url[-60:]}")
    except (requests.RequestException, KeyError, RuntimeError) as exc:
        stats.record("install", started, False, type(exc).__name__)
    finally:
        browser.close()


def panel(base: str, session: requests.Session, company_id: int, user_id: int, deal_id: int, stats: Stats) -> None:
    now = int(time.time())
    token = jwt.encode(
        {"userId": user_id, "companyId": company_id, "iat": now, "exp": now + 300}, CLIENT_SECRET, algorithm="HS256"
    )
    query = urlencode(
        {
            "id": f"soak-{random.getrandbits(48):x}",
            "userId": user_id,
            "companyId": company_id,
            "token": token,
            "resource": "deal",
            "view": "details",
            "selectedIds": deal_id,
            "theme": "light",
        }
    )
    started = time.monotonic()
    try:
        response = session.get(f"{base}/extensions/panels/deal/?{query}", timeout=15)
        stats.record("panel", started, response.status_code == 200, str(response.status_code))
    except requests.RequestException as exc:
        stats.record("panel", started, False, type(exc).__name__)


def edit(base: str, session: requests.Session, domain: str, actor: int, deal_id: int, stats: Stats) -> None:
    url = f"{base}/sandbox/{domain}/deals/{deal_id}/?as={actor}"
    started = time.monotonic()
    try:
        page = session.get(url, timeout=15)
        title = re.search(r'name="title"[^>]*value="([^"]*)"', page.text)
        value = random.randint(1, 10**6)
        response = session.post(
            url,
            data={
                "csrfmiddlewaretoken": csrf(page.text),
                "title": title.group(1) if title else f"Deal {deal_id}",
                "value": str(value),
            },
            allow_redirects=False,
            timeout=15,
        )
        stats.record("edit", started, response.status_code == 302, str(response.status_code))
    except (requests.RequestException, RuntimeError) as exc:
        stats.record("edit", started, False, type(exc).__name__)


def paced(rate: float, deadline: float, action, threads: int = 4) -> list[threading.Thread]:
    """Call ``action()`` ``rate`` times a second (spread over ``threads``) until ``deadline``."""

    def run(offset: float) -> None:
        interval = threads / rate
        next_at = time.monotonic() + offset
        while next_at < deadline:
            time.sleep(max(0.0, next_at - time.monotonic()))
            action()
            next_at += interval

    pool = [threading.Thread(target=run, args=(i / rate,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    return pool


def main() -> int:  # noqa: C901  (a script read top to bottom: set-up, load, checks, tear-down)
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        print("soak needs PostgreSQL: DATABASE_URL=postgres://postgres@127.0.0.1:5432/pipedrive_app make soak")
        return 2
    parts = urlsplit(database_url)
    server = f"{parts.scheme}://{parts.netloc}"
    app_db, sandbox_db = "pipedrive_soak", "pipedrive_soak_sandbox"
    logs = ROOT / "test-artifacts" / "soak"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    recreate_databases(f"{server}/postgres", [app_db, sandbox_db])
    redis = Redis(logs)
    redis.start()
    port = harness.free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIPEDRIVE_", "CELERY_", "SANDBOX_", "WEBHOOKS_", "EXTENSIONS_"))
    }
    env.update(
        {
            "DEBUG": "off",
            "SECRET_KEY": "soak-secret-key-" + "x" * 40,
            "TOKEN_ENCRYPTION_KEYS": "a2V5LWtleS1rZXkta2V5LWtleS1rZXkta2V5LWtleS0=",
            "DATABASE_URL": f"{server}/{app_db}",
            "SANDBOX_DATABASE_URL": f"{server}/{sandbox_db}",
            "CELERY_BROKER_URL": f"{redis.url}/0",
            "CACHE_URL": f"{redis.url}/1",
            "APP_BASE_URL": base,
            "PIPEDRIVE_SANDBOX": "on",
            "PIPEDRIVE_SANDBOX_FORCE": "on",
            "PIPEDRIVE_CLIENT_ID": CLIENT_ID,
            "PIPEDRIVE_CLIENT_SECRET": CLIENT_SECRET,
            "PIPEDRIVE_OAUTH_URL": f"{base}/sandbox",
            "PIPEDRIVE_ALLOWED_API_DOMAINS": f"{base}/sandbox/*",
            "OAUTHLIB_INSECURE_TRANSPORT": "1",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": "4",
            "EXTENSIONS_PANEL_CACHE_SECONDS": "0",  # every panel view calls the sandbox's API
            "SANDBOX_WEBHOOK_DELAY_SCALE": "0.1",
            "WEBHOOKS_SWEEP_AFTER_SECONDS": "20",
            "LOG_LEVEL": "WARNING",
        }
    )
    commands = procfile()
    children: dict[str, harness.Child] = {}

    def start(name: str, extra: Sequence[str] = ()) -> None:
        children[name] = harness.Child(name, [*commands[name], *extra], env, logs / f"{name}.log").start()

    worker_args = {
        "worker-webhooks": ["-n", "webhooks@%h", "-c", "2"],
        "worker-pipedrive": ["-n", "pipedrive@%h", "-c", "2"],
    }
    try:
        for step in (
            commands["release"],
            [sys.executable, "manage.py", "sandbox_seed", "--reset"],
            [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],  # as the Docker build does
        ):
            done = subprocess.run(  # noqa: S603 - our own Procfile command
                step, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
            )
            if done.returncode != 0:
                raise RuntimeError(f"{step[-2:]} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        start("web")
        if not harness.wait_for(lambda: _ok(f"{base}/healthz"), 30):
            raise RuntimeError("gunicorn did not start:\n" + children["web"].tail())
        for name, extra in worker_args.items():
            start(name, extra)
        start("beat")
        time.sleep(4)

        os.environ.update({k: env[k] for k in ("DATABASE_URL", "SANDBOX_DATABASE_URL", "PIPEDRIVE_SANDBOX")})
        os.environ.update({"DEBUG": "on", "DJANGO_SETTINGS_MODULE": "pipedrive_app.settings"})
        import django

        django.setup()
        from pipedrive_app.history.models import ChangeRecord
        from pipedrive_app.webhooks.models import InboxEvent
        from sandbox import selectors as sandbox_selectors  # the sandbox's public reads

        acme = sandbox_selectors.company_by_domain(domain="acme")
        if acme is None:
            raise RuntimeError("the sandbox has no company 'acme': was sandbox_seed run?")
        users = sandbox_selectors.company_users(company=acme)
        admin, regular = users[0], users[1]
        deals = list(sandbox_selectors.company_deals(company=acme).values_list("pk", flat=True))
        stats = Stats()
        install(base, admin.pk, stats)  # the admin's install provisions the webhooks
        if stats.errors.get("install"):
            raise RuntimeError(f"first install failed: {stats.errors['install']}\n" + children["web"].tail())
        # The reconcile task on the pipedrive worker creates the subscriptions.
        client_id = env["PIPEDRIVE_CLIENT_ID"]
        if not harness.wait_for(lambda: bool(sandbox_selectors.app_webhooks(company=acme, client_id=client_id)), 60):
            raise RuntimeError("no webhook subscription was created:\n" + children["worker-pipedrive"].tail())
        install(base, regular.pk, stats)
        started_at = django.utils.timezone.now()
        t0 = time.monotonic()
        deadline = t0 + SOAK_SECONDS
        local = threading.local()

        def session() -> requests.Session:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            return local.session

        pools = paced(
            EDITS_PER_SECOND,
            deadline,
            lambda: edit(base, session(), "acme", random.choice(users).pk, random.choice(deals), stats),
        )
        pools += paced(
            PANELS_PER_SECOND,
            deadline,
            lambda: panel(base, session(), acme.pk, random.choice([admin, regular]).pk, random.choice(deals), stats),
        )
        pools += paced(1 / INSTALL_EVERY_SECONDS, deadline, lambda: install(base, random.choice(users).pk, stats), 1)

        faults: list[str] = []
        time.sleep(max(0.0, t0 + SOAK_SECONDS / 3 - time.monotonic()))
        children["worker-webhooks"].kill()
        faults.append(f"{time.monotonic() - t0:.0f}s: worker-webhooks SIGKILLed")
        time.sleep(3)
        start("worker-webhooks", worker_args["worker-webhooks"])
        faults.append(f"{time.monotonic() - t0:.0f}s: worker-webhooks restarted")
        time.sleep(max(0.0, t0 + 2 * SOAK_SECONDS / 3 - time.monotonic()))
        redis.stop()
        faults.append(f"{time.monotonic() - t0:.0f}s: redis stopped")
        time.sleep(3)
        redis.start()
        faults.append(f"{time.monotonic() - t0:.0f}s: redis restarted")
        for thread in pools:
            thread.join(60)
        load_seconds = time.monotonic() - t0

        def expected_ids() -> set[str]:
            """Events the app acknowledged (a delivery answered 2xx): it owns them from then on."""
            figures = sandbox_selectors.delivery_figures(company=acme, entity="deal", since=started_at)
            return set(figures.acknowledged_event_ids)

        def processed_ids() -> set[str]:
            """``meta.id`` of the events processed: a v2 inbox key is ``v2:<meta.id>:<digest>``."""
            keys = InboxEvent.objects.filter(status=InboxEvent.Status.PROCESSED, entity="deal").values_list(
                "dedup_key", flat=True
            )
            return {key.split(":")[1] for key in keys if key.startswith("v2:")}

        catch_up = time.monotonic()
        harness.wait_for(lambda: expected_ids() <= processed_ids(), 240, 2)
        catch_up = time.monotonic() - catch_up
        expected, processed = expected_ids(), processed_ids()
        lost = expected - processed
        figures = sandbox_selectors.delivery_figures(company=acme, entity="deal", since=started_at)
        deliveries = figures.deliveries_by_status
        dead = InboxEvent.objects.filter(status=InboxEvent.Status.DEAD).count()
        all_changes = figures.changes
        never_sent = figures.never_sent
        history_rows = ChangeRecord.objects.filter(entity="deal", field_key="value").count()
    finally:
        for child in children.values():
            child.stop()
        redis.stop()

    too_many = 0
    for name in children:
        text = (logs / f"{name}.log").read_text(errors="replace")
        too_many += len(re.findall(r'"[A-Z]+ /sandbox/\S+ HTTP/1\.1" 429 ', text)) if name == "web" else 0
    rate_limited_logs = sum(
        (logs / f"{name}.log").read_text(errors="replace").count("rate-limited") for name in children
    )
    everything = [x for values in stats.latencies.values() for x in values]
    errors = sum(len(v) for v in stats.errors.values())
    print(f"\nsoak: {load_seconds:.0f} s of load, then {catch_up:.0f} s to catch up; faults: {'; '.join(faults)}")
    print(f"requests served: {len(everything)} (client operations: edit = page GET + POST, install = 4 requests)")
    print(f"error rate: {errors / max(1, len(everything)):.2%} ({errors} failed)")
    for kind in sorted(stats.latencies):
        values = stats.latencies[kind]
        failed = stats.errors.get(kind, [])
        sample = ", ".join(sorted(set(failed))[:5])
        print(
            f"  {kind:8} n={len(values):5}  p50 {pct(values, 0.5):7.1f} ms  p99 {pct(values, 0.99):7.1f} ms"
            f"  errors {len(failed)}{' (' + sample + ')' if failed else ''}"
        )
    print(f"all: p50 {pct(everything, 0.5):.1f} ms, p99 {pct(everything, 0.99):.1f} ms")
    print(
        f"sandbox deal changes: {all_changes}; acknowledged by the app: {len(expected)}; processed: "
        f"{len(expected & processed)}; dead: {dead}; history 'value' rows: {history_rows}; "
        f"changes the sandbox never sent (its broker was down when it queued them): {never_sent}"
    )
    print(f"sandbox webhook deliveries by status: {deliveries}")
    print(f"events lost: {len(lost)}")
    print(f"429s received from the sandbox: {too_many} (client 'rate-limited' log lines: {rate_limited_logs})")
    print(f"logs: {logs}")
    return 1 if lost or too_many else 0


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
