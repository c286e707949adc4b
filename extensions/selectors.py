"""Reads behind the panels: a record's facts from Pipedrive (with the viewer's own installation, or
for a shared JSON panel seen by a user who never installed, an installed user's of the company) and
its change history from this app's own store.

The record is read first; everything named by it (pipeline, stage, person, organization, owner) is
then read at the same time (``concurrent_calls``), so a first view costs two round trips to Pipedrive
whatever the number of lookups; later views read the record and what it named last time at once, one
round trip (see "references" below). Results are cached briefly per viewer: Pipedrive's permissions are
per user, so one user's answer is never shown to another.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import partial
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone, translation

from pipedrive_app.history.selectors import history_high_water, record_history, records_change_mark
from pipedrive_app.installations.models import CompanySettings, Installation
from pipedrive_app.installations.selectors import company_hears_changes
from pipedrive_app.installations.services import InstallationNotActive, NeedsReauth, TokenRefreshFailed
from pipedrive_app.pipedrive.client import PipedriveClient
from pipedrive_app.pipedrive.errors import (
    PipedriveAuthError,
    PipedriveError,
    PipedriveForbidden,
    PipedriveNotFound,
    PipedriveRateLimited,
)
from pipedrive_app.pipedrive.types import ContactPoint, Deal, Organization, Person

from .concurrent_calls import CallOutcome, calls_run
from .formatting import viewer_datetime, viewer_language, viewer_value_display, viewer_zone
from .panel_auth import PanelContext
from .viewer_client import viewer_client

logger = logging.getLogger(__name__)

MAX_OPEN_DEALS = 9  # with the person itself: a JSON panel's 10 objects


class PanelState(StrEnum):
    READY = "ready"
    NOT_INSTALLED = "not_installed"
    NEEDS_REAUTH = "needs_reauth"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    SLOW = "slow"  # Pipedrive (or its token endpoint) did not answer within the panel's time budget
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"


# --- what a panel shows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DealFacts:
    id: int
    title: str
    value: Decimal | None
    currency: str | None
    status: str | None
    pipeline_id: int | None
    pipeline_name: str | None
    stage_id: int | None
    stage_name: str | None
    owner_id: int | None
    owner_name: str | None
    person_id: int | None
    person_name: str | None
    org_id: int | None
    org_name: str | None
    expected_close_date: date | None
    update_time: datetime | None

    def days_since_change(self, *, now: datetime | None = None) -> int | None:
        if self.update_time is None:
            return None
        return max(0, ((now or timezone.now()) - self.update_time).days)


@dataclass(frozen=True)
class OpenDeal:
    id: int
    title: str
    value: Decimal | None
    currency: str | None
    stage_id: int | None
    stage_name: str | None


@dataclass(frozen=True)
class PersonFacts:
    id: int
    name: str
    emails: tuple[ContactPoint, ...]
    phones: tuple[ContactPoint, ...]
    org_id: int | None
    org_name: str | None
    owner_id: int | None
    owner_name: str | None
    open_deals: tuple[OpenDeal, ...]
    open_deals_more: bool = False


@dataclass(frozen=True)
class PersonBrief:
    id: int
    name: str
    email: str | None
    phone: str | None


@dataclass(frozen=True)
class OrganizationFacts:
    id: int
    name: str
    address: str | None
    owner_id: int | None
    owner_name: str | None
    open_deals: tuple[OpenDeal, ...]
    open_deals_more: bool
    people: tuple[PersonBrief, ...]
    people_more: bool


Facts = DealFacts | PersonFacts | OrganizationFacts


@dataclass(frozen=True)
class PanelData:
    """The outcome of reading a panel: its facts when READY, otherwise why not."""

    state: PanelState
    facts: Facts | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class HistoryRow:
    kind: str
    field_label: str
    old_display: str
    new_display: str
    when: str  # in the viewer's timezone and locale
    when_iso: str
    actor: str


@dataclass(frozen=True)
class PanelHistory:
    tracked: bool  # whether the company tracks this entity at all
    recording: bool = True  # False until an admin installs: without webhooks no change is recorded
    rows: tuple[HistoryRow, ...] = field(default_factory=tuple)


def _failure_state(error: BaseException) -> PanelData:
    if isinstance(error, NeedsReauth):
        return PanelData(PanelState.NEEDS_REAUTH)
    if isinstance(error, InstallationNotActive):
        return PanelData(PanelState.NOT_INSTALLED)
    if isinstance(error, PipedriveAuthError):
        return PanelData(PanelState.NEEDS_REAUTH)  # refused even after a refresh
    if isinstance(error, PipedriveRateLimited):
        return PanelData(PanelState.RATE_LIMITED, retry_after=error.retry_after)
    if isinstance(error, PipedriveNotFound):
        return PanelData(PanelState.NOT_FOUND)
    if isinstance(error, PipedriveForbidden):
        return PanelData(PanelState.FORBIDDEN)
    if isinstance(error, TokenRefreshFailed) or isinstance(error.__cause__, requests.Timeout):
        return PanelData(PanelState.SLOW)
    if isinstance(error, PipedriveError):
        return PanelData(PanelState.UNAVAILABLE)
    raise error


def _cache_key(panel: PanelContext, *parts: object) -> str:
    return ":".join(["extensions", str(panel.company.pk), str(panel.pipedrive_user_id), *map(str, parts)])


def panel_cache_prefixes(
    sender: object, *, company_pk: int, pipedrive_company_id: int, pipedrive_user_id: int | None, **kwargs: Any
) -> list[str]:
    """What uninstall deletes: a user's cached panels and names, or all of the company's."""
    if pipedrive_user_id is not None:
        return [f"extensions:{company_pk}:{pipedrive_user_id}:"]
    return [f"extensions:{company_pk}:", f"extensions:touched:{company_pk}:"]


# --- the panel cache follows the records ------------------------------------------------------------
#
# A panel's facts are cached per viewer (EXTENSIONS_PANEL_CACHE_SECONDS), together with the records
# they show and a mark of those records' state in this app: the newest history row written for them
# (it moves whenever a webhook event for one of them is processed) and a token an action of this app
# on the record (a note) replaces. A hit whose mark moved is stale and read again, so an edit made in
# Pipedrive shows as soon as its event is processed, while repeated views without changes stay hits.

Record = tuple[str, int]


@dataclass(frozen=True)
class CachedPanel:
    data: PanelData
    records: tuple[Record, ...]
    mark: str


def _touch_key(company_pk: int, entity: str, entity_id: int) -> str:
    return f"extensions:touched:{company_pk}:{entity}:{entity_id}"


def panel_records_touch(*, company_pk: int, records: list[Record]) -> None:
    """The app itself changed these records at Pipedrive (e.g. added a note): cached panels that show
    them are stale for every viewer."""
    # Outlives every entry stored before it, so an expired token cannot bring an old entry back.
    timeout = 2 * settings.EXTENSIONS_PANEL_CACHE_SECONDS + 60
    cache.set_many({_touch_key(company_pk, e, i): uuid.uuid4().hex for e, i in records}, timeout)


def _records_shown(facts: Facts | None) -> tuple[Record, ...]:
    shown: list[tuple[str, int | None]]
    if isinstance(facts, DealFacts):
        shown = [("deal", facts.id), ("person", facts.person_id), ("organization", facts.org_id)]
    elif isinstance(facts, PersonFacts):
        shown = [("person", facts.id), ("organization", facts.org_id)]
        shown += [("deal", deal.id) for deal in facts.open_deals]
    elif isinstance(facts, OrganizationFacts):
        shown = [("organization", facts.id)]
        shown += [("deal", deal.id) for deal in facts.open_deals]
        shown += [("person", person.id) for person in facts.people]
    else:
        return ()
    return tuple((entity, record_id) for entity, record_id in shown if record_id is not None)


def _records_mark(panel: PanelContext, records: tuple[Record, ...], *, up_to: int | None = None) -> str:
    """One indexed query (history) and one cache read (touch tokens)."""
    history = records_change_mark(company_id=panel.company.pk, records=records, up_to=up_to)
    touched = cache.get_many([_touch_key(panel.company.pk, e, i) for e, i in records])
    return f"{history}|" + ",".join(f"{key}={value}" for key, value in sorted(touched.items()))


def _read_panel(panel: PanelContext, kind: str, build: Callable[[PipedriveClient], Any]) -> PanelData:
    """Common frame of every panel read: install state, cache, client lifetime, failures."""
    installation = panel.reading_installation  # the viewer's own; a shared JSON panel's for a non-installed viewer
    if installation is None:
        return PanelData(PanelState.NOT_INSTALLED)
    if installation.status == Installation.Status.NEEDS_REAUTH:
        return PanelData(PanelState.NEEDS_REAUTH)
    # Without webhooks (no admin has installed) nothing would tell a cached panel that its record
    # changed: such a company's panels are read afresh every time.
    cacheable = company_hears_changes(company_id=panel.company.pk)
    key = _cache_key(panel, kind, panel.selected_id)
    cached = cache.get(key) if cacheable else None
    if isinstance(cached, CachedPanel) and cached.mark == _records_mark(panel, cached.records):
        return cached.data
    # Taken before Pipedrive is read: an event processed while the panel is built is newer than the
    # mark stored with it, so the next view reads again instead of keeping what may predate it.
    high_water = history_high_water()
    try:
        client = viewer_client(installation)
    except PipedriveError as exc:
        return _failure_state(exc)
    try:
        data = build(client)
    except PipedriveError as exc:
        logger.info("panel %s %s for user %s: %s", kind, panel.selected_id, panel.pipedrive_user_id, exc)
        return _failure_state(exc)
    finally:
        client.close()
    if cacheable:
        records = _records_shown(data.facts)
        mark = _records_mark(panel, records, up_to=high_water)
        cache.set(key, CachedPanel(data=data, records=records, mark=mark), settings.EXTENSIONS_PANEL_CACHE_SECONDS)
    return data


def _first_round(calls: dict[str, Callable[[], Any]]) -> dict[str, CallOutcome]:
    return calls_run(calls=calls, workers=settings.EXTENSIONS_API_WORKERS)


def _required(outcome: CallOutcome) -> Any:
    if outcome.error is not None:
        raise outcome.error
    return outcome.value


def _optional(outcome: CallOutcome | None, attribute: str = "name") -> Any:
    """A secondary lookup that failed leaves its label out; the panel still shows the rest."""
    if outcome is None:
        return None
    if outcome.error is not None:
        logger.info("panel lookup failed: %s", outcome.error)
        return None
    return getattr(outcome.value, attribute, None)


def _lookup_cached(panel: PanelContext, kind: str, object_id: int, fetch: Callable[[], Any]) -> Callable[[], Any]:
    """Pipeline and stage names rarely change: keep them a few minutes per viewer."""

    def call() -> Any:
        key = _cache_key(panel, "name", kind, object_id)
        hit = cache.get(key)
        if hit is not None:
            return hit
        value = fetch()
        cache.set(key, value, settings.EXTENSIONS_LOOKUP_CACHE_SECONDS)
        return value

    return call


def _known_user_names(panel: PanelContext, user_ids: set[int]) -> dict[int, str]:
    """Names of users who installed the app are stored; others need ``users:read`` to look up."""
    if not user_ids:
        return {}
    rows = Installation.objects.filter(company=panel.company, pipedrive_user_id__in=user_ids).values_list(
        "pipedrive_user_id", "name"
    )
    return {user_id: name for user_id, name in rows if name}


# --- references: what a record names, read in the same round trip as the record when predictable ---
#
# A record names others (pipeline, stage, person, organization, owner) whose names the panel shows. Read
# naively that is two round trips: the record, then what it names. The ids a record named at its last
# view are kept per viewer (ids only, for EXTENSIONS_LOOKUP_CACHE_SECONDS), so the next build reads the
# record and those references at once; the record then says which it names now, and only references not
# predicted (a deal moved to another person, say) cost a second round. Pipeline, stage and user names
# are also cached themselves (they rarely change); people's and organizations' names are read fresh.

Reference = tuple[str, int]  # ("pipeline" | "stage" | "person" | "org" | "user", id)


def _reference_call(panel: PanelContext, client: PipedriveClient, reference: Reference) -> Callable[[], Any]:
    kind, object_id = reference
    fetchers: dict[str, Callable[[int], Any]] = {
        "pipeline": client.get_pipeline,
        "stage": client.get_stage,
        "user": client.get_user,
        "person": client.get_person,
        "org": client.get_organization,
    }
    fetch = partial(fetchers[kind], object_id)
    if kind in ("pipeline", "stage", "user"):
        return _lookup_cached(panel, kind, object_id, fetch)
    return fetch


def _call_name(reference: Reference) -> str:
    return f"ref:{reference[0]}:{reference[1]}"


def _read_with_references(
    panel: PanelContext,
    client: PipedriveClient,
    kind: str,
    primary: dict[str, Callable[[], Any]],
    references_of: Callable[[dict[str, CallOutcome]], set[Reference]],
) -> tuple[dict[str, CallOutcome], dict[Reference, CallOutcome]]:
    """Run ``primary`` (the record itself) together with the references it named last time; then only
    the references it names now that were not among them. ``references_of`` reads the primary outcomes
    (and may raise, e.g. when the record itself failed)."""
    key = _cache_key(panel, "references", kind, panel.selected_id)
    predicted: set[Reference] = {(str(k), int(i)) for k, i in cache.get(key) or ()}
    calls = dict(primary)
    calls.update({_call_name(ref): _reference_call(panel, client, ref) for ref in predicted})
    first = _first_round(calls)
    outcomes = {name: first[name] for name in primary}
    needed = references_of(outcomes)
    found = {ref: first[_call_name(ref)] for ref in needed & predicted}
    missing = sorted(needed - predicted)
    second = _first_round({_call_name(ref): _reference_call(panel, client, ref) for ref in missing})
    found.update({ref: second[_call_name(ref)] for ref in missing})
    cache.set(key, sorted(needed), settings.EXTENSIONS_LOOKUP_CACHE_SECONDS)
    return outcomes, found


def _owner_reference(panel: PanelContext, owner_id: int | None) -> tuple[str | None, set[Reference]]:
    """The owner's name when a user of the app (stored), else the lookup to make (``users:read``)."""
    if owner_id is None:
        return None, set()
    known = _known_user_names(panel, {owner_id})
    if owner_id in known:
        return known[owner_id], set()
    installation = panel.reading_installation
    if installation is not None and installation.has_scope("users:read"):
        return None, {("user", owner_id)}
    return None, set()


