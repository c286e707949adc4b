"""Reads of the sandbox's records: lists with Pipedrive's two pagination styles, lookups for pages."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, QuerySet

from .facts import cursor, validation
from .facts.validation import InvalidQuery
from .models import (
    AccessToken,
    Activity,
    ChangeEvent,
    Deal,
    FieldDefinition,
    Lead,
    Note,
    Organization,
    Person,
    Pipeline,
    RefreshToken,
    SandboxCompany,
    SandboxUser,
    Stage,
    Webhook,
    WebhookDelivery,
)

BadListQuery = InvalidQuery  # a list parameter is invalid (400)


@dataclass(frozen=True)
class CursorPage:
    items: list[Any]
    next_cursor: str | None


@dataclass(frozen=True)
class OffsetPage:
    items: list[Any]
    start: int
    limit: int
    more: bool


_int_param = validation.int_param
page_limit = validation.page_limit


def _cursor_page(queryset: QuerySet[Any], query: Mapping[str, str]) -> CursorPage:
    limit = page_limit(query)
    after = cursor.decode_after(query.get("cursor"))
    ids = query.get("ids")
    if ids:
        wanted = [int(part) for part in ids.split(",") if part.strip().isdigit()]
        queryset = queryset.filter(pk__in=wanted)
    rows = list(queryset.filter(pk__gt=after).order_by("pk")[: limit + 1])
    page = rows[:limit]
    return CursorPage(items=page, next_cursor=cursor.encode_after(page[-1].pk) if len(rows) > limit else None)


def deals_list(*, company: SandboxCompany, query: Mapping[str, str]) -> CursorPage:
    queryset = Deal.objects.filter(company=company).select_related("company")
    status = query.get("status")
    if status == "deleted":
        queryset = queryset.filter(is_deleted=True)
    else:
        queryset = queryset.filter(is_deleted=False)
        if status:
            queryset = queryset.filter(status__in=status.split(","))
    for name, field in (
        ("person_id", "person_id"),
        ("org_id", "org_id"),
        ("owner_id", "owner_id"),
        ("stage_id", "stage_id"),
        ("pipeline_id", "pipeline_id"),
    ):
        value = _int_param(query, name)
        if value is not None:
            queryset = queryset.filter(**{field: value})
    return _cursor_page(queryset, query)


def persons_list(*, company: SandboxCompany, query: Mapping[str, str]) -> CursorPage:
    queryset = Person.objects.filter(company=company, is_deleted=False)
    for name in ("org_id", "owner_id"):
        value = _int_param(query, name)
        if value is not None:
            queryset = queryset.filter(**{name: value})
    deal_id = _int_param(query, "deal_id")
    if deal_id is not None:
        queryset = queryset.filter(deals__pk=deal_id)
    return _cursor_page(queryset, query)


def activities_list(*, company: SandboxCompany, query: Mapping[str, str]) -> CursorPage:
    """``GET /api/v2/activities`` filtered by record, owner and ``done`` (sorted by id)."""
    queryset = Activity.objects.filter(company=company, is_deleted=False)
    for name in ("deal_id", "person_id", "org_id", "owner_id"):
        value = _int_param(query, name)
        if value is not None:
            queryset = queryset.filter(**{name: value})
    done = query.get("done")
    if done not in (None, ""):
        if done not in ("true", "false", "1", "0"):
            raise InvalidQuery("Parameter 'done' must be a boolean")
        queryset = queryset.filter(done=done in ("true", "1"))
    return _cursor_page(queryset, query)


def record_activities(
    *, deal: Deal | None = None, person: Person | None = None, org: Organization | None = None
) -> QuerySet[Activity]:
    """A record's activities for its page: open ones first, by due date."""
    activities = Activity.objects.filter(is_deleted=False).select_related("owner").order_by("done", "due_date", "pk")
    if deal is not None:
        return activities.filter(deal=deal)
    if org is not None:
        return activities.filter(org=org)
    return activities.filter(person=person)


def deal_get(*, company: SandboxCompany, deal_id: int) -> Deal | None:
    return Deal.objects.filter(company=company, pk=deal_id, is_deleted=False).select_related("company").first()


def person_get(*, company: SandboxCompany, person_id: int) -> Person | None:
    return Person.objects.filter(company=company, pk=person_id, is_deleted=False).select_related("company").first()


def organization_get(*, company: SandboxCompany, org_id: int) -> Organization | None:
    return Organization.objects.filter(company=company, pk=org_id, is_deleted=False).first()


def pipeline_get(*, company: SandboxCompany, pipeline_id: int) -> Pipeline | None:
    return Pipeline.objects.filter(company=company, pk=pipeline_id).select_related("company").first()


def stage_get(*, company: SandboxCompany, stage_id: int) -> Stage | None:
    return Stage.objects.filter(pipeline__company=company, pk=stage_id).select_related("pipeline__company").first()


