"""How many deliveries arrived per hour, at a cost that does not grow with the inbox.

An event's ``received_at`` is its arrival time, so once an hour is over its count never changes.
Each closed hour is counted once (one grouped query over the hours not yet counted, served by the
``received_at`` index) and kept in ``InboxHourlyCount``; only the hour in progress is counted live.
The overview therefore reads 168 small rows and one hour of the inbox, whether the inbox holds a
thousand events or twenty million, and the counts outlive the purge of processed events.

The beat task ``dashboard.count_inbox_hours`` counts each hour once it has been over for ``SETTLE``
(so a delivery committed a moment after the hour turned is not missed), every few minutes. Pages
only read: hours not counted yet (beat stopped, a fresh database) are counted live, so the figures
are right either way and only the cost differs.

Pending and dead events are read live (they are few, and their state changes), through the
partial indexes ``webhooks_inbox_pending_at`` and ``webhooks_inbox_dead_at``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import CharField, Count, Func
from django.utils import timezone

from pipedrive_app.webhooks.models import InboxEvent

from .models import InboxHourlyCount

HOUR = timedelta(hours=1)
OPEN_STATUSES = (InboxEvent.Status.PENDING, InboxEvent.Status.DEAD)
# A delivery stamped 10:59:59.9 may commit just after 11:00; an hour is counted once it has been over
# for this long.
SETTLE = timedelta(minutes=2)


class TimeKey(Func):
    """A timestamp as sortable text cut to the hour ('YYYY-MM-DD HH') or the day ('YYYY-MM-DD').

    Django's TruncHour/TruncDate run a Python function per row on SQLite; SQLite stores UTC
    timestamps as ISO text, so a substring is the same key, natively.
    """

    output_field = CharField()

    def __init__(self, expression: Any, *, hourly: bool) -> None:
        self.hourly = hourly
        super().__init__(expression)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template=f"substr(%(expressions)s, 1, {13 if self.hourly else 10})")

    def as_sql(self, compiler: Any, connection: Any, template: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        if template is None:
            pattern = "YYYY-MM-DD HH24" if self.hourly else "YYYY-MM-DD"
            template = f"to_char(%(expressions)s AT TIME ZONE 'UTC', '{pattern}')"
        return super().as_sql(compiler, connection, template=template, **extra)


def time_key_parse(key: str, *, hourly: bool) -> datetime:
    parsed = datetime.strptime(key.replace("T", " "), "%Y-%m-%d %H" if hourly else "%Y-%m-%d")
    return parsed.replace(tzinfo=UTC)


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _received_by_hour(*, start: datetime, end: datetime | None) -> dict[datetime, int]:
    events = InboxEvent.objects.filter(received_at__gte=start)
    if end is not None:
        events = events.filter(received_at__lt=end)
    rows = events.annotate(hour=TimeKey("received_at", hourly=True)).order_by().values("hour").annotate(n=Count("*"))
    return {time_key_parse(row["hour"], hourly=True): row["n"] for row in rows}


def settled_until(*, now: datetime) -> datetime:
    """Hours before this instant are over (and settled) and are counted once; later ones live."""
    return hour_floor(now - SETTLE)


def inbox_hours_count(*, start: datetime, now: datetime | None = None) -> int:
    """Count and keep every settled hour from ``start`` on that has no count yet; returns how many.

    Concurrent callers may both count an hour: the unique ``hour`` makes the second insert a no-op,
    and both computed the same number.
    """
    now = now or timezone.now()
    start, until = hour_floor(start), settled_until(now=now)
    wanted = {start + i * HOUR for i in range(int((until - start) / HOUR))}
    if not wanted:
        return 0
    have = set(InboxHourlyCount.objects.filter(hour__gte=start, hour__lt=until).values_list("hour", flat=True))
    missing = sorted(wanted - have)
    if not missing:
        return 0
    received = _received_by_hour(start=missing[0], end=missing[-1] + HOUR)
    InboxHourlyCount.objects.bulk_create(
        [InboxHourlyCount(hour=hour, received=received.get(hour, 0), counted_at=now) for hour in missing],
        ignore_conflicts=True,
    )
    return len(missing)


def received_per_hour(*, start: datetime, now: datetime) -> dict[datetime, int]:
    """Deliveries received per hour from ``start`` (an hour boundary) to ``now``; two queries.

    Hours already counted come from ``InboxHourlyCount``; everything after the last counted hour
    (normally just the hour in progress) is counted live. Nothing is written here: the beat task
    keeps the counts up to date.
    """
    until = settled_until(now=now)
    counted = dict(InboxHourlyCount.objects.filter(hour__gte=start, hour__lt=until).values_list("hour", "received"))
    live_from = start
    while live_from in counted:
        live_from += HOUR
    counts = {hour: n for hour, n in counted.items() if hour < live_from}
    counts.update(_received_by_hour(start=live_from, end=None))
    return counts


def open_events_per_hour(*, start: datetime) -> dict[tuple[datetime, str], int]:
    """Pending and dead events per (hour received, status) from ``start`` on.

    One query per status, each answered from its own partial index on ``received_at`` (an index-only
    scan once autovacuum has seen the pages): the cost follows the number of open events, not the
    size of the inbox. ``COUNT(*)``, not ``COUNT(id)``: the id is not in the index.
    """
    counts: dict[tuple[datetime, str], int] = {}
    for status in OPEN_STATUSES:
        rows = (
            InboxEvent.objects.filter(status=status, received_at__gte=start)
            .annotate(hour=TimeKey("received_at", hourly=True))
            .order_by()
            .values("hour")
            .annotate(n=Count("*"))
        )
        for row in rows:
            counts[(time_key_parse(row["hour"], hourly=True), str(status))] = row["n"]
    return counts