# --- deal panel -------------------------------------------------------------------------------------


def deal_panel_get(*, panel: PanelContext) -> PanelData:
    deal_id = panel.selected_id
    assert deal_id is not None

    def build(client: PipedriveClient) -> PanelData:
        owner: dict[str, str | None] = {}

        def references_of(outcomes: dict[str, CallOutcome]) -> set[Reference]:
            deal: Deal = _required(outcomes["deal"])
            owner["name"], refs = _owner_reference(panel, deal.owner_id)
            named = {
                ("pipeline", deal.pipeline_id),
                ("stage", deal.stage_id),
                ("person", deal.person_id),
                ("org", deal.org_id),
            }
            return refs | {(kind, ref_id) for kind, ref_id in named if ref_id is not None}

        outcomes, found = _read_with_references(
            panel, client, "deal", {"deal": lambda: client.get_deal(deal_id)}, references_of
        )
        deal: Deal = outcomes["deal"].value

        def name(kind: str, ref_id: int | None) -> Any:
            return None if ref_id is None else _optional(found.get((kind, ref_id)))

        facts = DealFacts(
            id=deal.id,
            title=deal.title,
            value=deal.value,
            currency=deal.currency,
            status=deal.status,
            pipeline_id=deal.pipeline_id,
            pipeline_name=name("pipeline", deal.pipeline_id),
            stage_id=deal.stage_id,
            stage_name=name("stage", deal.stage_id),
            owner_id=deal.owner_id,
            owner_name=owner.get("name") or name("user", deal.owner_id),
            person_id=deal.person_id,
            person_name=name("person", deal.person_id),
            org_id=deal.org_id,
            org_name=name("org", deal.org_id),
            expected_close_date=deal.expected_close_date,
            update_time=deal.update_time,
        )
        return PanelData(PanelState.READY, facts=facts)

    return _read_panel(panel, "deal", build)


