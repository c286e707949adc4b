"""Reads for the dashboard. Every list runs a fixed number of queries whatever its row count.

Company lists are paginated in two steps: first the page's primary keys (filtered, ordered,
sliced), then the annotated rows for just those keys, so the per-row subqueries run for one page
only, never for every company.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, IntegerField, Max, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.functional import cached_property

from pipedrive_app.core.parsing import id_or_none
from pipedrive_app.history.models import ChangeRecord
from pipedrive_app.installations.models import Company, CompanySettings, Installation, LifecycleEvent
from pipedrive_app.webhooks.models import CompanyWebhookState, InboxEvent, Subscription

from .charts import Bucket, Series, bar_chart_svg, time_buckets
from .inbox_counts import TimeKey, hour_floor, open_events_per_hour, received_per_hour, time_key_parse
from .models import AuditEntry, OperatorAction
from .payload_masking import payload_mask

# --- Webhook health -------------------------------------------------------------------------------


class Health:
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNAVAILABLE = "unavailable"
    PENDING = "pending"
    CHOICES = (
        (HEALTHY, "Healthy"),
        (UNHEALTHY, "Unhealthy"),
        (UNAVAILABLE, "Unavailable"),
        (PENDING, "Not provisioned"),
    )


def _failing_subscription_q(prefix: str = "") -> Q:
    """A subscription Pipedrive removed, deactivated, or whose last delivery was not a 2xx."""
    return (
        Q(**{f"{prefix}is_active": False})
        | ~Q(**{f"{prefix}remove_reason": ""})
        | Q(**{f"{prefix}last_http_status__gte": 300})
        | Q(**{f"{prefix}last_http_status__lt": 200})
        | ~Q(**{f"{prefix}last_error": ""})
    )


def _health_filter(health: str) -> Q:
    available = Q(webhook_state__status=CompanyWebhookState.Status.AVAILABLE)
    failing = Exists(Subscription.objects.filter(_failing_subscription_q(), company=OuterRef("pk")))
    if health == Health.UNAVAILABLE:
        return Q(webhook_state__status=CompanyWebhookState.Status.UNAVAILABLE)
    if health == Health.PENDING:
        return Q(webhook_state__isnull=True) | Q(webhook_state__status=CompanyWebhookState.Status.PENDING)
    if health == Health.UNHEALTHY:
        return available & Q(failing)
    if health == Health.HEALTHY:
        return available & ~Q(failing)
    return Q()


def _row_health(*, state_status: str | None, failing: int) -> str:
    if state_status == CompanyWebhookState.Status.UNAVAILABLE:
        return Health.UNAVAILABLE
    if state_status != CompanyWebhookState.Status.AVAILABLE:
        return Health.PENDING
    return Health.UNHEALTHY if failing else Health.HEALTHY


# --- Companies list -------------------------------------------------------------------------------


class CompanyStatus:
    ACTIVE = "active"
    NEEDS_REAUTH = "needs_reauth"
    NO_ACTIVE = "no_active"
    CHOICES = (
        (ACTIVE, "Has an active installation"),
        (NEEDS_REAUTH, "Needs re-auth"),
        (NO_ACTIVE, "No active installation"),
    )


def _installations_with(status: str) -> Exists:
    return Exists(Installation.objects.filter(company=OuterRef("pk"), status=status))


def _count_subquery(queryset: QuerySet[Any]) -> Coalesce:
    counted = queryset.order_by().values("company").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def company_list_filtered(*, search: str = "", status: str = "", health: str = "") -> QuerySet[Company]:
    queryset = Company.objects.all()
    search = search.strip()
    if search:
        condition = Q(name__icontains=search) | Q(domain__icontains=search)
        search_id = id_or_none(value=search)  # strict: "²" or 5,000 digits are text, not an id
        if search_id is not None:
            condition |= Q(pipedrive_company_id=search_id)
        queryset = queryset.filter(condition)
    if status == CompanyStatus.ACTIVE:
        queryset = queryset.filter(_installations_with(Installation.Status.ACTIVE))
    elif status == CompanyStatus.NEEDS_REAUTH:
        queryset = queryset.filter(_installations_with(Installation.Status.NEEDS_REAUTH))
    elif status == CompanyStatus.NO_ACTIVE:
        queryset = queryset.filter(~_installations_with(Installation.Status.ACTIVE))
    if health:
        queryset = queryset.filter(_health_filter(health))
    return queryset


def company_list_page(
    *, search: str = "", status: str = "", health: str = "", page: int | str = 1
) -> tuple[Page, list[Any]]:
    """One page of companies with their installation counts, webhook health and 24 h events.

    Three queries: the count, the page's keys, the annotated rows.
    """
    keys = (
        company_list_filtered(search=search, status=status, health=health)
        .order_by("name", "pk")
        .values_list("pk", flat=True)
    )
    paginator = Paginator(keys, settings.DASHBOARD_PAGE_SIZE)
    page_obj = paginator.get_page(page)
    page_keys = list(page_obj.object_list)
    since = timezone.now() - timedelta(hours=24)
    rows: list[Any] = list(
        Company.objects.filter(pk__in=page_keys)
        .annotate(
            active_installations=_count_subquery(
                Installation.objects.filter(company=OuterRef("pk"), status=Installation.Status.ACTIVE)
            ),
            reauth_installations=_count_subquery(
                Installation.objects.filter(company=OuterRef("pk"), status=Installation.Status.NEEDS_REAUTH)
            ),
            webhook_status=Subquery(CompanyWebhookState.objects.filter(company=OuterRef("pk")).values("status")[:1]),
            failing_subscriptions=_count_subquery(
                Subscription.objects.filter(_failing_subscription_q(), company=OuterRef("pk"))
            ),
            events_24h=_count_subquery(InboxEvent.objects.filter(company=OuterRef("pk"), received_at__gte=since)),
            dead_events=_count_subquery(
                InboxEvent.objects.filter(company=OuterRef("pk"), status=InboxEvent.Status.DEAD)
            ),
        )
        .order_by("name", "pk")
    )
    for row in rows:
        row.health = _row_health(state_status=row.webhook_status, failing=row.failing_subscriptions)
    return page_obj, rows


# --- Company page ---------------------------------------------------------------------------------


@dataclass
class CompanyDetail:
    company: Company
    installations: list[Installation]
    webhook_state: CompanyWebhookState | None
    subscriptions: list[Subscription]
    health: str
    recent_events: list[InboxEvent]
    event_counts: dict[str, int]
    history_counts: dict[str, int]
    actions: list[OperatorAction]

    @property
    def has_running_actions(self) -> bool:
        return any(not a.is_finished for a in self.actions)


def company_get(*, company_id: int) -> Company | None:
    return Company.objects.filter(pk=company_id).first()


def _history_counts(*, company: Company) -> dict[str, int]:
    rows = ChangeRecord.objects.filter(company=company).order_by().values("entity").annotate(n=Count("pk"))
    return {row["entity"]: row["n"] for row in rows}


def company_detail(*, company: Company, recent: int = 20) -> CompanyDetail:
    state = CompanyWebhookState.objects.filter(company=company).first()
    subscriptions = list(Subscription.objects.filter(company=company).order_by("event_object"))
    failing = sum(
        1
        for s in subscriptions
        if s.is_active is False
        or s.remove_reason
        or s.last_error
        or (s.last_http_status is not None and not 200 <= s.last_http_status < 300)
    )
    counts = {
        row["status"]: row["n"]
        for row in InboxEvent.objects.filter(company=company).order_by().values("status").annotate(n=Count("pk"))
    }
    _subscriptions_last_received(company, subscriptions)
    return CompanyDetail(
        company=company,
        # Only fields an operator needs: never a token.
        installations=list(company.installations.order_by("-is_admin", "pk").defer("access_token", "refresh_token")),
        webhook_state=state,
        subscriptions=subscriptions,
        health=_row_health(state_status=state.status if state else None, failing=failing),
        recent_events=list(
            InboxEvent.objects.filter(company=company).defer("body").order_by("-received_at", "-pk")[:recent]
        ),
        event_counts=counts,
        history_counts=_history_counts(company=company),
        actions=list(OperatorAction.objects.filter(company=company).order_by("-created_at", "-pk")[:10]),
    )


def _subscriptions_last_received(company: Company, subscriptions: list[Subscription]) -> None:
    """Each subscription's last delivery as this app received it (``last_received_at``): Pipedrive's
    own ``last_delivery_time`` is only as fresh as the last reconcile that read it."""
    latest = {
        (row["entity"], row["version"]): row["last"]
        for row in InboxEvent.objects.filter(company=company)
        .order_by()
        .values("entity", "version")
        .annotate(last=Max("received_at"))
    }
    for subscription in subscriptions:
        if subscription.event_object == "*":
            times = [at for (_, version), at in latest.items() if version == subscription.version]
        else:
            times = [latest[key] for key in [(subscription.event_object, subscription.version)] if key in latest]
        pipedrive_time = subscription.last_delivery_time
        subscription.last_received_at = max([*times, *([pipedrive_time] if pipedrive_time else [])], default=None)  # type: ignore[attr-defined]


def operator_action_get(*, action_id: int) -> OperatorAction | None:
    return OperatorAction.objects.filter(pk=action_id).first()


# --- Overview -------------------------------------------------------------------------------------

EVENT_SERIES = [
    Series("processed", "processed", "s-ok"),
    Series("pending", "pending", "s-pending"),
    Series("dead", "dead", "s-bad"),
]
LIFECYCLE_SERIES = [
    Series("installs", "installs", "s-ok"),
    Series("uninstalls", "uninstalls", "s-bad", direction=-1),
]


def overview_stats(*, now: datetime | None = None, chart_days: int = 30) -> dict[str, Any]:
    now = now or timezone.now()
    installations = Installation.objects.aggregate(
        active=Count("pk", filter=Q(status=Installation.Status.ACTIVE)),
        needs_reauth=Count("pk", filter=Q(status=Installation.Status.NEEDS_REAUTH)),
        uninstalled=Count("pk", filter=Q(status=Installation.Status.UNINSTALLED)),
    )
    companies = Company.objects.aggregate(
        total=Count("pk"),
        active=Count("pk", filter=Q(_installations_with(Installation.Status.ACTIVE))),
        needs_reauth=Count("pk", filter=Q(_installations_with(Installation.Status.NEEDS_REAUTH))),
    )
    # An uninstalled company's row is gone; its LifecycleEvent remains. A company that came back
    # (reinstalled) is not counted as uninstalled.
    uninstalled_companies = (
        LifecycleEvent.objects.filter(kind=LifecycleEvent.Kind.COMPANY_UNINSTALLED)
        .exclude(pipedrive_company_id__in=Company.objects.values("pipedrive_company_id"))
        .values("pipedrive_company_id")
        .distinct()
        .count()
    )
    webhooks = Company.objects.aggregate(
        unhealthy=Count("pk", filter=_health_filter(Health.UNHEALTHY)),
        unavailable=Count("pk", filter=_health_filter(Health.UNAVAILABLE)),
    )
    # The last 24 hours, to the hour: the current hour and the 23 before it (one chart's worth of
    # counts; see inbox_counts.py for why this does not grow with the inbox).
    hourly = _events_per_hour(now=now, days=7)
    day_start = hour_floor(now) - timedelta(hours=23)
    events = {"received": 0, "processed": 0, "dead": 0, "pending": 0}
    for (hour, status), n in hourly[1].items():
        if hour >= day_start:
            events[status] += n
    events["received"] = events["processed"] + events["dead"] + events["pending"]
    return {
        "companies": {**companies, "uninstalled": uninstalled_companies},
        "installations": installations,
        "webhooks": webhooks,
        "events": events,
        "events_chart": events_per_hour_chart(now=now, hourly=hourly),
        "lifecycle_chart": installs_per_day_chart(now=now, days=chart_days),
        "event_series": EVENT_SERIES,
        "lifecycle_series": LIFECYCLE_SERIES,
    }


# (first hour, counts per (hour, status))
HourlyCounts = tuple[datetime, dict[tuple[datetime, str], int]]


def _events_per_hour(*, now: datetime, days: int) -> HourlyCounts:
    """(first hour, counts per (hour, status)) over ``days``: processed = received - pending - dead."""
    start = hour_floor(now) - timedelta(hours=days * 24 - 1)
    received = received_per_hour(start=start, now=now)
    counts = open_events_per_hour(start=start)
    for hour, n in received.items():
        still_open = counts.get((hour, "pending"), 0) + counts.get((hour, "dead"), 0)
        counts[(hour, "processed")] = max(n - still_open, 0)
    return start, counts


def events_per_hour_chart(
    *, now: datetime, days: int = 7, hourly: tuple[datetime, dict[tuple[datetime, str], int]] | None = None
) -> str:
    start, counts = hourly or _events_per_hour(now=now, days=days)
    buckets = time_buckets(
        counts=counts, start=start, step=timedelta(hours=1), number=days * 24, label_format="%a %H:00"
    )
    return bar_chart_svg(
        buckets=buckets, series=EVENT_SERIES, title=f"Events received per hour, last {days} days", label_every=24
    )


def installs_per_day_chart(*, now: datetime, days: int = 30) -> str:
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    rows = (
        LifecycleEvent.objects.filter(occurred_at__gte=start)
        .annotate(day=TimeKey("occurred_at", hourly=False))
        .order_by()
        .values("day", "kind")
        .annotate(n=Count("pk"))
    )
    kinds: dict[str, str] = {
        LifecycleEvent.Kind.INSTALLED: "installs",
        LifecycleEvent.Kind.REINSTALLED: "installs",
        LifecycleEvent.Kind.USER_UNINSTALLED: "uninstalls",
    }
    counts: dict[tuple[datetime, str], int] = {}
    for row in rows:
        key = kinds.get(row["kind"])
        if key is None:
            continue  # company_uninstalled follows the last user_uninstalled: not counted twice
        day = time_key_parse(row["day"], hourly=False)
        counts[(day, key)] = counts.get((day, key), 0) + row["n"]
    buckets: list[Bucket] = time_buckets(
        counts=counts, start=start, step=timedelta(days=1), number=days, label_format="%d %b"
    )
    return bar_chart_svg(
        buckets=buckets,
        series=LIFECYCLE_SERIES,
        title=f"Installs and uninstalls per day, last {days} days",
        label_every=max(days // 6, 1),
    )


# --- Event inbox ----------------------------------------------------------------------------------


def event_list_filtered(
    *,
    company: str = "",
    entity: str = "",
    action: str = "",
    status: str = "",
    received_from: datetime | None = None,
    received_to: datetime | None = None,
) -> QuerySet[InboxEvent]:
    queryset = InboxEvent.objects.all()
    company = company.strip()
    if company:
        company_number = id_or_none(value=company)
        if company_number is not None:
            queryset = queryset.filter(Q(company__pipedrive_company_id=company_number) | Q(company_id=company_number))
        else:
            queryset = queryset.filter(company__name__icontains=company)
    if entity:
        queryset = queryset.filter(entity=entity)
    if action:
        queryset = queryset.filter(action=action)
    if status:
        queryset = queryset.filter(status=status)
    if received_from:
        queryset = queryset.filter(received_at__gte=received_from)
    if received_to:
        queryset = queryset.filter(received_at__lt=received_to)
    return queryset


class CappedPaginator(Paginator):
    """Counts no further than ``cap`` rows: an exact count of a million-row inbox is a full scan.

    Past the cap the page says "more than 10,000" and asks for narrower filters; the rows shown are
    exact either way (newest first, ``LIMIT``/``OFFSET`` on the primary key).
    """

    cap = 10_000

    @cached_property
    def count(self) -> int:
        queryset: QuerySet[Any] = self.object_list  # type: ignore[assignment]  # always a QuerySet here
        return queryset[: self.cap + 1].count()

    @property
    def is_capped(self) -> bool:
        return self.count > self.cap


def event_list_page(*, page: int | str = 1, **filters: Any) -> Page:
    """Two queries: the count (capped) and the page (with its company, without the payload).

    Newest first by primary key: rows are inserted as they arrive, so the key's order is arrival
    order, and the primary-key index serves the ORDER BY ... LIMIT without sorting the inbox.
    """
    queryset = event_list_filtered(**filters).select_related("company").defer("body", "last_error").order_by("-pk")
    return CappedPaginator(queryset, settings.DASHBOARD_PAGE_SIZE).get_page(page)


def event_entities() -> list[str]:
    return list(CompanySettings.TRACKABLE_ENTITIES)


@dataclass
class EventDetail:
    event: InboxEvent
    payload: Any
    payload_text: str
    actions: list[OperatorAction]


def event_get(*, event_id: int) -> InboxEvent | None:
    return InboxEvent.objects.select_related("company").filter(pk=event_id).first()


def event_detail(*, event: InboxEvent) -> EventDetail:
    try:
        payload: Any = json.loads(event.body)
    except (TypeError, ValueError):
        payload = None
    masked = payload_mask(payload=payload, entity=event.entity) if payload is not None else None
    text = (
        json.dumps(masked, indent=2, sort_keys=True, ensure_ascii=False)
        if masked is not None
        else "(not JSON; not shown)"
    )
    return EventDetail(
        event=event,
        payload=masked,
        payload_text=text,
        actions=list(OperatorAction.objects.filter(event_id=event.pk).order_by("-created_at", "-pk")[:10]),
    )


# --- Audit log ------------------------------------------------------------------------------------


def audit_list_page(*, page: int | str = 1, actor: str = "", action: str = "") -> Page:
    queryset = AuditEntry.objects.select_related("operator_action").order_by("-created_at", "-pk")
    if actor:
        queryset = queryset.filter(actor_email__icontains=actor.strip())
    if action:
        queryset = queryset.filter(action=action)
    return Paginator(queryset, settings.DASHBOARD_PAGE_SIZE).get_page(page)
