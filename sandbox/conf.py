"""The sandbox's own knobs, from Django settings (``SANDBOX_*`` in ``pipedrive_app/settings.py``, read
from the environment there like every other setting), with Pipedrive's documented values as defaults.

Read at call time, not import time, so tests can change them with pytest-django's ``settings``.
"""

from __future__ import annotations

from django.conf import settings

from .facts import limits, scopes

# Pipedrive's documented values live in ``facts.limits`` and ``facts.scopes`` (shared with the tests'
# double); these names are kept for the sandbox's modules. The settings below make a few adjustable.
AUTHORIZATION_CODE_LIFETIME = limits.AUTHORIZATION_CODE_LIFETIME_SECONDS
REFRESH_TOKEN_IDLE_DAYS = limits.REFRESH_TOKEN_IDLE_DAYS
WEBHOOKS_PER_USER = limits.WEBHOOKS_PER_USER
WEBHOOK_TIMEOUT = limits.WEBHOOK_TIMEOUT_SECONDS
WEBHOOK_RETRY_DELAYS = limits.WEBHOOK_RETRY_DELAYS
WEBHOOK_BAN_AFTER_FAILED_FIRST_ATTEMPTS = limits.WEBHOOK_BAN_AFTER_FAILED_FIRST_ATTEMPTS
WEBHOOK_BAN_MINUTES = limits.WEBHOOK_BAN_MINUTES
WEBHOOK_REMOVE_AFTER_DAYS = limits.WEBHOOK_REMOVE_AFTER_DAYS
# Company domains that would collide with the sandbox's own pages.
RESERVED_DOMAINS = frozenset({"oauth", "marketplace", "webhooks", "static", "api", "companies"})


def access_token_lifetime() -> int:
    """Seconds an access token lives (Pipedrive: 3599); shorten it to watch a refresh happen."""
    value = settings.SANDBOX_ACCESS_TOKEN_LIFETIME
    return limits.ACCESS_TOKEN_LIFETIME_SECONDS if value is None else int(value)


def app_scopes() -> list[str]:
    """The scopes of the one registered app, fixed as in Developer Hub."""
    value = settings.SANDBOX_APP_SCOPES
    return scopes.parse(scopes.APP_SCOPES if value is None else str(value))


def burst_window_seconds() -> float:
    """Pipedrive's burst limit counts requests per token over a rolling 2-second window."""
    value = settings.SANDBOX_BURST_WINDOW_SECONDS
    return float(limits.BURST_WINDOW_SECONDS if value is None else value)


def default_burst_limit() -> int:
    value = settings.SANDBOX_BURST_LIMIT
    return limits.BURST_LIMIT if value is None else int(value)


def default_daily_budget() -> int:
    value = settings.SANDBOX_DAILY_BUDGET
    return limits.DAILY_BUDGET if value is None else int(value)


def webhook_delay_scale() -> float:
    """Multiplies the retry delays (3, 30, 150 s); tests use a small value, 0 retries at once."""
    return float(settings.SANDBOX_WEBHOOK_DELAY_SCALE)


def app_name() -> str:
    """The registered app's name, as Developer Hub and the Marketplace show it."""
    return str(settings.SANDBOX_APP_NAME)


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
