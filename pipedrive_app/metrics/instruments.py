"""Every Prometheus metric the app records, and the one-line hooks that record them.

This is the only module that defines metrics (scrape-time gauges computed from the database and
Redis are in ``collectors``). The code paths call a hook from here, or are wrapped by one:

- the webhook receiver (``webhook_receiver``, wrapped in webhooks/urls.py): received, acknowledged,
  refused by reason, acknowledgement latency;
- webhook processing (``inbox_event_outcome`` on the processing step, whichever task or drain runs
  it): outcomes, dead events and the delivery-to-history lag; ``event_replayed`` in the replay service;
- the OAuth client's refresh (``token_refresh``): refreshes by outcome and their latency;
- the Pipedrive API client's transport (``pipedrive_call``): calls by endpoint and status, latency, 429s;
- the extension guards (``panel_timed``): panel render time by surface and outcome.

Labels are bounded and carry nothing of a company's: endpoints are templated (ids become ``{id}``)
and capped, reasons and outcomes are fixed words; no token, email, name or title is ever a label.

Multiprocess: with ``PROMETHEUS_MULTIPROC_DIR`` set (before this module is imported), every process
(gunicorn workers, Celery workers) writes its values to files there and ``/metrics`` adds them up.
Without it, values live in this process (``make run``, tests). ``METRICS_ENABLED=off`` turns the
hooks into no-ops (the wrappers return the wrapped function unchanged): the benchmark's switch.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import Counter, Histogram, disable_created_metrics

# No "<name>_created" series beside every counter and histogram: they double what is scraped for nothing.
disable_created_metrics()

F = TypeVar("F", bound=Callable[..., Any])

PREFIX = "pipedrive_app"

# Seconds. Pipedrive gives a delivery 10 s; the receiver should answer in milliseconds.
ACK_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# History should follow a delivery within a second; a backlog shows as minutes.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
CALL_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PANEL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)

# --- webhooks --------------------------------------------------------------------------------------

WEBHOOK_RECEIVED = Counter(
    f"{PREFIX}_webhook_deliveries_received", "Webhook deliveries that reached the receiver view."
)
WEBHOOK_ACKNOWLEDGED = Counter(
    f"{PREFIX}_webhook_deliveries_acknowledged",
    "Deliveries answered 200 (stored; duplicate=true: an event already in the inbox).",
    ["duplicate"],
)
WEBHOOK_REFUSED = Counter(
    f"{PREFIX}_webhook_deliveries_refused", "Deliveries answered with an error, by reason.", ["reason"]
)
WEBHOOK_ACK_SECONDS = Histogram(
    f"{PREFIX}_webhook_ack_seconds",
    "Time from the receiver view being called to its answer (acknowledged or refused).",
    ["outcome"],
    buckets=ACK_BUCKETS,
)
HISTORY_LAG_SECONDS = Histogram(
    f"{PREFIX}_webhook_history_lag_seconds",
    "Time from a delivery being stored to its processing (history rows) being committed.",
    buckets=LAG_BUCKETS,
)
EVENTS_PROCESSED = Counter(
    f"{PREFIX}_webhook_events_processed",
    "Processing attempts of inbox events by outcome (processed, skipped, unprocessable, dead, retry, error).",
    ["outcome"],
)
EVENTS_DEAD = Counter(f"{PREFIX}_webhook_events_dead", "Inbox events that went dead (gave up after retries).")
EVENTS_REPLAYED = Counter(f"{PREFIX}_webhook_events_replayed", "Dead inbox events given another set of attempts.")

# --- tokens and the Pipedrive API ------------------------------------------------------------------

TOKEN_REFRESHES = Counter(
    f"{PREFIX}_token_refreshes",
    "Token refreshes at Pipedrive's OAuth server, by outcome (ok, rejected: needs re-auth, failed).",
    ["outcome"],
)
TOKEN_REFRESH_SECONDS = Histogram(
    f"{PREFIX}_token_refresh_seconds", "Duration of token refresh calls.", ["outcome"], buckets=CALL_BUCKETS
)
PIPEDRIVE_REQUESTS = Counter(
    f"{PREFIX}_pipedrive_requests",
    "Pipedrive API requests by templated endpoint, method and status (error: no HTTP answer).",
    ["endpoint", "method", "status"],
)
PIPEDRIVE_REQUEST_SECONDS = Histogram(
    f"{PREFIX}_pipedrive_request_seconds", "Pipedrive API request duration.", ["endpoint"], buckets=CALL_BUCKETS
)
PIPEDRIVE_RATE_LIMITED = Counter(
    f"{PREFIX}_pipedrive_rate_limited", "Pipedrive API answers 429 (rate limited), by endpoint.", ["endpoint"]
)

# --- app extensions --------------------------------------------------------------------------------

PANEL_RENDER_SECONDS = Histogram(
    f"{PREFIX}_panel_render_seconds",
    "Server time of an extension surface (panel, JSON panel, settings page), by outcome.",
    ["surface", "outcome"],
    buckets=PANEL_BUCKETS,
)


# --- the switch --------------------------------------------------------------------------------------


def enabled() -> bool:
    """``METRICS_ENABLED`` (default on); read when a hook is installed, so off costs nothing."""
    try:
        from django.conf import settings

        return bool(getattr(settings, "METRICS_ENABLED", True))
    except Exception:  # settings not configured (a bare process)
        return True


# --- the receiver ------------------------------------------------------------------------------------

_REFUSAL_REASONS = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "unknown_url",
    405: "method_not_allowed",
    413: "too_large",
    429: "throttled",
}
_ACK_NEW = WEBHOOK_ACKNOWLEDGED.labels(duplicate="false")
_ACK_DUPLICATE = WEBHOOK_ACKNOWLEDGED.labels(duplicate="true")
_ACK_OK_SECONDS = WEBHOOK_ACK_SECONDS.labels(outcome="acknowledged")
_ACK_REFUSED_SECONDS = WEBHOOK_ACK_SECONDS.labels(outcome="refused")


def refusal_reason(status: int) -> str:
    if status >= 500:
        return "error"
    return _REFUSAL_REASONS.get(status, "other")


def webhook_receiver(view: F) -> F:
    """Wrap the receiver view: count the delivery, its answer and how long the answer took."""
    if not enabled():
        return view

    @functools.wraps(view)
    def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        WEBHOOK_RECEIVED.inc()
        try:
            response = view(request, *args, **kwargs)
        except BaseException:
            WEBHOOK_REFUSED.labels(reason="error").inc()
            _ACK_REFUSED_SECONDS.observe(time.perf_counter() - began)
            raise
        status = response.status_code
        if status < 300:
            duplicate = not getattr(response, "streaming", False) and b'"duplicate": true' in response.content
            (_ACK_DUPLICATE if duplicate else _ACK_NEW).inc()
            _ACK_OK_SECONDS.observe(time.perf_counter() - began)
        else:
            WEBHOOK_REFUSED.labels(reason=refusal_reason(status)).inc()
            _ACK_REFUSED_SECONDS.observe(time.perf_counter() - began)
        return response

    return wrapped  # type: ignore[return-value]


# --- processing ---------------------------------------------------------------------------------------

_PROCESS_OUTCOMES = frozenset({"processed", "skipped", "unprocessable", "dead", "retry", "error"})


def history_lag_observe(seconds: float) -> None:
    HISTORY_LAG_SECONDS.observe(max(0.0, seconds))


def inbox_event_finished(outcome: str) -> None:
    """The processing task ended with ``outcome`` (its return value, or ``retry``)."""
    outcome = outcome if outcome in _PROCESS_OUTCOMES else "other"
    EVENTS_PROCESSED.labels(outcome=outcome).inc()
    if outcome == "dead":
        EVENTS_DEAD.inc()


def inbox_event_outcome(process: F) -> F:
    """Wrap ``inbox_event_process`` (the task's and the drains' one step): count how each attempt
    ended, its return value, ``retry`` (InboxEventRetry) or ``error`` (anything else raised)."""
    if not enabled():
        return process

    @functools.wraps(process)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            outcome = process(*args, **kwargs)
        except Exception as exc:
            inbox_event_finished("retry" if type(exc).__name__ == "InboxEventRetry" else "error")
            raise
        inbox_event_finished(outcome if isinstance(outcome, str) else "other")
        if outcome == "processed":
            _history_lag_record(kwargs.get("inbox_event_id", args[0] if args else None))
        return outcome

    return wrapped  # type: ignore[return-value]


def _history_lag_record(inbox_event_id: Any) -> None:
    """Committed just now: observe received -> processed (one primary-key read of two columns)."""
    from pipedrive_app.webhooks.models import InboxEvent

    times = InboxEvent.objects.filter(pk=inbox_event_id).values_list("received_at", "processed_at").first()
    if times is not None and times[0] is not None and times[1] is not None:
        history_lag_observe((times[1] - times[0]).total_seconds())


def event_replayed(count: int = 1) -> None:
    if count:
        EVENTS_REPLAYED.inc(count)


# --- token refresh --------------------------------------------------------------------------------------


def token_refresh(method: F) -> F:
    """Wrap ``PipedriveOAuth.refresh``: outcome ok, rejected (invalid_grant: re-auth) or failed."""
    from pipedrive_app.pipedrive.errors import InvalidGrant

    if not enabled():
        return method

    @functools.wraps(method)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        outcome = "failed"
        try:
            result = method(*args, **kwargs)
            outcome = "ok"
            return result
        except InvalidGrant:
            outcome = "rejected"
            raise
        finally:
            TOKEN_REFRESHES.labels(outcome=outcome).inc()
            TOKEN_REFRESH_SECONDS.labels(outcome=outcome).observe(time.perf_counter() - began)

    return wrapped  # type: ignore[return-value]


# --- Pipedrive API calls ------------------------------------------------------------------------------------

# Ids (numbers, UUIDs, long hex or token-like strings) become {id}; anything else that does not look
# like Pipedrive's API paths becomes "other"; and a process tracks at most MAX_ENDPOINTS templates.
MAX_ENDPOINTS = 60
_ID_SEGMENT = re.compile(r"^(\d+|[0-9a-fA-F-]{16,}|[A-Za-z0-9_-]{24,})$")
_WORD_SEGMENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,40}$")
_endpoints: dict[str, str] = {}
_endpoints_lock = threading.Lock()
_STATUS_WORDS = frozenset({200, 201, 204, 400, 401, 402, 403, 404, 409, 410, 422, 429, 500, 502, 503, 504})


def endpoint_template(path: str) -> str:
    """``/api/v2/deals/42`` -> ``/api/v2/deals/{id}``; bounded (see MAX_ENDPOINTS)."""
    known = _endpoints.get(path)
    if known is not None:
        return known
    segments = path.split("?", 1)[0].strip("/").split("/")
    parts: list[str] = []
    for segment in segments:
        if _ID_SEGMENT.match(segment):
            parts.append("{id}")
        elif _WORD_SEGMENT.match(segment):
            parts.append(segment)
        else:
            return "other"
    template = "/" + "/".join(parts)
    if len(parts) < 3 or parts[0] != "api":
        template = "other"
    with _endpoints_lock:
        if len(_endpoints) >= MAX_ENDPOINTS * 8:  # raw paths seen; keep the memo bounded too
            _endpoints.clear()
        if template not in _endpoints.values() and len(set(_endpoints.values())) >= MAX_ENDPOINTS:
            template = "other"
        _endpoints[path] = template
    return template


def status_label(status: int | None) -> str:
    if status is None:
        return "error"
    return str(status) if status in _STATUS_WORDS else f"{status // 100}xx"


def pipedrive_call(send: F) -> F:
    """Wrap ``PipedriveClient._send(self, method, path, ...)``: one HTTP request to Pipedrive."""
    if not enabled():
        return send

    @functools.wraps(send)
    def wrapped(self: Any, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        status: int | None = None
        try:
            response = send(self, method, path, *args, **kwargs)
            status = int(response.status_code)
            return response
        finally:
            endpoint = endpoint_template(path)
            PIPEDRIVE_REQUESTS.labels(endpoint=endpoint, method=method.upper()[:7], status=status_label(status)).inc()
            PIPEDRIVE_REQUEST_SECONDS.labels(endpoint=endpoint).observe(time.perf_counter() - began)
            if status == 429:
                PIPEDRIVE_RATE_LIMITED.labels(endpoint=endpoint).inc()

    return wrapped  # type: ignore[return-value]


# --- extension surfaces ---------------------------------------------------------------------------------------

SURFACES = frozenset(
    {"deal_panel", "person_panel", "deal_json_panel", "person_json_panel", "settings_page", "floating_window"}
)
_JSON_OUTCOMES = {401: "needs_reauth", 403: "refused", 404: "not_found", 429: "rate_limited", 503: "unavailable"}
_OUTCOMES = frozenset(
    {
        "ok",
        "not_installed",
        "needs_reauth",
        "rate_limited",
        "unavailable",
        "not_found",
        "forbidden",
        "refused",
        "error",
        "method_not_allowed",
    }
)


def panel_outcome(response: Any) -> str:
    """The state a state page showed (``response.panel_outcome``), else one named by the status."""
    named = getattr(response, "panel_outcome", None)
    if isinstance(named, str):
        return named if named in _OUTCOMES else "other"
    status = int(getattr(response, "status_code", 500))
    if status < 300:
        return "ok"
    if status == 405:
        return "method_not_allowed"
    if status >= 500 and status != 503:
        return "error"
    return _JSON_OUTCOMES.get(status, "refused")


def panel_timed(surface: str, view: F) -> F:
    """Wrap an extension view: its server time by surface and outcome."""
    if not enabled():
        return view
    surface = surface if surface in SURFACES else "other"

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        outcome = "error"
        try:
            response = view(*args, **kwargs)
            outcome = panel_outcome(response)
            return response
        finally:
            PANEL_RENDER_SECONDS.labels(surface=surface, outcome=outcome).observe(time.perf_counter() - began)

    return wrapped  # type: ignore[return-value]
