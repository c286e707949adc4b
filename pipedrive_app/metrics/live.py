"""The dashboard's live figures: history lag and acknowledgement latency over the last minutes.

The histograms in ``instruments`` count since each process started. To show "now", a snapshot of
their buckets (all processes added up, as a scrape sees them) is kept in the cache at most every
``SNAPSHOT_EVERY`` seconds, taken whenever ``/metrics`` is scraped or the dashboard is viewed; the
figures are the difference between the current buckets and the snapshot about ``WINDOW`` seconds
old, read like Prometheus' ``histogram_quantile``. The consecutive snapshots also give the
sparkline of the last hour. The live lag itself, the age of the oldest pending event, comes from
the database (the pending partial index: one index entry).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from django.core.cache import cache
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from prometheus_client.metrics_core import Metric

from .instruments import PREFIX

logger = logging.getLogger(__name__)

CACHE_KEY = "metrics:live-snapshots:v1"
SNAPSHOT_EVERY = 30.0
WINDOW = 300.0
KEEP = 3600.0 + 2 * SNAPSHOT_EVERY

# name -> (family, labels a sample must have)
SERIES: dict[str, tuple[str, dict[str, str]]] = {
    "lag": (f"{PREFIX}_webhook_history_lag_seconds", {}),
    "ack": (f"{PREFIX}_webhook_ack_seconds", {"outcome": "acknowledged"}),
}
# Targets: history within a second; Pipedrive waits 10 s for an acknowledgement.
THRESHOLDS = {"lag": (1.0, 10.0), "ack": (0.5, 5.0)}

Buckets = dict[str, float]  # upper bound (as text, "+Inf" last) -> cumulative count
Snapshot = tuple[float, dict[str, Buckets]]


def current_buckets(families: Iterable[Metric] | None = None) -> dict[str, Buckets]:
    """The histograms' cumulative buckets now, every process added up (as ``/metrics`` serves them)."""
    if families is None:
        from .views import registry

        families = registry(scrape_time=False).collect()
    wanted = {family: name for name, (family, _) in SERIES.items()}
    found: dict[str, Buckets] = {name: {} for name in SERIES}
    for family in families:
        name = wanted.get(family.name)
        if name is None:
            continue
        labels = SERIES[name][1]
        for sample in family.samples:
            if not sample.name.endswith("_bucket"):
                continue
            if any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            le = sample.labels["le"]
            found[name][le] = found[name].get(le, 0.0) + sample.value
    return found


def _bound(le: str) -> float:
    return math.inf if le == "+Inf" else float(le)


