"""Suite-wide fixtures and guards.

- Service-backed tests are marked ``postgres`` / ``worker``; on the defaults they skip, and with
  ``REQUIRE_SERVICES`` on (CI's second pass) a missing service fails them instead.
- Every log record of the whole run is kept, and at the end no token any double issued may appear
  in it (the "no secrets in logs" check covers the suite, not one test).
"""

from __future__ import annotations

import logging
import os

import pytest

# The doubles speak plain HTTP on loopback; oauthlib refuses that unless told otherwise.
os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")

from tests.doubles.fixtures import *  # noqa: E402,F403
from tests.doubles.pipedrive_double import issued_secrets  # noqa: E402

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES", "").lower() in {"1", "true", "yes", "on"}


class _KeepEverything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


_all_logs = _KeepEverything()


@pytest.fixture(autouse=True)
def _keep_all_logs() -> None:
    # Attached per test because Django's LOGGING (dictConfig) replaces the root handlers at setup.
    root = logging.getLogger()
    if _all_logs not in root.handlers:
        root.addHandler(_all_logs)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    secrets = {s for s in issued_secrets() if len(s) >= 12}
    leaked = sorted({line[:120] for line in _all_logs.lines for s in secrets if s in line})
    if leaked:
        print("\nSECRETS FOUND IN LOG OUTPUT (first lines):\n" + "\n".join(leaked[:5]))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        print(f"\nlog secret scan: {len(_all_logs.lines)} log records, {len(secrets)} issued secrets, none leaked")


def _service_missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES is on but {reason}")
    pytest.skip(reason)


@pytest.fixture
def postgres_only() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        _service_missing("this test needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture
def broker_url() -> str:
    from django.conf import settings

    if not settings.CELERY_BROKER_URL:
        _service_missing("this test needs a Celery broker (set CELERY_BROKER_URL)")
    return str(settings.CELERY_BROKER_URL)


@pytest.fixture
def redis_url() -> str:
    """The Redis that the API rate limiter shares between processes (RATE_LIMIT_REDIS_URL / CACHE_URL)."""
    from django.conf import settings

    if not settings.RATE_LIMIT_REDIS_URL:
        _service_missing("this test needs Redis (set CACHE_URL or RATE_LIMIT_REDIS_URL to redis://...)")
    return str(settings.RATE_LIMIT_REDIS_URL)


@pytest.fixture(autouse=True)
def _celery_eager(request: pytest.FixtureRequest) -> object:
    """Tasks run in-process unless a test asks for the real worker."""
    from pipedrive_app.celery import app

    eager = request.node.get_closest_marker("worker") is None
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = eager
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def pipedrive(pipedrive_double, settings):
    """The loopback Pipedrive double, with the app configured to use it as Pipedrive."""
    settings.PIPEDRIVE_OAUTH_URL = pipedrive_double.base_url
    settings.PIPEDRIVE_ALLOWED_API_DOMAINS = [pipedrive_double.base_url]
    settings.PIPEDRIVE_CLIENT_ID = pipedrive_double.client_id
    settings.PIPEDRIVE_CLIENT_SECRET = pipedrive_double.client_secret
    settings.PIPEDRIVE_HTTP_TIMEOUT = 3.0
    return pipedrive_double


@pytest.fixture
def subprocess_env(pipedrive, settings) -> dict[str, str]:
    """Environment for a child process (worker, stampede) that shares this test's database and double."""
    from django.db import connection

    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPEDRIVE_", "DATABASE_URL"))}
    if connection.vendor == "postgresql":
        host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
        env["DATABASE_URL"] = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}:{port}/{db['NAME']}"
    env.update(
        {
            "DEBUG": "on",
            "SECRET_KEY": settings.SECRET_KEY,
            "TOKEN_ENCRYPTION_KEYS": ",".join(settings.TOKEN_ENCRYPTION_KEYS),
            "PIPEDRIVE_OAUTH_URL": pipedrive.base_url,
            "PIPEDRIVE_ALLOWED_API_DOMAINS": pipedrive.base_url,
            "PIPEDRIVE_CLIENT_ID": pipedrive.client_id,
            "PIPEDRIVE_CLIENT_SECRET": pipedrive.client_secret,
            "OAUTHLIB_INSECURE_TRANSPORT": "1",
        }
    )
    return env