def company_user_get(*, company: SandboxCompany, user_id: int) -> SandboxUser | None:
    """A user of ``company`` (another company's users are not found, as at Pipedrive)."""
    return SandboxUser.objects.filter(company=company, pk=user_id).first()


def company_users(*, company: SandboxCompany) -> list[SandboxUser]:
    return list(SandboxUser.objects.filter(company=company).order_by("pk"))


_SORT_DIRECTIONS = ("asc", "desc")


def _sorted_page(
    rows: list[Any], query: Mapping[str, str], *, sort_keys: Mapping[str, Callable[[Any], Any]]
) -> CursorPage:
    """v2 ``sort_by``/``sort_direction``/``limit``/``cursor`` over a small list sorted in memory.

    The cursor is the offset of the next row: pipelines and stages are few, and a sort by a value
    that is not unique (``order_nr``) has no natural "after this id" position.
    """
    sort_by = query.get("sort_by") or "id"
    direction = query.get("sort_direction") or "asc"
    if sort_by not in sort_keys:
        raise BadListQuery(f"Parameter 'sort_by' must be one of {', '.join(sort_keys)}")
    if direction not in _SORT_DIRECTIONS:
        raise BadListQuery("Parameter 'sort_direction' must be asc or desc")
    limit = page_limit(query)
    offset = cursor.decode_offset(query.get("cursor"))
    key = sort_keys[sort_by]
    ordered = sorted(rows, key=lambda row: (key(row), row.pk), reverse=direction == "desc")
    page = ordered[offset : offset + limit]
    more = len(ordered) > offset + limit
    return CursorPage(items=page, next_cursor=cursor.encode_offset(offset + limit) if more else None)


def _by_id(row: Any) -> int:
    return int(row.pk)


def _shared_time(row: Any) -> int:
    """Pipelines and stages all carry their company's creation time: a sort by time keeps id order."""
    return 0


def pipelines_list(*, company: SandboxCompany, query: Mapping[str, str]) -> CursorPage:
    rows = list(Pipeline.objects.filter(company=company).select_related("company"))
    return _sorted_page(rows, query, sort_keys={"id": _by_id, "update_time": _shared_time, "add_time": _shared_time})


def stages_list(*, company: SandboxCompany, query: Mapping[str, str]) -> CursorPage:
    queryset = Stage.objects.filter(pipeline__company=company).select_related("pipeline__company")
    pipeline_id = _int_param(query, "pipeline_id")
    if pipeline_id is not None:
        queryset = queryset.filter(pipeline_id=pipeline_id)
    return _sorted_page(
        list(queryset),
        query,
        sort_keys={
            "id": _by_id,
            "update_time": _shared_time,
            "add_time": _shared_time,
            "order_nr": lambda stage: stage.order_nr,
        },
    )


def notes_list(*, company: SandboxCompany, query: Mapping[str, str]) -> OffsetPage:
    start = validation.start_param(query)
    limit = page_limit(query)
    queryset = Note.objects.filter(company=company, is_deleted=False).select_related("deal", "person", "org", "user")
    for name in ("deal_id", "person_id", "org_id", "user_id"):
        value = _int_param(query, name)
        if value is not None:
            queryset = queryset.filter(**{name: value})
    rows = list(queryset.order_by("pk")[start : start + limit + 1])
    return OffsetPage(items=rows[:limit], start=start, limit=limit, more=len(rows) > limit)


def leads_list(*, company: SandboxCompany, query: Mapping[str, str]) -> OffsetPage:
    start = validation.start_param(query)
    limit = page_limit(query)
    queryset = Lead.objects.filter(company=company, is_deleted=False)
    archived = query.get("archived_status") or "not_archived"
    if archived in ("archived", "not_archived"):
        queryset = queryset.filter(is_archived=archived == "archived")
    for name, field in (("person_id", "person_id"), ("organization_id", "org_id"), ("owner_id", "owner_id")):
        value = _int_param(query, name)
        if value is not None:
            queryset = queryset.filter(**{field: value})
    rows = list(queryset.order_by("add_time", "pk")[start : start + limit + 1])
    return OffsetPage(items=rows[:limit], start=start, limit=limit, more=len(rows) > limit)


def lead_get(*, company: SandboxCompany, lead_id: str) -> Lead | None:
    try:
        key = uuid.UUID(lead_id)
    except ValueError:
        return None
    return Lead.objects.filter(company=company, pk=key, is_deleted=False).select_related("company").first()


def field_definitions(*, company: SandboxCompany, entity: str) -> list[FieldDefinition]:
    return list(FieldDefinition.objects.filter(company=company, entity=entity).order_by("pk"))


def app_webhooks(*, company: SandboxCompany, client_id: str) -> list[Webhook]:
    """The app's live webhooks in the company: application webhooks are visible only to the app."""
    return list(
        Webhook.objects.filter(
            company=company, client_id=client_id, type=Webhook.Type.APPLICATION, remove_time__isnull=True
        ).order_by("pk")
    )