# --- person panel -----------------------------------------------------------------------------------


def person_panel_get(*, panel: PanelContext) -> PanelData:
    person_id = panel.selected_id
    assert person_id is not None

    def build(client: PipedriveClient) -> PanelData:
        owner: dict[str, str | None] = {}

        def references_of(outcomes: dict[str, CallOutcome]) -> set[Reference]:
            person: Person = _required(outcomes["person"])
            owner["name"], refs = _owner_reference(panel, person.owner_id)
            if person.org_id is not None:
                refs.add(("org", person.org_id))
            return refs | _stage_references(_page_or_none(outcomes["deals"]))

        primary: dict[str, Callable[[], Any]] = {
            "person": lambda: client.get_person(person_id),
            "deals": lambda: client.list_deals(person_id=person_id, status="open", limit=MAX_OPEN_DEALS + 1),
        }
        outcomes, found = _read_with_references(panel, client, "person", primary, references_of)
        person: Person = outcomes["person"].value

        def name(kind: str, ref_id: int | None) -> Any:
            return None if ref_id is None else _optional(found.get((kind, ref_id)))

        open_deals, deals_more = _open_deals(_page_or_none(outcomes["deals"]), name)
        facts = PersonFacts(
            id=person.id,
            name=person.name,
            emails=person.emails,
            phones=person.phones,
            org_id=person.org_id,
            org_name=name("org", person.org_id),
            owner_id=person.owner_id,
            owner_name=owner.get("name") or name("user", person.owner_id),
            open_deals=open_deals,
            open_deals_more=deals_more,
        )
        return PanelData(PanelState.READY, facts=facts)

    return _read_panel(panel, "person", build)


