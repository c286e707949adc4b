"""One settings module; every deploy-specific value comes from the environment.

The names below are a contract (see docs/architecture.md and .env.example). With nothing set, the
app runs for development: SQLite, Celery tasks run eagerly, development-only secrets. With
``DEBUG`` off, a missing production secret stops the start with a clear error.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_dotenv = BASE_DIR / ".env"
if _dotenv.exists():
    env.read_env(str(_dotenv))

# Under pytest the suite supplies its own values; the production checks below do not apply.
TESTING = "pytest" in sys.modules or sys.argv[1:2] == ["test"]

DEBUG = env.bool("DEBUG", default=False)
_DEV = DEBUG or TESTING


def _required(name: str, dev_default: str) -> str:
    """A secret production must set; development and tests fall back to ``dev_default``."""
    value = env.str(name, default="")
    if value:
        return value
    if _DEV:
        return dev_default
    raise ImproperlyConfigured(f"{name} is not set. It is required when DEBUG is off; see .env.example.")


SECRET_KEY = _required("SECRET_KEY", "dev-only-insecure-secret-key-do-not-use-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
APP_BASE_URL = env.str("APP_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# The sandbox (a local Pipedrive stand-in, sandbox/README.md): on for `make run` and the test suite,
# off otherwise; its own settings are in the "Sandbox" section below.
PIPEDRIVE_SANDBOX = env.bool("PIPEDRIVE_SANDBOX", default=TESTING)
PIPEDRIVE_SANDBOX_FORCE = env.bool("PIPEDRIVE_SANDBOX_FORCE", default=False)

# Every app, in one list. The dashboard comes before allauth: its templates override allauth's.
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "pipedrive_app.core",
    "pipedrive_app.installations",
    "pipedrive_app.webhooks",
    "pipedrive_app.history",
    "pipedrive_app.metrics",
    "csp",
    "extensions",
    *(["sandbox"] if PIPEDRIVE_SANDBOX else []),
    "pipedrive_app.dashboard",
    "allauth",
    "allauth.account",
    "allauth.mfa",
]

MIDDLEWARE = [
    "pipedrive_app.core.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "pipedrive_app.urls"
WSGI_APPLICATION = "pipedrive_app.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take SQLite's writer lock at BEGIN, which is what makes token refresh
    # single-flight in the default set-up (select_for_update is a no-op on SQLite).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# --- Internationalisation -------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# whitenoise serves static files from the app processes (no separate web server needed);
# production gets hashed, compressed files from `collectstatic` (Procfile release / Dockerfile).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security -------------------------------------------------------------------------------------
# Pipedrive's review expects the app to trust its reverse proxy's scheme (platform guide §6).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)
_HTTPS = APP_BASE_URL.startswith("https://")
SESSION_COOKIE_SECURE = _HTTPS
CSRF_COOKIE_SECURE = _HTTPS
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[APP_BASE_URL])
X_FRAME_OPTIONS = "DENY"
if not (DEBUG or TESTING):
    # Production behind HTTPS: `manage.py check --deploy` passes with no warning (tests/core).
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=_HTTPS)
    # Probes come over plain HTTP from inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if _HTTPS else 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=_HTTPS)
    SECURE_REFERRER_POLICY = "same-origin"
# django-csp 4.x. Site-wide only what cannot break a page: nothing frames the app (as DENY above)
# and no plugins. Extension pages replace this with a strict policy of their own that lets Pipedrive
# frame them (extensions/view_guards.py). "default-src": None drops django-csp's implicit 'self'.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": None,
        "frame-ancestors": ["'none'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
    }
}

# --- Celery ---------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or None
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
# A Redis broker goes through kombu's Redis transport with a channel close that survives the broker
# dying mid-read (without it the worker exits instead of reconnecting): pipedrive_app/core/broker.py.
if CELERY_BROKER_URL and CELERY_BROKER_URL.split("://", 1)[0] in ("redis", "rediss"):
    CELERY_BROKER_TRANSPORT = "pipedrive_app.core.broker:Transport"
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# Webhook processing and Pipedrive API work have queues (and workers) of their own, so a burst of
# webhooks never starves token refresh. Task -> queue: pipedrive_app/core/queues.py.
CELERY_WEBHOOKS_QUEUE = env.str("CELERY_WEBHOOKS_QUEUE", default="webhooks")
CELERY_PIPEDRIVE_QUEUE = env.str("CELERY_PIPEDRIVE_QUEUE", default="pipedrive")
CELERY_TASK_ROUTES = ("pipedrive_app.core.queues.route_task",)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Workers keep Django's LOGGING (redaction, request id, LOG_FORMAT): see pipedrive_app/celery.py.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker keeps trying to reach a broker that is down (every 2 s at most, core/broker.py) rather
# than exiting after 100 attempts.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A publish to a broker that is down fails at once (one more try, 0.2 s later, and a 1 s connect
# timeout) instead of kombu's default of retrying for up to 4 s plus back-off (6 s measured): the
# webhook receiver publishes on the acknowledgement path, and its inbox row is what counts anyway.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "max_retries": 1,
    "interval_start": 0.2,
    "interval_step": 0.2,
    "interval_max": 0.5,
    "socket_connect_timeout": 1,
}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "installations-refresh-idle-tokens": {
        "task": "pipedrive_app.installations.tasks.refresh_idle_refresh_tokens",
        "schedule": 6 * 60 * 60,
    },
    "installations-purge-expired-oauth-states": {
        "task": "pipedrive_app.installations.tasks.purge_expired_oauth_states",
        "schedule": 60 * 60,
    },
    "webhooks-reconcile-all": {
        "task": "pipedrive_app.webhooks.tasks.reconcile_all_webhooks",
        "schedule": env.int("WEBHOOKS_RECONCILE_INTERVAL_SECONDS", default=6 * 60 * 60),
    },
    "webhooks-sweep-inbox": {"task": "pipedrive_app.webhooks.tasks.sweep_inbox", "schedule": 30},
    "webhooks-purge-processed-inbox": {
        "task": "pipedrive_app.webhooks.tasks.purge_processed_inbox",
        "schedule": 24 * 60 * 60,
    },
    "history-purge-expired": {"task": "pipedrive_app.history.tasks.purge_expired_history", "schedule": 24 * 60 * 60},
    "dashboard-count-inbox-hours": {"task": "pipedrive_app.dashboard.tasks.count_inbox_hours", "schedule": 5 * 60},
}

# --- Pipedrive ------------------------------------------------------------------------------------
PIPEDRIVE_CLIENT_ID = _required("PIPEDRIVE_CLIENT_ID", "dev-client-id")
PIPEDRIVE_CLIENT_SECRET = _required("PIPEDRIVE_CLIENT_SECRET", "dev-client-secret")
PIPEDRIVE_JWT_SECRET = env.str("PIPEDRIVE_JWT_SECRET", default="") or PIPEDRIVE_CLIENT_SECRET
PIPEDRIVE_OAUTH_URL = env.str("PIPEDRIVE_OAUTH_URL", default="https://oauth.pipedrive.com").rstrip("/")
PIPEDRIVE_ALLOWED_API_DOMAINS = env.list("PIPEDRIVE_ALLOWED_API_DOMAINS", default=["https://*.pipedrive.com"])
PIPEDRIVE_REQUIRE_STATE = env.bool("PIPEDRIVE_REQUIRE_STATE", default=False)
PIPEDRIVE_REDIRECT_URI = f"{APP_BASE_URL}/oauth/callback"
# Refresh an access token when less than this many seconds of it are left.
PIPEDRIVE_TOKEN_REFRESH_MARGIN = env.int("PIPEDRIVE_TOKEN_REFRESH_MARGIN", default=300)
# Pipedrive kills a refresh token unused for 60 days; refresh idle ones well before that.
PIPEDRIVE_REFRESH_IDLE_DAYS = env.int("PIPEDRIVE_REFRESH_IDLE_DAYS", default=50)
PIPEDRIVE_HTTP_TIMEOUT = env.float("PIPEDRIVE_HTTP_TIMEOUT", default=15.0)
# A failed or timed-out token refresh is remembered this long per installation: callers meanwhile use
# a still-valid access token or give up at once, instead of each calling the token endpoint again.
PIPEDRIVE_TOKEN_FAILURE_MEMORY_SECONDS = env.float("PIPEDRIVE_TOKEN_FAILURE_MEMORY_SECONDS", default=10.0)
PIPEDRIVE_OAUTH_STATE_TTL = 10 * 60
# Client-side API limits shared by every process (pipedrive/ratelimit.py): burst per token over a
# rolling window (Pipedrive allows 80 per 2 s on the smallest plan; 75 leaves room for network
# jitter), and the company's daily token budget, of which background work leaves the reserve to panels.
PIPEDRIVE_BURST_LIMIT = env.int("PIPEDRIVE_BURST_LIMIT", default=75)
PIPEDRIVE_BURST_WINDOW_SECONDS = env.float("PIPEDRIVE_BURST_WINDOW_SECONDS", default=2.0)
PIPEDRIVE_DAILY_TOKEN_BUDGET = env.int("PIPEDRIVE_DAILY_TOKEN_BUDGET", default=30_000)
PIPEDRIVE_DAILY_TOKEN_RESERVE = env.int("PIPEDRIVE_DAILY_TOKEN_RESERVE", default=3_000)
# A paused background task looks again after at most this long (it resumes when the budget resets).
PIPEDRIVE_BUDGET_RECHECK_SECONDS = env.int("PIPEDRIVE_BUDGET_RECHECK_SECONDS", default=30 * 60)
# Where the limiter keeps its counters: Redis, shared by all processes; else per process.
_cache_url = env.str("CACHE_URL", default="")
RATE_LIMIT_REDIS_URL = env.str(
    "RATE_LIMIT_REDIS_URL", default=_cache_url if _cache_url.startswith(("redis://", "rediss://")) else ""
)

if urlsplit(PIPEDRIVE_OAUTH_URL).scheme == "http":
    # oauthlib refuses plain HTTP. Allow it only for a loopback OAuth server (the sandbox, tests).
    if urlsplit(PIPEDRIVE_OAUTH_URL).hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise ImproperlyConfigured("PIPEDRIVE_OAUTH_URL must be https unless it is on loopback.")
    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")

# --- App extensions (extensions/README.md) ----------------------------------------------------------
# Who may frame the custom UI panels and settings page; the app's own origin is added while the
# sandbox is on (its deal and person pages host the panels).
EXTENSIONS_FRAME_ANCESTORS = env.list("EXTENSIONS_FRAME_ANCESTORS", default=["https://*.pipedrive.com"])
EXTENSIONS_JWT_LEEWAY_SECONDS = env.int("EXTENSIONS_JWT_LEEWAY_SECONDS", default=10)
# Token policy (extensions/README.md "Token policy"): exp is checked when present; a token without
# exp but with iat is accepted for this long after iat; a token with neither is accepted (and
# logged) unless EXTENSIONS_JWT_REQUIRE_EXPIRY is on.
EXTENSIONS_JWT_MAX_AGE_SECONDS = env.int("EXTENSIONS_JWT_MAX_AGE_SECONDS", default=900)
EXTENSIONS_JWT_REQUIRE_EXPIRY = env.bool("EXTENSIONS_JWT_REQUIRE_EXPIRY", default=False)
# One JWT secret per extension, as Developer Hub allows: PIPEDRIVE_JWT_SECRET_<NAME> (NAME one of
# EXTENSION_NAMES, upper case). An extension without its own uses PIPEDRIVE_JWT_SECRET, which
# defaults to the client secret (Pipedrive signs with the client secret when no JWT secret is set).
EXTENSION_NAMES = (
    "deal_panel",
    "person_panel",
    "organization_panel",
    "deal_json_panel",
    "person_json_panel",
    "organization_json_panel",
    "settings_page",
    "floating_window",
    "follow_up_modal",  # custom modal "Schedule a follow-up" (opened from the panels and the actions menu)
    "follow_up_link",  # link action "Schedule a follow-up" (opens the form as a page in a new tab)
    "follow_up_json_modal",  # JSON modal "Schedule a follow-up (quick)"
)
PIPEDRIVE_EXTENSION_JWT_SECRETS = {
    name: secret for name in EXTENSION_NAMES if (secret := env.str(f"PIPEDRIVE_JWT_SECRET_{name.upper()}", default=""))
}
# HTTP Basic credentials of the JSON panels (Developer Hub's other authentication). Empty: JWT only.
EXTENSIONS_JSON_PANEL_HTTP_AUTH_USER = env.str("EXTENSIONS_JSON_PANEL_HTTP_AUTH_USER", default="")
EXTENSIONS_JSON_PANEL_HTTP_AUTH_PASSWORD = env.str("EXTENSIONS_JSON_PANEL_HTTP_AUTH_PASSWORD", default="")
EXTENSIONS_API_WORKERS = env.int("EXTENSIONS_API_WORKERS", default=6)  # concurrent API calls per panel
EXTENSIONS_PANEL_CACHE_SECONDS = env.int("EXTENSIONS_PANEL_CACHE_SECONDS", default=30)  # per viewer
EXTENSIONS_LOOKUP_CACHE_SECONDS = env.int("EXTENSIONS_LOOKUP_CACHE_SECONDS", default=300)  # stage/pipeline names
# A panel must answer within Pipedrive's 10 s: wait out a 429 once, briefly, then say so.
EXTENSIONS_RATE_LIMIT_MAX_WAITS = env.int("EXTENSIONS_RATE_LIMIT_MAX_WAITS", default=1)
EXTENSIONS_RATE_LIMIT_MAX_WAIT_SECONDS = env.float("EXTENSIONS_RATE_LIMIT_MAX_WAIT_SECONDS", default=2.0)
# A panel's time budget (Pipedrive hides an iframe that has not initialized within 10 s): how long
# it waits for a token refresh (its own or another request's), and the timeout of its API calls.
# Past the budget it answers "Pipedrive is slow, retry"; the refresh finishes in the background.
EXTENSIONS_TOKEN_WAIT_SECONDS = env.float("EXTENSIONS_TOKEN_WAIT_SECONDS", default=3.0)
EXTENSIONS_API_TIMEOUT_SECONDS = env.float("EXTENSIONS_API_TIMEOUT_SECONDS", default=3.0)
# The floating window (extensions/floating_window.py): how often it polls its feed while shown and,
# for the launcher's badge only, while hidden; the feed's page size cap and its database time budget.
EXTENSIONS_FLOATING_POLL_SECONDS = env.float("EXTENSIONS_FLOATING_POLL_SECONDS", default=5.0)
EXTENSIONS_FLOATING_HIDDEN_POLL_SECONDS = env.float("EXTENSIONS_FLOATING_HIDDEN_POLL_SECONDS", default=15.0)
EXTENSIONS_FLOATING_FEED_MAX_LIMIT = env.int("EXTENSIONS_FLOATING_FEED_MAX_LIMIT", default=50)
EXTENSIONS_FLOATING_FEED_BUDGET_MS = env.int("EXTENSIONS_FLOATING_FEED_BUDGET_MS", default=1500)

# --- Webhooks and change history (pipedrive_app/webhooks, pipedrive_app/history) --------------------
# The receiver answers 413 above this many bytes.
WEBHOOKS_MAX_BODY_BYTES = env.int("WEBHOOKS_MAX_BODY_BYTES", default=256 * 1024)
# A pending inbox event untouched for this long is re-queued by the sweeper (lost by broker/worker).
WEBHOOKS_SWEEP_AFTER_SECONDS = env.float("WEBHOOKS_SWEEP_AFTER_SECONDS", default=120)
# The inbox is the queue (webhooks/services/inbox.py, inbox_drain): a drain leases due rows in batches of
# WEBHOOKS_DRAIN_BATCH for WEBHOOKS_CLAIM_LEASE_SECONDS (a killed worker's rows are due again after
# that), and hands over to a fresh task after WEBHOOKS_DRAIN_BUDGET_SECONDS.
WEBHOOKS_CLAIM_LEASE_SECONDS = env.float("WEBHOOKS_CLAIM_LEASE_SECONDS", default=8)
WEBHOOKS_DRAIN_BATCH = env.int("WEBHOOKS_DRAIN_BATCH", default=10)
WEBHOOKS_DRAIN_BUDGET_SECONDS = env.float("WEBHOOKS_DRAIN_BUDGET_SECONDS", default=20)
# After its own event, each processing task takes one batch of rows due for this long (stragglers
# whose message was lost with a killed worker or a restarted broker, or waits behind a backlog).
WEBHOOKS_STRAGGLER_SECONDS = env.float("WEBHOOKS_STRAGGLER_SECONDS", default=5)
# Processing attempts before an event is dead-lettered; back-off between them (with jitter).
WEBHOOKS_PROCESSING_MAX_ATTEMPTS = env.int("WEBHOOKS_PROCESSING_MAX_ATTEMPTS", default=6)
WEBHOOKS_RETRY_BACKOFF_SECONDS = env.float("WEBHOOKS_RETRY_BACKOFF_SECONDS", default=5)
WEBHOOKS_RETRY_BACKOFF_MAX_SECONDS = env.float("WEBHOOKS_RETRY_BACKOFF_MAX_SECONDS", default=600)
# Processed inbox rows (the de-duplication window) are kept this long.
WEBHOOKS_INBOX_RETENTION_DAYS = env.int("WEBHOOKS_INBOX_RETENTION_DAYS", default=7)
WEBHOOKS_SUBSCRIPTION_NAME = env.str("WEBHOOKS_SUBSCRIPTION_NAME", default="Change history")
# An unknown custom field key refreshes the *Fields cache at most this often per company and entity.
HISTORY_FIELDS_REFRESH_MIN_SECONDS = env.int("HISTORY_FIELDS_REFRESH_MIN_SECONDS", default=60)

# --- Metrics: Prometheus at /metrics (pipedrive_app/metrics, docs/deployment.md "Monitoring") -------
# Off: no hook records anything and /metrics answers 404 (the webhook benchmark's switch).
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=True)
# Scrapers must send "Authorization: Bearer <METRICS_TOKEN>" and/or come from METRICS_ALLOWED_NETWORKS
# (comma-separated CIDRs, checked against the connecting address; with both set, both must hold).
# With neither set /metrics answers 404. DEBUG allows loopback by default.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"] if DEBUG else [])
try:
    _metrics_networks = [ipaddress.ip_network(net.strip(), strict=False) for net in METRICS_ALLOWED_NETWORKS]
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {exc}") from None
# Gauges computed at scrape time (inbox depth, queues, budget) are reused for this many seconds.
METRICS_SCRAPE_CACHE_SECONDS = env.int("METRICS_SCRAPE_CACHE_SECONDS", default=10)
# Multiprocess mode (gunicorn and Celery workers add up): every process of a host gets the same
# PROMETHEUS_MULTIPROC_DIR, an empty directory at boot (prometheus_client reads it from the environment).
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# --- Sandbox: the local Pipedrive stand-in (sandbox/README.md) ------------------------------------
# It has its own database alias so that its writes never wait for SQLite's writer lock, which the
# app holds while it refreshes a token. Unset knobs (None) take Pipedrive's documented values
# (sandbox/facts/limits.py, sandbox/facts/scopes.py).
SANDBOX_ACCESS_TOKEN_LIFETIME = env.int("SANDBOX_ACCESS_TOKEN_LIFETIME", default=None)
SANDBOX_APP_SCOPES = env.str("SANDBOX_APP_SCOPES", default=None)
SANDBOX_BURST_LIMIT = env.int("SANDBOX_BURST_LIMIT", default=None)
SANDBOX_BURST_WINDOW_SECONDS = env.float("SANDBOX_BURST_WINDOW_SECONDS", default=None)
SANDBOX_DAILY_BUDGET = env.int("SANDBOX_DAILY_BUDGET", default=None)
SANDBOX_WEBHOOK_DELAY_SCALE = env.float("SANDBOX_WEBHOOK_DELAY_SCALE", default=1.0)
# The app's name in the sandbox's Marketplace and consent page (Developer Hub's "App name").
SANDBOX_APP_NAME = env.str("SANDBOX_APP_NAME", default="Record history")
if PIPEDRIVE_SANDBOX:
    if not (DEBUG or TESTING or PIPEDRIVE_SANDBOX_FORCE):
        raise ImproperlyConfigured(
            "PIPEDRIVE_SANDBOX is on while DEBUG is off. The sandbox is a development stand-in for "
            "Pipedrive; set PIPEDRIVE_SANDBOX_FORCE=on if you really mean to serve it."
        )
    DATABASES["sandbox"] = env.db("SANDBOX_DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'sandbox.sqlite3'}")
    if DATABASES["sandbox"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["sandbox"].setdefault("OPTIONS", {}).update(
            {"transaction_mode": "IMMEDIATE", "timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"}
        )
        # A file, not memory: webhook retries and live-server threads open their own connections.
        DATABASES["sandbox"]["TEST"] = {
            "NAME": str(Path(tempfile.gettempdir()) / f"pipedrive-sandbox-test-{os.getpid()}.sqlite3")
        }
    DATABASE_ROUTERS = ["sandbox.routers.SandboxRouter"]


def _dev_fernet_key(secret: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()).decode()


# Fernet keys, newest first. Development derives one from SECRET_KEY so nothing is hard-coded.
TOKEN_ENCRYPTION_KEYS = env.list("TOKEN_ENCRYPTION_KEYS", default=[]) or ([_dev_fernet_key(SECRET_KEY)] if _DEV else [])
if not TOKEN_ENCRYPTION_KEYS:
    raise ImproperlyConfigured("TOKEN_ENCRYPTION_KEYS is not set; see .env.example.")

# --- Operators' dashboard: staff sign-in with django-allauth + TOTP (begin) ------------------------
# The dashboard's templates override allauth's, so the dashboard app comes before allauth.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_ADAPTER = "pipedrive_app.dashboard.adapters.OperatorAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"  # operators are created verified by `create_operator`
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
# Django users are operators only (Pipedrive users never get one): strong passwords.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_SESSION_REMEMBER = False
# ACCOUNT_RATE_LIMITS is left unset on purpose: allauth's default limits (login, failed logins,
# password reset, ...) stay on.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# TOTP and recovery-code seeds are encrypted at rest with TOKEN_ENCRYPTION_KEYS (dashboard/adapters.py).
MFA_ADAPTER = "pipedrive_app.dashboard.adapters.OperatorMFAAdapter"
MFA_TOTP_ISSUER = env.str("MFA_TOTP_ISSUER", default="Pipedrive app operators")
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard:overview"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
# Dashboard actions that call Pipedrive run as Celery tasks (eager in development).
DASHBOARD_PAGE_SIZE = env.int("DASHBOARD_PAGE_SIZE", default=50)
# --- Operators' dashboard (end) -------------------------------------------------------------------

# --- Error reporting (optional) ------------------------------------------------------------------
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    import sentry_sdk

    # Django and Celery integrations switch on by themselves; no personal data, no request bodies.
    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        send_default_pii=False,
        max_request_body_size="never",
    )

# --- Logging --------------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "pipedrive_app.core.logging.RedactSecretsFilter"},
        "request_id": {"()": "pipedrive_app.core.request_id.RequestIdFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "pipedrive_app.core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            # LOG_FORMAT=json for production log shippers; plain text for a terminal.
            "formatter": env.str("LOG_FORMAT", default="plain"),
            "filters": ["request_id", "redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # urllib3 logs full URLs at DEBUG; keep it quiet so query strings never reach a log.
        "urllib3": {"level": "WARNING"},
        "oauthlib": {"level": "WARNING"},
        "requests_oauthlib": {"level": "WARNING"},
        # runserver's request lines carry query strings (?code=...): through the redacting handler.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
