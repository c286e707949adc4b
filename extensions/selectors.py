"""Reads behind the panels: a record's facts from Pipedrive (with the viewer's own installation, or
for a shared JSON panel seen by a user who never installed, an installed user's of the company) and
its change history from this app's own store.

The record is read first; everything named by it (pipeline, stage, person, organization, owner) is
then read at the same time (``concurrent_calls``), so a panel costs two round trips to Pipedrive
whatever the number of lookups. Results are cached briefly per viewer: Pipedrive's permissions are
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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.utils import formats, timezone, translation

from pipedrive_app.history.field_labels import temporal_value
from pipedrive_app.installations.models import CompanySettings, Installation
from pipedrive_app.installations.services import InstallationNotActive, NeedsReauth, TokenRefreshFailed
from pipedrive_app.pipedrive.client import PipedriveClient
from pipedrive_app.pipedrive.errors import (
    PipedriveAuthError,
    PipedriveError,
    PipedriveForbidden,
    PipedriveNotFound,
    PipedriveRateLimited,
)
from pipedrive_app.pipedrive.types import ContactPoint, Deal, Person

from .concurrent_calls import CallOutcome, calls_run
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
class PanelData:
    """The outcome of reading a panel: its facts when READY, otherwise why not."""

    state: PanelState
    facts: DealFacts | PersonFacts | None = None
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
    available: bool  # False until the history store exists
    tracked: bool  # whether the company tracks this entity at all
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


def panel_cache_prefixes(company_pk: int, pipedrive_company_id: int, pipedrive_user_id: int | None) -> list[str]:
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


def _records_shown(facts: DealFacts | PersonFacts | None) -> tuple[Record, ...]:
    if isinstance(facts, DealFacts):
        shown = [("deal", facts.id), ("person", facts.person_id), ("organization", facts.org_id)]
    elif isinstance(facts, PersonFacts):
        shown = [("person", facts.id), ("organization", facts.org_id)]
        shown += [("deal", deal.id) for deal in facts.open_deals]
    else:
        return ()
    return tuple((entity, record_id) for entity, record_id in shown if record_id is not None)


def _records_mark(panel: PanelContext, records: tuple[Record, ...], *, up_to: int | None = None) -> str:
    """One indexed query (history) and one cache read (touch tokens)."""
    history = 0
    if apps.is_installed("pipedrive_app.history"):
        from pipedrive_app.history.selectors import records_change_mark

        history = records_change_mark(company_id=panel.company.pk, records=records, up_to=up_to)
    touched = cache.get_many([_touch_key(panel.company.pk, e, i) for e, i in records])
    return f"{history}|" + ",".join(f"{key}={value}" for key, value in sorted(touched.items()))


def _history_high_water() -> int | None:
    if not apps.is_installed("pipedrive_app.history"):
        return None
    from pipedrive_app.history.selectors import history_high_water

    return history_high_water()


def _read_panel(panel: PanelContext, kind: str, build: Callable[[PipedriveClient], Any]) -> PanelData:
    """Common frame of every panel read: install state, cache, client lifetime, failures."""
    installation = panel.reading_installation  # the viewer's own; a shared JSON panel's for a non-installed viewer
    if installation is None:
        return PanelData(PanelState.NOT_INSTALLED)
    if installation.status == Installation.Status.NEEDS_REAUTH:
        return PanelData(PanelState.NEEDS_REAUTH)
    key = _cache_key(panel, kind, panel.selected_id)
    cached = cache.get(key)
    if isinstance(cached, CachedPanel) and cached.mark == _records_mark(panel, cached.records):
        return cached.data
    # Taken before Pipedrive is read: an event processed while the panel is built is newer than the
    # mark stored with it, so the next view reads again instead of keeping what may predate it.
    high_water = _history_high_water()
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


def _owner_lookup(
    panel: PanelContext, client: PipedriveClient, owner_id: int | None, known: dict[int, str]
) -> tuple[str | None, Callable[[], Any] | None]:
    if owner_id is None:
        return None, None
    if owner_id in known:
        return known[owner_id], None
    installation = panel.reading_installation
    if installation is not None and installation.has_scope("users:read"):
        return None, _lookup_cached(panel, "user", owner_id, lambda: client.get_user(owner_id))
    return None, None


# --- deal panel -------------------------------------------------------------------------------------


def deal_panel_get(*, panel: PanelContext) -> PanelData:
    deal_id = panel.selected_id
    assert deal_id is not None

    def build(client: PipedriveClient) -> PanelData:
        deal: Deal = _required(_first_round({"deal": lambda: client.get_deal(deal_id)})["deal"])
        known = _known_user_names(panel, {deal.owner_id} if deal.owner_id else set())
        owner_name, owner_call = _owner_lookup(panel, client, deal.owner_id, known)
        calls: dict[str, Callable[[], Any]] = {}
        if deal.pipeline_id is not None:
            pipeline_id = deal.pipeline_id
            calls["pipeline"] = _lookup_cached(panel, "pipeline", pipeline_id, lambda: client.get_pipeline(pipeline_id))
        if deal.stage_id is not None:
            stage_id = deal.stage_id
            calls["stage"] = _lookup_cached(panel, "stage", stage_id, lambda: client.get_stage(stage_id))
        if deal.person_id is not None:
            person_id = deal.person_id
            calls["person"] = lambda: client.get_person(person_id)
        if deal.org_id is not None:
            org_id = deal.org_id
            calls["org"] = lambda: client.get_organization(org_id)
        if owner_call is not None:
            calls["owner"] = owner_call
        found = _first_round(calls)
        facts = DealFacts(
            id=deal.id,
            title=deal.title,
            value=deal.value,
            currency=deal.currency,
            status=deal.status,
            pipeline_id=deal.pipeline_id,
            pipeline_name=_optional(found.get("pipeline")),
            stage_id=deal.stage_id,
            stage_name=_optional(found.get("stage")),
            owner_id=deal.owner_id,
            owner_name=owner_name or _optional(found.get("owner")),
            person_id=deal.person_id,
            person_name=_optional(found.get("person")),
            org_id=deal.org_id,
            org_name=_optional(found.get("org")),
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
        first = _first_round(
            {
                "person": lambda: client.get_person(person_id),
                "deals": lambda: client.list_deals(person_id=person_id, status="open", limit=MAX_OPEN_DEALS + 1),
            }
        )
        person: Person = _required(first["person"])
        deals_page = first["deals"].value if first["deals"].ok else None
        deals = list(deals_page.items) if deals_page is not None else []
        shown, more = deals[:MAX_OPEN_DEALS], len(deals) > MAX_OPEN_DEALS or bool(deals_page and deals_page.has_more)
        known = _known_user_names(panel, {person.owner_id} if person.owner_id else set())
        owner_name, owner_call = _owner_lookup(panel, client, person.owner_id, known)
        calls: dict[str, Callable[[], Any]] = {}
        if person.org_id is not None:
            org_id = person.org_id
            calls["org"] = lambda: client.get_organization(org_id)
        if owner_call is not None:
            calls["owner"] = owner_call
        for stage_id in sorted({deal.stage_id for deal in shown if deal.stage_id is not None}):
            calls[f"stage:{stage_id}"] = _lookup_cached(panel, "stage", stage_id, partial(client.get_stage, stage_id))
        found = _first_round(calls)
        facts = PersonFacts(
            id=person.id,
            name=person.name,
            emails=person.emails,
            phones=person.phones,
            org_id=person.org_id,
            org_name=_optional(found.get("org")),
            owner_id=person.owner_id,
            owner_name=owner_name or _optional(found.get("owner")),
            open_deals=tuple(
                OpenDeal(
                    id=deal.id,
                    title=deal.title,
                    value=deal.value,
                    currency=deal.currency,
                    stage_id=deal.stage_id,
                    stage_name=_optional(found.get(f"stage:{deal.stage_id}")),
                )
                for deal in shown
            ),
            open_deals_more=more,
        )
        return PanelData(PanelState.READY, facts=facts)

    return _read_panel(panel, "person", build)


# --- history ----------------------------------------------------------------------------------------


def viewer_zone(panel: PanelContext) -> ZoneInfo:
    try:
        return ZoneInfo(panel.timezone_name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def viewer_language(panel: PanelContext) -> str:
    """Pipedrive locales look like ``en_US``/``de_DE``; Django's formats want ``en-us``/``de``."""
    return translation.to_language(panel.locale or "en_US")


