"""Gauges computed when ``/metrics`` is scraped: the inbox's depth, queue lengths, Pipedrive's daily
budget, installations and webhooks in the runbook's red states.

Each figure is cheap by construction and none names a company:

- inbox depth: pending and dead events are counted through the partial indexes the dashboard uses
  (``webhooks_inbox_pending_at`` / ``webhooks_inbox_dead_at``): the cost follows the number of open
  events, never the inbox's size; the oldest pending event is the first entry of the pending index.
  Processed events are not a depth (the dashboard's hourly counts show the flow).
- queue lengths: one pipelined ``LLEN`` per Celery queue (and its priority lists) on a Redis broker.
- the daily budget: the rate limiter's per-company counters for today, read with ``SCAN`` +
  ``MGET`` and reduced to a handful of aggregates (least left, companies below the reserve / a
  quarter / half) — never one series per company.

The results are kept in the cache for ``METRICS_SCRAPE_CACHE_SECONDS`` so several scrapers (or a
fast scrape interval) cost one computation. A part that fails (database or Redis down) is reported
as ``pipedrive_app_metrics_collector_up{collector=...} 0`` and the rest is still served.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .instruments import PREFIX

logger = logging.getLogger(__name__)

CACHE_KEY = "metrics:scrape-gauges:v1"
# kombu's Redis transport keeps a queue's messages of priority p > 0 in "<queue>\x06\x16<p>".
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)
MAX_BUDGET_KEYS = 200_000


@dataclass
class Gauge:
    name: str
    help: str
    labels: tuple[str, ...] = ()
    samples: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    def family(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(f"{PREFIX}_{self.name}", self.help, labels=list(self.labels))
        for values, value in self.samples:
            family.add_metric(list(values), value)
        return family


def _inbox_gauges() -> list[Gauge]:
    from django.db.models import Min
    from django.utils import timezone

    from pipedrive_app.webhooks.models import InboxEvent

    depth = Gauge("webhook_inbox_events", "Inbox events waiting (pending) or given up on (dead).", ("state",))
    for status in (InboxEvent.Status.PENDING, InboxEvent.Status.DEAD):
        # WHERE status = '...' is the partial indexes' predicate: an index-only count.
        count = InboxEvent.objects.filter(status=status).count()
        depth.samples.append(((str(status),), float(count)))
    oldest = InboxEvent.objects.filter(status=InboxEvent.Status.PENDING).aggregate(at=Min("received_at"))["at"]
    age = Gauge(
        "webhook_inbox_oldest_pending_seconds",
        "Age of the oldest pending inbox event (0 when none is pending): the live lag of history.",
    )
    age.samples.append(((), max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0))
    return [depth, age]


def _state_gauges() -> list[Gauge]:
    from django.db.models import Count

    from pipedrive_app.dashboard.selectors import Health, _health_filter
    from pipedrive_app.installations.models import Company, Installation

    installs = Gauge("installations", "Installations by status.", ("status",))
    by_status = dict(Installation.objects.order_by().values_list("status").annotate(n=Count("pk")))
    for status in Installation.Status:
        installs.samples.append(((str(status),), float(by_status.get(status, 0))))
    failing = Gauge(
        "installations_refresh_failing",
        "Active installations whose last token refresh failed (tokens untouched; retried).",
    )
    failing.samples.append(
        ((), float(Installation.objects.filter(status=Installation.Status.ACTIVE, refresh_failures__gt=0).count()))
    )
    webhooks = Gauge("webhook_companies", "Companies whose webhooks are unhealthy or unavailable.", ("health",))
    counted = Company.objects.aggregate(
        unhealthy=Count("pk", filter=_health_filter(Health.UNHEALTHY)),
        unavailable=Count("pk", filter=_health_filter(Health.UNAVAILABLE)),
    )
    for health in ("unhealthy", "unavailable"):
        webhooks.samples.append(((health,), float(counted[health] or 0)))
    companies = Gauge("companies", "Companies with the app installed.")
    companies.samples.append(((), float(Company.objects.count())))
    return [installs, failing, webhooks, companies]


def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)


def celery_queue_names() -> list[str]:
    names = [settings.CELERY_WEBHOOKS_QUEUE, settings.CELERY_PIPEDRIVE_QUEUE, settings.CELERY_TASK_DEFAULT_QUEUE]
    return list(dict.fromkeys(names))


def _queue_gauges() -> list[Gauge]:
    broker = settings.CELERY_BROKER_URL or ""
    if not broker.startswith(("redis://", "rediss://", "unix://")):
        return []  # eager (no broker) or not Redis: no cheap length to read
    client = _redis(broker)
    names = celery_queue_names()
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            for step in _PRIORITY_STEPS:
                pipe.llen(name if step == 0 else f"{name}{_PRIORITY_SEPARATOR}{step}")
        lengths = pipe.execute()
    gauge = Gauge("celery_queue_length", "Messages waiting in a Celery queue on the broker.", ("queue",))
    for index, name in enumerate(names):
        chunk = lengths[index * len(_PRIORITY_STEPS) : (index + 1) * len(_PRIORITY_STEPS)]
        gauge.samples.append(((name,), float(sum(int(n) for n in chunk))))
    return [gauge]


def _budget_counters() -> list[int]:
    """Tokens spent today by every company with a counter (the rate limiter's keys)."""
    from pipedrive_app.pipedrive import ratelimit

    day = int(ratelimit.wall_clock() // ratelimit.DAY)
    suffix = f":{day}"
    url = settings.RATE_LIMIT_REDIS_URL
    if not url:
        counters = getattr(ratelimit.local_store(), "_counters", {})
        return [int(v) for k, v in list(counters.items()) if k.startswith("budget:") and k.endswith(suffix)]
    client = _redis(url)
    spent: list[int] = []
    keys: list[bytes] = []
    for key in client.scan_iter(match=f"pdlimit:budget:*{suffix}", count=1000):
        keys.append(key)
        if len(keys) >= 1000:
            spent.extend(int(v) for v in client.mget(keys) if v is not None)
            keys = []
        if len(spent) >= MAX_BUDGET_KEYS:
            break
    if keys:
        spent.extend(int(v) for v in client.mget(keys) if v is not None)
    return spent


def _budget_gauges() -> list[Gauge]:
    budget = settings.PIPEDRIVE_DAILY_TOKEN_BUDGET
    reserve = settings.PIPEDRIVE_DAILY_TOKEN_RESERVE
    spent = _budget_counters()
    lefts = [max(0, budget - used) for used in spent]
    total = Gauge("pipedrive_daily_budget_tokens", "Pipedrive's daily token budget per company (configured).")
    total.samples.append(((), float(budget)))
    least = Gauge(
        "pipedrive_budget_left_min_tokens",
        "Least daily budget left today by any company (the full budget when none has spent).",
    )
    least.samples.append(((), float(min(lefts, default=budget))))
    used = Gauge("pipedrive_budget_spent_tokens", "Daily budget spent today, all companies together.")
    used.samples.append(((), float(sum(spent))))
    low = Gauge(
        "pipedrive_budget_low_companies",
        "Companies whose budget left today is below a mark: the reserve (background work pauses), "
        "a quarter, half of the budget.",
        ("below",),
    )
    for mark, limit in (("reserve", reserve), ("quarter", budget / 4), ("half", budget / 2)):
        low.samples.append(((mark,), float(sum(1 for left in lefts if left < limit))))
    return [total, least, used, low]


PARTS = (
    ("database", lambda: _inbox_gauges() + _state_gauges()),
    ("broker", _queue_gauges),
    ("budget", _budget_gauges),
)


def compute() -> list[Gauge]:
    """Every scrape-time gauge, plus whether each part could be read."""
    gauges: list[Gauge] = []
    up = Gauge("metrics_collector_up", "1 if this part of the scrape-time gauges could be read.", ("collector",))
    took = Gauge("metrics_collect_seconds", "Time spent computing the scrape-time gauges.")
    began = time.perf_counter()
    for name, part in PARTS:
        try:
            gauges.extend(part())
            up.samples.append(((name,), 1.0))
        except Exception as exc:  # a down service must not fail the whole scrape
            logger.warning("metrics: %s gauges unavailable (%s)", name, type(exc).__name__)
            up.samples.append(((name,), 0.0))
    took.samples.append(((), time.perf_counter() - began))
    return [*gauges, up, took]


def cached() -> list[Gauge]:
    seconds = settings.METRICS_SCRAPE_CACHE_SECONDS
    if seconds <= 0:
        return compute()
    try:
        found = cache.get(CACHE_KEY)
    except Exception:
        found = None
    if found is not None:
        return list(found)
    gauges = compute()
    with suppress(Exception):  # a cache that is down only costs the next scrape a computation
        cache.set(CACHE_KEY, gauges, seconds)
    return gauges


class ScrapeTimeCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        for gauge in cached():
            yield gauge.family()