def _page_or_none(outcome: CallOutcome) -> Any:
    """A secondary list that failed shows as empty; the panel still shows the rest."""
    return outcome.value if outcome.ok else None


def _stage_references(page: Any) -> set[Reference]:
    deals = page.items[:MAX_OPEN_DEALS] if page is not None else ()
    return {("stage", deal.stage_id) for deal in deals if deal.stage_id is not None}


# --- organization panel -----------------------------------------------------------------------------

MAX_PEOPLE = 9


def _primary(points: tuple[ContactPoint, ...]) -> str | None:
    for point in points:
        if point.primary:
            return point.value
    return points[0].value if points else None


def _open_deals(page: Any, names: Callable[[str, int | None], Any]) -> tuple[tuple[OpenDeal, ...], bool]:
    deals = list(page.items) if page is not None else []
    more = len(deals) > MAX_OPEN_DEALS or bool(page and page.has_more)
    shown = tuple(
        OpenDeal(
            id=deal.id,
            title=deal.title,
            value=deal.value,
            currency=deal.currency,
            stage_id=deal.stage_id,
            stage_name=names("stage", deal.stage_id),
        )
        for deal in deals[:MAX_OPEN_DEALS]
    )
    return shown, more


def organization_panel_get(*, panel: PanelContext) -> PanelData:
    """The organization, its open deals (with stages) and its people: three reads at once, then the
    owner's and stages' names (cached; one round trip on later views, as for the other panels)."""
    org_id = panel.selected_id
    assert org_id is not None

    def build(client: PipedriveClient) -> PanelData:
        owner: dict[str, str | None] = {}

        def references_of(outcomes: dict[str, CallOutcome]) -> set[Reference]:
            organization: Organization = _required(outcomes["organization"])
            owner["name"], refs = _owner_reference(panel, organization.owner_id)
            return refs | _stage_references(_page_or_none(outcomes["deals"]))

        primary: dict[str, Callable[[], Any]] = {
            "organization": lambda: client.get_organization(org_id),
            "deals": lambda: client.list_deals(org_id=org_id, status="open", limit=MAX_OPEN_DEALS + 1),
            "people": lambda: client.list_persons(org_id=org_id, limit=MAX_PEOPLE + 1),
        }
        outcomes, found = _read_with_references(panel, client, "organization", primary, references_of)
        organization: Organization = outcomes["organization"].value

        def name(kind: str, ref_id: int | None) -> Any:
            return None if ref_id is None else _optional(found.get((kind, ref_id)))

        open_deals, deals_more = _open_deals(_page_or_none(outcomes["deals"]), name)
        people_page = _page_or_none(outcomes["people"])
        people = list(people_page.items) if people_page is not None else []
        facts = OrganizationFacts(
            id=organization.id,
            name=organization.name,
            address=organization.address,
            owner_id=organization.owner_id,
            owner_name=owner.get("name") or name("user", organization.owner_id),
            open_deals=open_deals,
            open_deals_more=deals_more,
            people=tuple(
                PersonBrief(id=p.id, name=p.name, email=_primary(p.emails), phone=_primary(p.phones))
                for p in people[:MAX_PEOPLE]
            ),
            people_more=len(people) > MAX_PEOPLE or bool(people_page and people_page.has_more),
        )
        return PanelData(PanelState.READY, facts=facts)

    return _read_panel(panel, "organization", build)


