"""Names for the ids an event carries (stage, pipeline, user, person, organization, deal).

Webhook payloads hold related records as ids (docs/pipedrive-platform.md §4: "``data`` holds the main
fields and related ids (fetch anything else from the API)"), while Pipedrive's own history shows
names. The names are looked up in the handler's ``prepare`` step, once per company and record for a
few minutes, with the company's webhook-owner installation; the display text is stored on the
history row so that a panel never calls Pipedrive for history.

A name is cosmetic: any failure (deleted record, missing scope, outage, rate limit, no installation)
leaves a readable fallback ("Stage #3") and never fails or delays the event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache

from pipedrive_app.core.parsing import id_or_none
from pipedrive_app.history.field_labels import TYPED_REFERENCE_KINDS
from pipedrive_app.installations.models import Company, Installation
from pipedrive_app.installations.selectors import company_acting_installation
from pipedrive_app.installations.services import installation_client
from pipedrive_app.pipedrive.client import PipedriveClient
from pipedrive_app.pipedrive.errors import PipedriveError, PipedriveForbidden, PipedriveNotFound
from pipedrive_app.webhooks.payloads import Delivery

logger = logging.getLogger(__name__)

# Field key -> the kind of record its value names.
REFERENCE_FIELDS: dict[str, str] = {
    "stage_id": "stage",
    "pipeline_id": "pipeline",
    "owner_id": "user",
    "user_id": "user",
    "creator_user_id": "user",
    "person_id": "person",
    "org_id": "organization",
    "deal_id": "deal",
    # v2 names (leads, and every v2 record's creator).
    "organization_id": "organization",
    "creator_id": "user",
}
FALLBACK_NOUNS = {
    "stage": "Stage",
    "pipeline": "Pipeline",
    "user": "User",
    "person": "Person",
    "organization": "Organization",
    "deal": "Deal",
}
# Record kinds whose merge partner can be named (v2 merges arrive as delete + change).
MERGEABLE = frozenset({"deal", "person", "organization"})

NAME_CACHE_SECONDS = 600  # names rarely change; a rename shows in new history rows after this
MISSING_CACHE_SECONDS = 300  # a deleted or unreadable record: do not ask again for every event
RATE_LIMIT_MAX_WAITS = 1  # a worker may wait briefly on 429, but not a minute for a cosmetic name
RATE_LIMIT_MAX_WAIT_SECONDS = 2.0
_MISSING = "\x00missing"  # cached "Pipedrive has no readable record with this id"

Ref = tuple[str, int]


def reference_id(value: Any) -> int | None:
    """The id in a reference field's value: 3, "3" or v1's ``{"value": 3, "name": ...}``."""
    if isinstance(value, Mapping):
        value = value.get("value", value.get("id"))
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str):
        return id_or_none(value=value.strip())  # strict: "²" or 5,000 digits are no reference
    return None


def typed_reference(value: Any) -> Ref | None:
    """The record a v2 typed custom-field value names: ``{"type": "org", "id": 1}`` -> ("organization", 1)."""
    if not isinstance(value, Mapping):
        return None
    kind = TYPED_REFERENCE_KINDS.get(str(value.get("type")))
    record_id = reference_id(value.get("id")) if kind else None
    return (kind, record_id) if kind and record_id is not None else None


def fallback_name(kind: str, record_id: int) -> str:
    return f"{FALLBACK_NOUNS.get(kind, kind.capitalize())} #{record_id}"


@dataclass(frozen=True)
class RecordNames:
    """What ``record_names_resolve`` found; every lookup has an answer (a name or a fallback)."""

    names: Mapping[Ref, str] = field(default_factory=dict)
    stage_pipelines: Mapping[int, int] = field(default_factory=dict)

    def resolved(self, kind: str, record_id: int | None) -> str | None:
        """The name, or None when it is unknown (not looked up, or the lookup failed)."""
        if record_id is None:
            return None
        return self.names.get((kind, record_id))

    def name(self, kind: str, record_id: int) -> str:
        return self.resolved(kind, record_id) or fallback_name(kind, record_id)

    def stage_display(self, stage_id: int, *, pipeline_id: int | None, with_pipeline: bool) -> str:
        text = self.name("stage", stage_id)
        pipeline_id = self.stage_pipelines.get(stage_id, pipeline_id)
        if with_pipeline and pipeline_id is not None:
            text = f"{text} ({self.name('pipeline', pipeline_id)})"
        return text


def stage_pipelines_differ(
    *, old_record: Mapping[str, Any], new_record: Mapping[str, Any], names: RecordNames | None = None
) -> bool:
    """A stage change that also moved the deal to another pipeline (the stage name alone is ambiguous)."""
    known = names.stage_pipelines if names is not None else {}
    old_stage, new_stage = reference_id(old_record.get("stage_id")), reference_id(new_record.get("stage_id"))
    old = known.get(old_stage or 0, reference_id(old_record.get("pipeline_id")))
    new = known.get(new_stage or 0, reference_id(new_record.get("pipeline_id")))
    return old is not None and new is not None and old != new


def references_in(
    *, changes: Iterable[tuple[str, Any, Any]], old_record: Mapping[str, Any], new_record: Mapping[str, Any]
) -> set[Ref]:
    """The (kind, id) pairs the changed reference fields name, before and after."""
    wanted: set[Ref] = set()
    for key, old, new in changes:
        kind = REFERENCE_FIELDS.get(key)
        if kind is None:  # a custom field naming a person, organization or user
            wanted.update(ref for ref in (typed_reference(old), typed_reference(new)) if ref is not None)
            continue
        for value in (old, new):
            record_id = reference_id(value)
            if record_id is not None:
                wanted.add((kind, record_id))
        if key == "stage_id" and stage_pipelines_differ(old_record=old_record, new_record=new_record):
            for record in (old_record, new_record):
                pipeline_id = reference_id(record.get("pipeline_id"))
                if pipeline_id is not None:
                    wanted.add(("pipeline", pipeline_id))
    return wanted


# Keyed by Pipedrive's company id, never the Company row's pk: a database may reuse a deleted
# company's pk, and one company's names must never label another company's history.
def _cache_key(pipedrive_company_id: int, kind: str, record_id: int) -> str:
    return f"history:name:{pipedrive_company_id}:{kind}:{record_id}"


def _stage_cache_key(pipedrive_company_id: int, stage_id: int) -> str:
    return f"history:stage-pipeline:{pipedrive_company_id}:{stage_id}"


def name_cache_prefixes(
    sender: object, *, company_pk: int, pipedrive_company_id: int, pipedrive_user_id: int | None, **kwargs: Any
) -> list[str]:
    """The company's cached names, deleted when it uninstalls (they are shared by its users)."""
    if pipedrive_user_id is not None:
        return []
    return [f"history:name:{pipedrive_company_id}:", f"history:stage-pipeline:{pipedrive_company_id}:"]


