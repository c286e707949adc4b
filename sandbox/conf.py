"""The sandbox's own knobs, read from Django settings (or the environment) with demo-friendly defaults.

Read at call time, not import time, so tests can change them with pytest-django's ``settings``.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

# Pipedrive's documented values (docs/pipedrive-platform.md); the sandbox makes a few adjustable.
AUTHORIZATION_CODE_LIFETIME = 5 * 60
REFRESH_TOKEN_IDLE_DAYS = 60
WEBHOOKS_PER_USER = 40
WEBHOOK_TIMEOUT = 10.0
WEBHOOK_RETRY_DELAYS = (3, 30, 150)  # after attempts 1, 2, 3; attempt 4 is the last
WEBHOOK_BAN_AFTER_FAILED_FIRST_ATTEMPTS = 10
WEBHOOK_BAN_MINUTES = 30
WEBHOOK_REMOVE_AFTER_DAYS = 3
MAX_PAGE_SIZE = 500
# users:read lets the panels name a record's owner who has not installed the app (GET /api/v1/users/{id}).
DEFAULT_SCOPES = "base,deals:full,contacts:full,users:read,admin"
# Company domains that would collide with the sandbox's own pages.
RESERVED_DOMAINS = frozenset({"oauth", "marketplace", "webhooks", "static", "api", "companies"})


def _setting(name: str, default: object) -> object:
    if hasattr(settings, name):
        return getattr(settings, name)
    return os.environ.get(name, default)


def access_token_lifetime() -> int:
    """Seconds an access token lives (Pipedrive: 3599); shorten it to watch a refresh happen."""
    return int(_setting("SANDBOX_ACCESS_TOKEN_LIFETIME", 3599))  # type: ignore[call-overload]


def app_scopes() -> list[str]:
    """The scopes of the one registered app, fixed as in Developer Hub."""
    raw = str(_setting("SANDBOX_APP_SCOPES", DEFAULT_SCOPES))
    return [part for part in raw.replace(" ", ",").split(",") if part]


def burst_window_seconds() -> float:
    """Pipedrive's burst limit counts requests per token over a rolling 2-second window."""
    return float(_setting("SANDBOX_BURST_WINDOW_SECONDS", 2.0))  # type: ignore[arg-type]


def default_burst_limit() -> int:
    return int(_setting("SANDBOX_BURST_LIMIT", 80))  # type: ignore[call-overload]


def default_daily_budget() -> int:
    return int(_setting("SANDBOX_DAILY_BUDGET", 30_000))  # type: ignore[call-overload]


def webhook_delay_scale() -> float:
    """Multiplies the retry delays (3, 30, 150 s); tests use a small value, 0 retries at once."""
    return float(_setting("SANDBOX_WEBHOOK_DELAY_SCALE", 1.0))  # type: ignore[arg-type]


def client_id() -> str:
    return str(settings.PIPEDRIVE_CLIENT_ID)


def client_secret() -> str:
    return str(settings.PIPEDRIVE_CLIENT_SECRET)


def callback_url() -> str:
    """The registered app's one callback URL: the app's own, so `make run` needs no set-up."""
    return f"{str(settings.APP_BASE_URL).rstrip('/')}/oauth/callback"


def base_url() -> str:
    """Public origin + path of the sandbox; also PIPEDRIVE_OAUTH_URL when the app uses it."""
    return f"{str(settings.APP_BASE_URL).rstrip('/')}/sandbox"


def api_domain(domain: str) -> str:
    return f"{base_url()}/{domain}"


def openapi_dir() -> Path:
    """Pipedrive's OpenAPI files, vendored in the repository (vendor/pipedrive-openapi/)."""
    configured = _setting("PIPEDRIVE_OPENAPI_DIR", "")
    if configured:
        return Path(str(configured))
    return Path(settings.BASE_DIR) / "vendor" / "pipedrive-openapi"