# --- history ----------------------------------------------------------------------------------------


def panel_history_get(*, panel: PanelContext, entity: str, entity_id: int, limit: int = 50) -> PanelHistory:
    company_settings = CompanySettings.objects.filter(company=panel.company).first()
    tracked_entities = (
        company_settings.tracked_entities if company_settings else list(CompanySettings.DEFAULT_TRACKED_ENTITIES)
    )
    tracked = entity in tracked_entities
    entries = record_history(company_id=panel.company.pk, entity=entity, entity_id=entity_id, limit=limit)
    zone = viewer_zone(panel)
    with translation.override(viewer_language(panel)):
        rows = tuple(
            HistoryRow(
                kind=entry.kind,
                field_label=entry.field_label or entry.field_key or "",
                old_display=viewer_value_display(getattr(entry, "old_value", None), entry.old_display or "", panel),
                new_display=viewer_value_display(getattr(entry, "new_value", None), entry.new_display or "", panel),
                when=viewer_datetime(entry.occurred_at, panel),
                when_iso=entry.occurred_at.astimezone(zone).isoformat(),
                actor=entry.actor_name
                or (translation.gettext("User %(id)s") % {"id": entry.actor_user_id} if entry.actor_user_id else ""),
            )
            for entry in entries
        )
    return PanelHistory(tracked=tracked, rows=rows, recording=company_hears_changes(company_id=panel.company.pk))


def company_settings_for_panel(*, panel: PanelContext) -> CompanySettings:
    """The settings row to show (unsaved defaults when the company has none yet)."""
    row = CompanySettings.objects.filter(company=panel.company).first()
    if row is None:
        row = CompanySettings(company=panel.company, tracked_entities=list(CompanySettings.DEFAULT_TRACKED_ENTITIES))
    return row