def quantile(q: float, buckets: Buckets) -> float | None:
    """``histogram_quantile``: linear within the bucket; None when nothing was observed."""
    ordered = sorted(((_bound(le), n) for le, n in buckets.items()), key=lambda pair: pair[0])
    if not ordered or ordered[-1][1] <= 0:
        return None
    total = ordered[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in ordered:
        if count >= rank:
            if math.isinf(upper):
                return lower  # beyond the last finite bound: say at least that
            inside = count - below
            return lower + (upper - lower) * ((rank - below) / inside if inside > 0 else 1.0)
        lower, below = upper, count
    return lower


def _minus(now: Buckets, then: Buckets) -> Buckets:
    delta = {le: n - then.get(le, 0.0) for le, n in now.items()}
    if any(n < 0 for n in delta.values()):  # a process restarted (counts reset): use what is there
        return dict(now)
    return delta


def snapshots_update(
    now: float | None = None, families: Iterable[Metric] | None = None
) -> tuple[list[Snapshot], dict[str, Buckets]]:
    """Read the current buckets, keep a snapshot if the last is old enough; return (history, now)."""
    moment = time.time() if now is None else now
    current = current_buckets(families)
    try:
        history: list[Snapshot] = list(cache.get(CACHE_KEY) or [])
    except Exception:
        history = []
    history = [snap for snap in history if snap[0] >= moment - KEEP]
    if not history or moment - history[-1][0] >= SNAPSHOT_EVERY:
        history.append((moment, current))
        with suppress(Exception):  # no cache: the figures cover the time since each process started
            cache.set(CACHE_KEY, history, int(KEEP) + 60)
    return history, current


@dataclass(frozen=True)
class Figure:
    p50: float | None
    p95: float | None
    count: int
    level: str  # ok | warn | bad | none
    picture: SafeString  # how the window's observations spread over the buckets
    trend: SafeString  # p95 per snapshot interval over the last hour; empty until there are a few


@dataclass(frozen=True)
class LiveFigures:
    lag: Figure
    ack: Figure
    window_seconds: int
    oldest_pending_seconds: float


def _level(name: str, value: float | None) -> str:
    if value is None:
        return "none"
    warn, bad = THRESHOLDS[name]
    return "bad" if value >= bad else "warn" if value >= warn else "ok"


def sparkline_svg(
    points: list[float | None], *, name: str, title: str, width: int = 220, height: int = 44
) -> SafeString:
    """p95 per snapshot interval, on a log scale (10 ms .. 1 h), with the target as a dashed line."""
    low, high = math.log10(0.01), math.log10(3600.0)
    pad = 3

    def y(value: float) -> float:
        clamped = min(max(math.log10(max(value, 0.01)), low), high)
        return pad + (height - 2 * pad) * (1 - (clamped - low) / (high - low))

    parts: list[str] = [
        format_html(
            '<svg class="spark" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}" '
            'xmlns="http://www.w3.org/2000/svg"><title>{}</title>',
            width,
            height,
            width,
            height,
            title,
            title,
        )
    ]
    warn = THRESHOLDS[name][0]
    parts.append(
        format_html('<line class="target" x1="0" x2="{}" y1="{}" y2="{}"/>', width, f"{y(warn):.1f}", f"{y(warn):.1f}")
    )
    step = width / max(len(points) - 1, 1)
    path: list[str] = []
    for i, value in enumerate(points):
        if value is None:
            continue
        x, py = i * step, y(value)
        path.append(f"{'M' if not path else 'L'}{x:.1f},{py:.1f}")
        parts.append(
            format_html(
                '<circle class="pt {}" cx="{}" cy="{}" r="2"><title>{}</title></circle>',
                _level(name, value),
                f"{x:.1f}",
                f"{py:.1f}",
                duration(value),
            )
        )
    if path:
        parts.insert(2, format_html('<path class="line" d="{}"/>', " ".join(path)))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated value is escaped or a number


def distribution_svg(buckets: Buckets, *, name: str, title: str, width: int = 260, height: int = 46) -> SafeString:
    """One bar per histogram bucket (how many observations fell in it), coloured by the bucket's
    upper bound against the target; the axis names the first, target and last bounds."""
    ordered = sorted(((_bound(le), n) for le, n in buckets.items()), key=lambda pair: pair[0])
    if not ordered:
        return mark_safe("")
    counts, below = [], 0.0
    for upper, cumulative in ordered:
        counts.append((upper, max(0.0, cumulative - below)))
        below = cumulative
    top = max((n for _, n in counts), default=0.0) or 1.0
    plot_h = height - 12
    slot = width / len(counts)
    parts: list[str] = [
        format_html(
            '<svg class="dist" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}" '
            'xmlns="http://www.w3.org/2000/svg"><title>{}</title>',
            width,
            height,
            width,
            height,
            title,
            title,
        ),
        format_html('<line class="base" x1="0" x2="{}" y1="{}" y2="{}"/>', width, plot_h, plot_h),
    ]
    warn = THRESHOLDS[name][0]
    lower = 0.0
    for i, (upper, n) in enumerate(counts):
        bar_h = max(1.0, plot_h * n / top) if n else 0.0
        span = f"{duration(lower)} to {duration(upper)}" if not math.isinf(upper) else f"over {duration(lower)}"
        parts.append(
            format_html(
                '<g><title>{}: {}</title><rect class="hit" x="{}" y="0" width="{}" height="{}"/>'
                '<rect class="bar {}" x="{}" y="{}" width="{}" height="{}"/></g>',
                span,
                int(n),
                f"{i * slot:.1f}",
                f"{slot:.1f}",
                plot_h,
                _level(name, upper if not math.isinf(upper) else lower * 2 or math.inf),
                f"{i * slot + 1:.1f}",
                f"{plot_h - bar_h:.1f}",
                f"{max(slot - 2, 1):.1f}",
                f"{bar_h:.1f}",
            )
        )
        if i == 0 or upper == warn or i == len(counts) - 2:
            parts.append(  # at the bucket's upper end
                format_html(
                    '<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>',
                    f"{(i + 1) * slot:.1f}",
                    height - 1,
                    duration(upper),
                )
            )
        lower = upper
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated value is escaped or a number


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _figure(name: str, history: list[Snapshot], current: dict[str, Buckets], now: float) -> Figure:
    baseline: Buckets = {}
    for moment, buckets in history:
        if moment <= now - WINDOW:
            baseline = buckets.get(name, {})
    if not baseline and len(history) > 1:
        baseline = history[0][1].get(name, {})
    recent = _minus(current.get(name, {}), baseline)
    trend: list[float | None] = []
    for (_, earlier), (_, later) in pairwise(history):
        trend.append(quantile(0.95, _minus(later.get(name, {}), earlier.get(name, {}))))
    if not history or history[-1][0] < now:
        trend.append(quantile(0.95, recent))
    p95 = quantile(0.95, recent)
    what = "History lag" if name == "lag" else "Acknowledgement"
    shown = [point for point in trend if point is not None]
    return Figure(
        p50=quantile(0.5, recent),
        p95=p95,
        count=int(recent.get("+Inf", 0.0)),
        level=_level(name, p95),
        picture=distribution_svg(recent, name=name, title=f"{what}: how many per bucket, last {int(WINDOW // 60)} min"),
        trend=sparkline_svg(trend[-120:], name=name, title=f"{what} p95, last hour")
        if len(shown) >= 3
        else mark_safe(""),
    )


def live_figures(*, now: float | None = None) -> LiveFigures:
    from django.db.models import Min
    from django.utils import timezone

    from pipedrive_app.webhooks.models import InboxEvent

    moment = time.time() if now is None else now
    history, current = snapshots_update(moment)
    oldest = InboxEvent.objects.filter(status=InboxEvent.Status.PENDING).aggregate(at=Min("received_at"))["at"]
    return LiveFigures(
        lag=_figure("lag", history, current, moment),
        ack=_figure("ack", history, current, moment),
        window_seconds=int(WINDOW),
        oldest_pending_seconds=max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0,
    )


def dashboard_context() -> dict[str, Any]:
    """The overview's live widget; never fails the page (``live`` is None when it cannot be read)."""
    from django.conf import settings

    if not settings.METRICS_ENABLED:
        return {"live": None}
    try:
        return as_context(live_figures())
    except Exception as exc:
        logger.warning("dashboard: live figures unavailable (%s)", type(exc).__name__)
        return {"live": None}


def as_context(figures: LiveFigures) -> dict[str, Any]:
    return {
        "live": figures,
        "live_lag_p50": duration(figures.lag.p50),
        "live_lag_p95": duration(figures.lag.p95),
        "live_ack_p50": duration(figures.ack.p50),
        "live_ack_p95": duration(figures.ack.p95),
        "live_oldest_pending": duration(figures.oldest_pending_seconds) if figures.oldest_pending_seconds else "none",
        "live_window_minutes": figures.window_seconds // 60,
    }