def history_source() -> Callable[..., list[Any]] | None:
    """``pipedrive_app.history.selectors.record_history`` when the history app is installed.

    ``company_id`` there is the app's Company primary key. Panels work (without a history) when the
    history store is not part of the deployment.
    """
    if not apps.is_installed("pipedrive_app.history"):
        return None
    from pipedrive_app.history.selectors import record_history

    return record_history


def viewer_datetime(moment: datetime, panel: PanelContext) -> str:
    """A point in time as the viewer reads it: their timezone, their locale's short format.

    Call inside ``translation.override(viewer_language(panel))`` for the locale's format."""
    return formats.date_format(moment.astimezone(viewer_zone(panel)), "SHORT_DATETIME_FORMAT")


def viewer_value_display(value: Any, stored: str, panel: PanelContext) -> str:
    """A history value for this viewer: dates and times in their timezone and locale (the stored
    display keeps Pipedrive's ISO text, which is the same for every viewer), anything else as stored.

    A date is a calendar day and is never shifted by a timezone."""
    moment = temporal_value(value)
    if isinstance(moment, datetime):
        return viewer_datetime(moment, panel)
    if isinstance(moment, date):
        return formats.date_format(moment, "DATE_FORMAT")
    return stored


def panel_history_get(*, panel: PanelContext, entity: str, entity_id: int, limit: int = 50) -> PanelHistory:
    company_settings = CompanySettings.objects.filter(company=panel.company).first()
    tracked_entities = (
        company_settings.tracked_entities if company_settings else list(CompanySettings.DEFAULT_TRACKED_ENTITIES)
    )
    tracked = entity in tracked_entities
    record_history = history_source()
    if record_history is None:
        return PanelHistory(available=False, tracked=tracked)
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
                actor=entry.actor_name or (f"User {entry.actor_user_id}" if entry.actor_user_id else ""),
            )
            for entry in entries
        )
    return PanelHistory(available=True, tracked=tracked, rows=rows)


def company_settings_for_panel(*, panel: PanelContext) -> CompanySettings:
    """The settings row to show (unsaved defaults when the company has none yet)."""
    row = CompanySettings.objects.filter(company=panel.company).first()
    if row is None:
        row = CompanySettings(company=panel.company, tracked_entities=list(CompanySettings.DEFAULT_TRACKED_ENTITIES))
    return row