def _installed_user_names(*, company_id: int, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    rows = Installation.objects.filter(company_id=company_id, pipedrive_user_id__in=user_ids).values_list(
        "pipedrive_user_id", "name"
    )
    return {user_id: name for user_id, name in rows if name}


class _Lookups:
    """One client, opened on the first call that needs it, closed by ``close``."""

    def __init__(self, *, company_id: int, pipedrive_company_id: int) -> None:
        self.company_id = company_id
        self.pipedrive_company_id = pipedrive_company_id
        self._installation: Installation | None = None
        self._client: PipedriveClient | None = None
        self._unusable = False

    def client(self) -> tuple[PipedriveClient, Installation] | None:
        if self._unusable:
            return None
        if self._client is None or self._installation is None:
            installation = company_acting_installation(company_id=self.company_id)
            if installation is None:
                self._unusable = True
                return None
            client = installation_client(installation=installation)
            client.limit_rate_limit_waits(max_waits=RATE_LIMIT_MAX_WAITS, max_wait_seconds=RATE_LIMIT_MAX_WAIT_SECONDS)
            self._installation, self._client = installation, client
        return self._client, self._installation

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def fetch(self, kind: str, record_id: int) -> Any | None:
        """The record, or None when it cannot be read. ``_MISSING`` is cached for gone/forbidden."""
        try:
            opened = self.client()
            if opened is None:
                return None
            client, installation = opened
            calls: dict[str, Callable[[int], Any]] = {
                "stage": client.get_stage,
                "pipeline": client.get_pipeline,
                "organization": client.get_organization,
                "person": client.get_person,
                "deal": client.get_deal,
                "user": client.get_user,
            }
            call = calls.get(kind)
            if call is None or (kind == "user" and not installation.has_scope("users:read")):
                return None  # GET /users/{id} needs users:read: no call for a sure 403
            return call(record_id)
        except (PipedriveNotFound, PipedriveForbidden) as exc:
            logger.info("company %s: %s %s has no readable name: %s", self.company_id, kind, record_id, exc)
            cache.set(_cache_key(self.pipedrive_company_id, kind, record_id), _MISSING, MISSING_CACHE_SECONDS)
        except PipedriveError as exc:  # outage, rate limit, budget, revoked installation
            # The next lookups of this event would most likely fail the same way (an outage could
            # cost a timeout each): the rest of the event falls back without asking.
            logger.info("company %s: %s %s name not read: %s", self.company_id, kind, record_id, exc)
            self._unusable = True
        except Exception:  # a cosmetic lookup never fails an event; the bug still reaches the logs
            logger.exception("company %s: reading the name of %s %s failed", self.company_id, kind, record_id)
            self._unusable = True
        return None


def _record_name(kind: str, record: Any) -> str | None:
    name = getattr(record, "title" if kind == "deal" else "name", None)
    return name.strip()[:255] if isinstance(name, str) and name.strip() else None


def record_names_resolve(*, company_id: int, wanted: Iterable[Ref]) -> RecordNames:
    """Names for ``wanted``: app installations (users), then the per-company cache, then Pipedrive.

    Stages also learn their pipeline; a pipeline named that way is looked up too when asked for.
    """
    wanted = set(wanted)
    names: dict[Ref, str] = {}
    stage_pipelines: dict[int, int] = {}
    users = _installed_user_names(company_id=company_id, user_ids={i for kind, i in wanted if kind == "user"})
    names.update({("user", user_id): name for user_id, name in users.items()})
    todo = sorted(ref for ref in wanted if ref not in names)
    pipedrive_company_id = (
        Company.objects.filter(pk=company_id).values_list("pipedrive_company_id", flat=True).first() if todo else None
    )
    if pipedrive_company_id is None:
        return RecordNames(names=names)
    company_key = pipedrive_company_id
    cached = cache.get_many([_cache_key(company_key, kind, i) for kind, i in todo])
    cached_pipelines = cache.get_many([_stage_cache_key(company_key, i) for kind, i in todo if kind == "stage"])
    lookups = _Lookups(company_id=company_id, pipedrive_company_id=company_key)
    try:
        for kind, record_id in todo:
            hit = cached.get(_cache_key(company_key, kind, record_id))
            if hit == _MISSING:
                continue
            if isinstance(hit, str):
                names[(kind, record_id)] = hit
                pipeline_id = cached_pipelines.get(_stage_cache_key(company_key, record_id))
                if kind == "stage" and isinstance(pipeline_id, int):
                    stage_pipelines[record_id] = pipeline_id
                continue
            record = lookups.fetch(kind, record_id)
            name = _record_name(kind, record) if record is not None else None
            if name is None:
                continue
            names[(kind, record_id)] = name
            cache.set(_cache_key(company_key, kind, record_id), name, NAME_CACHE_SECONDS)
            pipeline_id = getattr(record, "pipeline_id", None) if kind == "stage" else None
            if isinstance(pipeline_id, int):
                stage_pipelines[record_id] = pipeline_id
                cache.set(_stage_cache_key(company_key, record_id), pipeline_id, NAME_CACHE_SECONDS)
    finally:
        lookups.close()
    return RecordNames(names=names, stage_pipelines=stage_pipelines)


def delivery_references(*, delivery: Delivery, changes: Iterable[tuple[str, Any, Any]]) -> set[Ref]:
    """Everything an event's history lines name: changed reference fields, the actor, a merge partner."""
    data = delivery.data or {}
    old_record = {**data, **(delivery.previous or {})}  # v2 ``previous`` holds only what changed
    wanted = references_in(changes=changes, old_record=old_record, new_record=data)
    if delivery.user_id is not None:
        wanted.add(("user", delivery.user_id))
    if delivery.entity in MERGEABLE:
        wanted.update((delivery.entity, other) for other in delivery.merged_with_ids)
    return wanted
