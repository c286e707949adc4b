"""Server-rendered SVG bar charts: no JavaScript, no chart library, no external request.

A chart is a list of buckets (one bar each); each series is stacked upwards, or downwards when its
``direction`` is -1 (uninstalls below installs). Every bar has a <title> so hovering shows values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    css_class: str
    direction: int = 1


@dataclass(frozen=True)
class Bucket:
    label: str
    values: dict[str, int]


def time_buckets(
    *, counts: dict[tuple[datetime, str], int], start: datetime, step: timedelta, number: int, label_format: str
) -> list[Bucket]:
    """Every bucket from ``start`` on, empty ones included; ``counts`` maps (bucket start, key) to n."""
    by_time: dict[datetime, dict[str, int]] = {}
    for (when, key), n in counts.items():
        by_time.setdefault(when, {})[key] = n
    buckets = []
    for i in range(number):
        at = start + i * step
        buckets.append(Bucket(label=at.strftime(label_format), values=by_time.get(at, {})))
    return buckets


def _nice_ceiling(value: int) -> int:
    if value <= 5:
        return 5
    magnitude = 10 ** (len(str(value)) - 1)
    for factor in (1, 2, 2.5, 5, 10):
        top = int(factor * magnitude)
        if top >= value:
            return top
    return value


def bar_chart_svg(
    *,
    buckets: list[Bucket],
    series: list[Series],
    title: str,
    width: int = 720,
    height: int = 160,
    label_every: int = 1,
) -> SafeString:
    left, right, top, bottom = 40, 8, 8, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    ups = [sum(b.values.get(s.key, 0) for s in series if s.direction > 0) for b in buckets] or [0]
    downs = [sum(b.values.get(s.key, 0) for s in series if s.direction < 0) for b in buckets] or [0]
    has_down = any(s.direction < 0 for s in series)
    up_max = _nice_ceiling(max(ups))
    down_max = _nice_ceiling(max(downs)) if has_down else 0
    scale = plot_h / (up_max + down_max)
    zero_y = top + up_max * scale
    slot = plot_w / max(len(buckets), 1)
    bar_w = max(slot * 0.8, 1.0)
    parts: list[str] = [
        format_html(
            '<svg class="chart" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}" '
            'xmlns="http://www.w3.org/2000/svg"><title>{}</title>',
            width,
            height,
            title,
            title,
        ),
        format_html('<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>', left - 4, top + 8, up_max),
        format_html('<text class="axis" x="{}" y="{}" text-anchor="end">0</text>', left - 4, f"{zero_y + 3:.1f}"),
        format_html(
            '<line class="baseline" x1="{}" x2="{}" y1="{}" y2="{}"/>',
            left,
            width - right,
            f"{zero_y:.1f}",
            f"{zero_y:.1f}",
        ),
    ]
    if has_down:
        parts.append(
            format_html(
                '<text class="axis" x="{}" y="{}" text-anchor="end">-{}</text>', left - 4, height - bottom, down_max
            )
        )
    for i, bucket in enumerate(buckets):
        x = left + i * slot + (slot - bar_w) / 2
        up_y, down_y = zero_y, zero_y
        tooltip = escape(bucket.label + ": " + ", ".join(f"{s.label} {bucket.values.get(s.key, 0)}" for s in series))
        bars: list[str] = []
        for s in series:
            value = bucket.values.get(s.key, 0)
            if not value:
                continue
            h = value * scale
            if s.direction > 0:
                up_y -= h
                y = up_y
            else:
                y = down_y
                down_y += h
            bars.append(
                f'<rect class="{escape(s.css_class)}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}"/>'
            )
        # A transparent full-height rect gives every bucket a hover target and a tooltip.
        parts.append(
            f'<g><title>{tooltip}</title><rect class="hit" x="{left + i * slot:.1f}" y="{top}" '
            f'width="{slot:.1f}" height="{plot_h}"/>{"".join(bars)}</g>'
        )
        if i % label_every == 0:
            parts.append(
                format_html(
                    '<text class="axis" x="{}" y="{}" text-anchor="start">{}</text>',
                    f"{left + i * slot:.1f}",
                    height - 6,
                    bucket.label,
                )
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated value above is escaped