def company_deals(*, company: SandboxCompany) -> QuerySet[Deal]:
    return Deal.objects.filter(company=company, is_deleted=False).select_related("stage", "person", "owner")


def company_leads(*, company: SandboxCompany) -> QuerySet[Lead]:
    return Lead.objects.filter(company=company, is_deleted=False).select_related("person", "org")


def company_pipelines(*, company: SandboxCompany) -> list[Pipeline]:
    return list(Pipeline.objects.filter(company=company).order_by("order_nr", "pk"))


def company_persons(*, company: SandboxCompany) -> QuerySet[Person]:
    return Person.objects.filter(company=company, is_deleted=False).select_related("org")


def record_notes(
    *, deal: Deal | None = None, person: Person | None = None, org: Organization | None = None
) -> QuerySet[Note]:
    notes = Note.objects.filter(is_deleted=False).select_related("user").order_by("-pk")
    if deal is not None:
        return notes.filter(deal=deal)
    if org is not None:
        return notes.filter(org=org)
    return notes.filter(person=person)


def organization_people(*, org: Organization) -> QuerySet[Person]:
    return Person.objects.filter(org=org, is_deleted=False).order_by("pk")


def organization_deals(*, org: Organization) -> QuerySet[Deal]:
    return Deal.objects.filter(org=org, is_deleted=False).select_related("stage").order_by("pk")


def deal_stages(*, deal: Deal) -> list[Stage]:
    return list(Stage.objects.filter(pipeline_id=deal.pipeline_id).order_by("order_nr", "pk"))


def person_deals(*, person: Person) -> QuerySet[Deal]:
    return Deal.objects.filter(person=person, is_deleted=False)


def company_by_domain(*, domain: str) -> SandboxCompany | None:
    return SandboxCompany.objects.filter(domain=domain).first()


def companies_with_users() -> list[SandboxCompany]:
    return list(SandboxCompany.objects.prefetch_related("users").order_by("pk"))


def user_get(*, user_id: int) -> SandboxUser | None:
    return SandboxUser.objects.select_related("company").filter(pk=user_id).first()


@dataclass(frozen=True)
class InstalledApp:
    user: SandboxUser
    client_id: str
    scopes: list[str]
    installed_at: Any
    last_refresh_at: Any
    live_access_tokens: int
    webhooks: int


def installed_apps(*, company: SandboxCompany) -> list[InstalledApp]:
    """One row per user with a live grant of the app (installs are per user)."""
    rows: list[InstalledApp] = []
    grants = RefreshToken.objects.filter(company=company, revoked_at__isnull=True).select_related("user")
    seen: set[tuple[int, str]] = set()
    for grant in grants.order_by("-last_used_at"):
        if not grant.is_usable() or (grant.user_id, grant.client_id) in seen:
            continue
        seen.add((grant.user_id, grant.client_id))
        rows.append(
            InstalledApp(
                user=grant.user,
                client_id=grant.client_id,
                scopes=list(grant.scopes),
                installed_at=grant.created_at,
                last_refresh_at=grant.last_used_at,
                live_access_tokens=sum(1 for t in AccessToken.objects.filter(refresh_token=grant) if t.is_usable()),
                webhooks=Webhook.objects.filter(
                    owner=grant.user, client_id=grant.client_id, remove_time__isnull=True
                ).count(),
            )
        )
    return sorted(rows, key=lambda row: row.user.pk)


def webhooks_overview() -> list[Webhook]:
    return list(Webhook.objects.select_related("company", "owner").order_by("-pk")[:200])


def deliveries_recent(*, limit: int = 100) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.select_related("webhook", "event").order_by("-pk")[:limit])


def events_recent(*, company: SandboxCompany, limit: int = 20) -> list[ChangeEvent]:
    return list(ChangeEvent.objects.filter(company=company).order_by("-pk")[:limit])


@dataclass(frozen=True)
class DeliveryFigures:
    """What the sandbox sent a company's app since a moment: for load and fault runs (bench/soak.py)."""

    changes: int  # change events of the entity
    never_sent: int  # of those, events no webhook delivery was made for (no subscription matched)
    acknowledged_event_ids: frozenset[str]  # events a delivery of which the app answered 2xx
    deliveries_by_status: dict[str, int]


def delivery_figures(*, company: SandboxCompany, entity: str, since: datetime) -> DeliveryFigures:
    changes = ChangeEvent.objects.filter(company=company, entity=entity, occurred_at__gte=since)
    acked = changes.filter(deliveries__status=WebhookDelivery.Status.SUCCEEDED)
    by_status = (
        WebhookDelivery.objects.filter(event__company=company, created_at__gte=since)
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    return DeliveryFigures(
        changes=changes.count(),
        never_sent=changes.filter(deliveries__isnull=True).count(),
        acknowledged_event_ids=frozenset(str(e) for e in acked.values_list("event_id", flat=True).distinct()),
        deliveries_by_status={status: n for status, n in by_status},
    )
