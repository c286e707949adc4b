"""Every write the sandbox makes to its CRM records, webhooks and installs.

Each create/change/delete of a record goes through here, whoever asked (API, sandbox page, seed),
and leaves a ``ChangeEvent`` whose webhook fan-out is enqueued when the transaction commits.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone

from . import conf, representations, tasks
from .facts import limits, validation, webhook_bodies
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
)
from .routers import SANDBOX_DB

logger = logging.getLogger(__name__)


class RecordInputError(Exception):
    """The request's content was refused; ``errors`` maps a field to its reasons."""

    def __init__(self, message: str, *, errors: Mapping[str, list[str]] | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.errors = dict(errors or {})
        self.status = status


class WebhookLimitReached(RecordInputError):
    pass


# --- change log ---------------------------------------------------------------------------------------


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The previous values of the fields that changed (custom fields compared key by key)."""
    previous: dict[str, Any] = {}
    for key in sorted(set(before) | set(after)):
        if key == "update_time":
            continue
        old, new = before.get(key), after.get(key)
        if key == "custom_fields" and isinstance(old, Mapping) and isinstance(new, Mapping):
            changed = {k: old.get(k) for k in set(old) | set(new) if old.get(k) != new.get(k)}
            if changed:
                previous[key] = changed
        elif old != new:
            previous[key] = old
    return previous


Snapshot = tuple[str, dict[str, Any], dict[str, Any]]  # (entity, webhook values, v1 values)


def _snapshot(instance: Any) -> Snapshot:
    entity, values = representations.webhook_values(instance)
    return entity, values, representations.v1_values(entity, instance, values)


def _field_types(company: SandboxCompany, entity: str) -> dict[str, str]:
    if entity not in FieldDefinition.Entity.values:
        return {}
    return dict(FieldDefinition.objects.filter(company=company, entity=entity).values_list("key", "field_type"))


def _event_record(
    *,
    company: SandboxCompany,
    actor: SandboxUser | None,
    instance: Any,
    action: str,
    source: str,
    before: Snapshot | None = None,
) -> ChangeEvent:
    """Log a change of ``instance`` (its state now; ``before``: its snapshot before the change) with the
    bodies its webhooks will carry, v2 and v1 (``facts.webhook_bodies``)."""
    entity, values, values_v1 = _snapshot(instance)
    types = _field_types(company, entity)
    data = webhook_bodies.v2_data(entity, values, types)
    old = webhook_bodies.v2_data(entity, before[1], types) if before else None
    if action == ChangeEvent.Action.CREATE:
        previous = None
    elif action == ChangeEvent.Action.CHANGE:
        previous = webhook_bodies.v2_previous(entity, old or {}, data)
    else:
        previous = old
    event = ChangeEvent.objects.create(
        company=company,
        user=actor,
        entity=entity,
        entity_id=str(instance.pk),
        action=action,
        change_source=source,
        data=None if action == ChangeEvent.Action.DELETE else data,
        previous=previous,
        data_v1=None if action == ChangeEvent.Action.DELETE else webhook_bodies.v1_object(entity, values_v1, types),
        previous_v1=webhook_bodies.v1_object(entity, before[2], types) if before else None,
    )
    if Webhook.objects.filter(company=company, remove_time__isnull=True).exists():
        transaction.on_commit(lambda: tasks.fan_out_event.delay(event.pk), using=SANDBOX_DB)
    return event


# --- input cleaning -----------------------------------------------------------------------------------


_int_or_none = validation.int_field


def _owned(model: type[Any], company: SandboxCompany, pk: int | None, name: str, errors: dict[str, list[str]]) -> Any:
    if pk is None:
        return None
    filters: dict[str, Any] = {"pk": pk, "company": company}
    if hasattr(model, "is_deleted"):
        filters["is_deleted"] = False
    found = model.objects.filter(**filters).first()
    if found is None:
        errors[name] = [f"{model.__name__} {pk} not found"]
    return found


def _custom_fields(value: Any, errors: dict[str, list[str]]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        errors["custom_fields"] = ["must be an object keyed by field key"]
        return {}
    return dict(value)


_contact_points = validation.contact_points


# Form/API validation, one flat block per Pipedrive field: a helper per field would scatter the rules.
def _deal_values(company: SandboxCompany, data: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:  # noqa: C901
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    if "title" in data or creating:
        title = data.get("title")
        if not isinstance(title, str) or not title.strip():
            errors["title"] = ["is required"]
        else:
            values["title"] = title.strip()[:255]
    if "value" in data:
        try:
            values["value"] = Decimal(str(data["value"] if data["value"] is not None else 0))
        except InvalidOperation:
            errors["value"] = ["must be a number"]
    if "currency" in data:
        currency = data.get("currency")
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
            errors["currency"] = ["must be a 3-letter currency code"]
        else:
            values["currency"] = currency.upper()
    if "status" in data:
        if data["status"] not in Deal.Status.values:
            errors["status"] = [f"must be one of {', '.join(Deal.Status.values)}"]
        else:
            values["status"] = data["status"]
    for name, model, target in (
        ("person_id", Person, "person"),
        ("org_id", Organization, "org"),
        ("owner_id", SandboxUser, "owner"),
    ):
        if name in data:
            values[target] = _owned(model, company, _int_or_none(data, name, errors), name, errors)
    stage_id = _int_or_none(data, "stage_id", errors) if "stage_id" in data else None
    pipeline_id = _int_or_none(data, "pipeline_id", errors) if "pipeline_id" in data else None
    if stage_id is not None:
        stage = Stage.objects.filter(pk=stage_id, pipeline__company=company).select_related("pipeline").first()
        if stage is None or (pipeline_id is not None and stage.pipeline_id != pipeline_id):
            errors["stage_id"] = [f"Stage {stage_id} not found in this pipeline"]
        else:
            values["stage"], values["pipeline"] = stage, stage.pipeline
    elif pipeline_id is not None:
        stage = Stage.objects.filter(pipeline_id=pipeline_id, pipeline__company=company).order_by("order_nr").first()
        if stage is None:
            errors["pipeline_id"] = [f"Pipeline {pipeline_id} not found"]
        else:
            values["stage"], values["pipeline"] = stage, stage.pipeline
    elif creating:
        stage = Stage.objects.filter(pipeline__company=company).order_by("pipeline__order_nr", "order_nr").first()
        if stage is None:
            errors["stage_id"] = ["the company has no pipeline"]
        else:
            values["stage"], values["pipeline"] = stage, stage.pipeline
    if "expected_close_date" in data:
        raw = data.get("expected_close_date")
        try:
            values["expected_close_date"] = date.fromisoformat(raw) if raw else None
        except (TypeError, ValueError):
            errors["expected_close_date"] = ["must be a date (YYYY-MM-DD)"]
    if "probability" in data:
        values["probability"] = _int_or_none(data, "probability", errors)
    if "lost_reason" in data:
        values["lost_reason"] = str(data.get("lost_reason") or "")[:255]
    if "visible_to" in data:
        values["visible_to"] = _int_or_none(data, "visible_to", errors) or 3
    if "custom_fields" in data:
        values["custom_fields"] = _custom_fields(data.get("custom_fields"), errors)
    if errors:
        raise RecordInputError("The deal was not saved: " + "; ".join(errors), errors=errors)
    return values


def _person_values(company: SandboxCompany, data: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    if "name" in data or creating:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            errors["name"] = ["is required"]
        else:
            values["name"] = name.strip()[:255]
    if "emails" in data:
        values["emails"] = _contact_points(data.get("emails"), label="work", name="emails", errors=errors)
    if "phones" in data:
        values["phones"] = _contact_points(data.get("phones"), label="mobile", name="phones", errors=errors)
    for name, model, target in (("org_id", Organization, "org"), ("owner_id", SandboxUser, "owner")):
        if name in data:
            values[target] = _owned(model, company, _int_or_none(data, name, errors), name, errors)
    if "job_title" in data:
        values["job_title"] = str(data.get("job_title") or "")[:255]
    if "visible_to" in data:
        values["visible_to"] = _int_or_none(data, "visible_to", errors) or 3
    if "custom_fields" in data:
        values["custom_fields"] = _custom_fields(data.get("custom_fields"), errors)
    if errors:
        raise RecordInputError("The person was not saved: " + "; ".join(errors), errors=errors)
    return values


# --- deals ----------------------------------------------------------------------------------------------


def _apply_deal_status(deal: Deal, *, previous_status: str | None, now: datetime) -> None:
    if deal.status == previous_status:
        return
    deal.won_time = now if deal.status == Deal.Status.WON else None
    deal.lost_time = now if deal.status == Deal.Status.LOST else None
    deal.close_time = now if deal.status != Deal.Status.OPEN else None


_Record = TypeVar("_Record", Deal, Person, Lead)


def _record_create(
    record: _Record,
    *,
    values: Mapping[str, Any],
    actor: SandboxUser | None,
    source: str,
    before_save: Callable[[_Record, datetime], None] | None = None,
) -> _Record:
    """Store a new deal, person or lead with its cleaned ``values`` and record the create event."""
    now = timezone.now()
    with transaction.atomic(using=SANDBOX_DB):
        record.add_time = record.update_time = now
        for name, value in values.items():
            if name == "custom_fields" and isinstance(value, dict):
                value = {k: v for k, v in value.items() if v is not None}
            setattr(record, name, value)
        if before_save is not None:
            before_save(record, now)
        record.save()
        _event_record(
            company=record.company, actor=actor, instance=record, action=ChangeEvent.Action.CREATE, source=source
        )
    return record


def _record_update(
    model: type[_Record],
    pk: Any,
    *,
    values: Mapping[str, Any],
    represent: Callable[[_Record], dict[str, Any]],
    actor: SandboxUser | None,
    source: str,
    before_save: Callable[[_Record, _Record, datetime], None] | None = None,
) -> _Record:
    """Apply ``values`` to a deal, person or lead under its row lock; when its representation
    changed, store it and record the change event with the state before. Custom fields merge (a
    None value removes one)."""
    with transaction.atomic(using=SANDBOX_DB):
        record = model.objects.select_for_update().select_related("company").get(pk=pk)
        before = represent(record)
        snapshot = _snapshot(record)
        original = copy.copy(record)
        now = timezone.now()
        for name, value in values.items():
            if name == "custom_fields":
                merged = {**(record.custom_fields or {}), **value}
                record.custom_fields = {k: v for k, v in merged.items() if v is not None}
            else:
                setattr(record, name, value)
        if before_save is not None:
            before_save(record, original, now)
        if not _changed(before, represent(record)):
            return record
        record.update_time = now
        record.save()
        _event_record(
            company=record.company,
            actor=actor,
            instance=record,
            action=ChangeEvent.Action.CHANGE,
            source=source,
            before=snapshot,
        )
    return record


def _deal_follow_ups(deal: Deal, original: Deal, now: datetime) -> None:
    """What Pipedrive sets itself when a deal is edited: won/lost/close times, the stage change time."""
    _apply_deal_status(deal, previous_status=original.status, now=now)
    if deal.stage_id != original.stage_id:
        deal.stage_change_time = now


def deal_create(*, company: SandboxCompany, actor: SandboxUser | None, data: Mapping[str, Any], source: str) -> Deal:
    return _record_create(
        Deal(company=company, creator=actor, owner=actor),
        values=_deal_values(company, data, creating=True),
        actor=actor,
        source=source,
        before_save=lambda deal, now: _apply_deal_status(deal, previous_status=None, now=now),
    )


def deal_update(*, deal: Deal, actor: SandboxUser | None, data: Mapping[str, Any], source: str) -> Deal:
    return _record_update(
        Deal,
        deal.pk,
        values=_deal_values(deal.company, data, creating=False),
        represent=representations.deal_v2,
        actor=actor,
        source=source,
        before_save=_deal_follow_ups,
    )


def _soft_delete(
    *,
    model: type[_Record],
    pk: Any,
    actor: SandboxUser | None,
    source: str,
) -> None:
    """Mark a deal, person or lead deleted (once) and record the delete event with its last state."""
    with transaction.atomic(using=SANDBOX_DB):
        record = model.objects.select_for_update().select_related("company").get(pk=pk)
        if record.is_deleted:
            return
        before = _snapshot(record)
        record.is_deleted = True
        record.update_time = timezone.now()
        record.save(update_fields=["is_deleted", "update_time"])
        _event_record(
            company=record.company,
            actor=actor,
            instance=record,
            action=ChangeEvent.Action.DELETE,
            source=source,
            before=before,
        )


def deal_delete(*, deal: Deal, actor: SandboxUser | None, source: str) -> None:
    _soft_delete(model=Deal, pk=deal.pk, actor=actor, source=source)


# --- persons --------------------------------------------------------------------------------------------


def person_create(
    *, company: SandboxCompany, actor: SandboxUser | None, data: Mapping[str, Any], source: str
) -> Person:
    return _record_create(
        Person(company=company, owner=actor),
        values=_person_values(company, data, creating=True),
        actor=actor,
        source=source,
    )


def person_update(*, person: Person, actor: SandboxUser | None, data: Mapping[str, Any], source: str) -> Person:
    return _record_update(
        Person,
        person.pk,
        values=_person_values(person.company, data, creating=False),
        represent=representations.person_v2,
        actor=actor,
        source=source,
    )


def person_delete(*, person: Person, actor: SandboxUser | None, source: str) -> None:
    _soft_delete(model=Person, pk=person.pk, actor=actor, source=source)


# --- organizations and notes ----------------------------------------------------------------------------


def organization_create(
    *, company: SandboxCompany, actor: SandboxUser | None, name: str, address: str = "", source: str
) -> Organization:
    with transaction.atomic(using=SANDBOX_DB):
        org = Organization.objects.create(company=company, owner=actor, name=name, address=address)
        _event_record(company=company, actor=actor, instance=org, action=ChangeEvent.Action.CREATE, source=source)
    return org


def note_create(*, company: SandboxCompany, actor: SandboxUser, data: Mapping[str, Any], source: str) -> Note:
    errors: dict[str, list[str]] = {}
    content = validation.note_body(data, errors)
    deal = _owned(Deal, company, _int_or_none(data, "deal_id", errors), "deal_id", errors)
    person = _owned(Person, company, _int_or_none(data, "person_id", errors), "person_id", errors)
    org = _owned(Organization, company, _int_or_none(data, "org_id", errors), "org_id", errors)
    if errors:
        raise RecordInputError("The note was not saved: " + "; ".join(errors), errors=errors)
    with transaction.atomic(using=SANDBOX_DB):
        note = Note.objects.create(company=company, content=str(content), deal=deal, person=person, org=org, user=actor)
        _event_record(company=company, actor=actor, instance=note, action=ChangeEvent.Action.CREATE, source=source)
    return note


def activity_create(*, company: SandboxCompany, actor: SandboxUser, data: Mapping[str, Any]) -> Activity:
    """``POST /api/v2/activities``: validated by the facts; linked records must be the company's.
    No webhook is sent for activities (the sandbox's webhook bodies do not cover them)."""
    errors: dict[str, list[str]] = {}
    values = validation.activity_body(data, errors)
    deal = _owned(Deal, company, values.get("deal_id"), "deal_id", errors)
    person = _owned(Person, company, values.get("person_id"), "person_id", errors)
    org = _owned(Organization, company, values.get("org_id"), "org_id", errors)
    owner = actor
    if values.get("owner_id") is not None and "owner_id" not in errors:
        owner = _owned(SandboxUser, company, values["owner_id"], "owner_id", errors)
    if errors:
        raise RecordInputError("The activity was not saved: " + "; ".join(errors), errors=errors)
    with transaction.atomic(using=SANDBOX_DB):
        return Activity.objects.create(
            company=company,
            subject=values["subject"],
            type=values["type"],
            deal=deal,
            person=person or (deal.person if deal is not None else None),
            org=org or (deal.org if deal is not None else (person.org if person is not None else None)),
            owner=owner,
            creator=actor,
            due_date=date.fromisoformat(values["due_date"]) if values.get("due_date") else None,
            due_time=values.get("due_time") or "",
            duration=values.get("duration") or "",
            busy=values["busy"],
            done=values["done"],
            note=values.get("note") or "",
        )


# --- leads (API v1 /leads; UUID ids) ------------------------------------------------------------------------


# Like _deal_values: one flat validation block per lead field.
def _lead_values(company: SandboxCompany, data: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:  # noqa: C901
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    if "title" in data or creating:
        title = data.get("title")
        if not isinstance(title, str) or not title.strip():
            errors["title"] = ["is required"]
        else:
            values["title"] = title.strip()[:255]
    for name, model, target in (
        ("person_id", Person, "person"),
        ("organization_id", Organization, "org"),
        ("owner_id", SandboxUser, "owner"),
    ):
        if name in data:
            values[target] = _owned(model, company, _int_or_none(data, name, errors), name, errors)
    if creating and not errors and values.get("person") is None and values.get("org") is None:
        errors["person_id"] = ["a lead needs a person or an organization"]
    if "value" in data:
        value = data.get("value")
        if value is None:
            values["value"] = None
        elif isinstance(value, Mapping) and isinstance(value.get("currency"), str):
            try:
                values["value"] = Decimal(str(value.get("amount")))
                values["currency"] = str(value["currency"]).upper()[:3]
            except InvalidOperation:
                errors["value"] = ["amount must be a number"]
        else:
            errors["value"] = ["must be {amount, currency} or null"]
    if "is_archived" in data:
        if not isinstance(data["is_archived"], bool):
            errors["is_archived"] = ["must be true or false"]
        else:
            values["is_archived"] = data["is_archived"]
    if "expected_close_date" in data:
        raw = data.get("expected_close_date")
        try:
            values["expected_close_date"] = date.fromisoformat(raw) if raw else None
        except (TypeError, ValueError):
            errors["expected_close_date"] = ["must be a date (YYYY-MM-DD)"]
    for key, value in data.items():  # v1 custom fields sit at the top level, keyed by their hash
        if re.fullmatch(r"[0-9a-f]{40}", str(key)):
            values.setdefault("custom_fields", {})[key] = value
    if errors:
        raise RecordInputError("The lead was not saved: " + "; ".join(errors), errors=errors)
    return values


def lead_create(*, company: SandboxCompany, actor: SandboxUser | None, data: Mapping[str, Any], source: str) -> Lead:
    return _record_create(
        Lead(company=company, creator=actor, owner=actor),
        values=_lead_values(company, data, creating=True),
        actor=actor,
        source=source,
    )


def lead_update(*, lead: Lead, actor: SandboxUser | None, data: Mapping[str, Any], source: str) -> Lead:
    return _record_update(
        Lead,
        lead.pk,
        values=_lead_values(lead.company, data, creating=False),
        represent=representations.lead_v1,
        actor=actor,
        source=source,
    )


def lead_delete(*, lead: Lead, actor: SandboxUser | None, source: str) -> None:
    _soft_delete(model=Lead, pk=lead.pk, actor=actor, source=source)


# --- pipelines and stages (events only: the sandbox's pages and seed change them) ------------------------


def pipeline_create(*, company: SandboxCompany, actor: SandboxUser | None, name: str, source: str) -> Pipeline:
    with transaction.atomic(using=SANDBOX_DB):
        order = Pipeline.objects.filter(company=company).count() + 1
        pipeline = Pipeline.objects.create(company=company, name=name[:255], order_nr=order)
        _event_record(company=company, actor=actor, instance=pipeline, action=ChangeEvent.Action.CREATE, source=source)
    return pipeline


def pipeline_update(
    *,
    pipeline: Pipeline,
    actor: SandboxUser | None,
    source: str,
    name: str | None = None,
    deal_probability: bool | None = None,
) -> Pipeline:
    with transaction.atomic(using=SANDBOX_DB):
        pipeline = Pipeline.objects.select_for_update().select_related("company").get(pk=pipeline.pk)
        snapshot = _snapshot(pipeline)
        if name is not None:
            pipeline.name = name[:255]
        if deal_probability is not None:
            pipeline.deal_probability = deal_probability
        pipeline.update_time = timezone.now()
        pipeline.save()
        _event_record(
            company=pipeline.company,
            actor=actor,
            instance=pipeline,
            action=ChangeEvent.Action.CHANGE,
            source=source,
            before=snapshot,
        )
    return pipeline


def pipeline_delete(*, pipeline: Pipeline, actor: SandboxUser | None, source: str) -> None:
    """Delete an empty pipeline (with its stages); a pipeline that still has deals is refused."""
    with transaction.atomic(using=SANDBOX_DB):
        pipeline = Pipeline.objects.select_for_update().select_related("company").get(pk=pipeline.pk)
        if Deal.objects.filter(pipeline=pipeline, is_deleted=False).exists():
            raise RecordInputError("The pipeline still has deals", errors={"id": ["the pipeline still has deals"]})
        for stage in list(pipeline.stages.all()):
            stage_delete(stage=stage, actor=actor, source=source)
        snapshot = _snapshot(pipeline)
        _event_record(
            company=pipeline.company,
            actor=actor,
            instance=pipeline,
            action=ChangeEvent.Action.DELETE,
            source=source,
            before=snapshot,
        )
        Deal.objects.filter(pipeline=pipeline).delete()
        pipeline.delete()


def stage_create(
    *, pipeline: Pipeline, actor: SandboxUser | None, name: str, source: str, deal_probability: int = 100
) -> Stage:
    with transaction.atomic(using=SANDBOX_DB):
        order = pipeline.stages.count() + 1
        stage = Stage.objects.create(
            pipeline=pipeline, name=name[:255], order_nr=order, deal_probability=deal_probability
        )
        _event_record(
            company=pipeline.company, actor=actor, instance=stage, action=ChangeEvent.Action.CREATE, source=source
        )
    return stage


def stage_update(
    *, stage: Stage, actor: SandboxUser | None, source: str, name: str | None = None, rotten_days: int | None = None
) -> Stage:
    with transaction.atomic(using=SANDBOX_DB):
        stage = Stage.objects.select_for_update().select_related("pipeline__company").get(pk=stage.pk)
        snapshot = _snapshot(stage)
        if name is not None:
            stage.name = name[:255]
        if rotten_days is not None:
            stage.rotten_days = rotten_days or None
        stage.update_time = timezone.now()
        stage.save()
        _event_record(
            company=stage.pipeline.company,
            actor=actor,
            instance=stage,
            action=ChangeEvent.Action.CHANGE,
            source=source,
            before=snapshot,
        )
    return stage


def stage_delete(*, stage: Stage, actor: SandboxUser | None, source: str) -> None:
    """Delete a stage without deals (a stage with deals is refused, as Pipedrive asks to move them first)."""
    with transaction.atomic(using=SANDBOX_DB):
        stage = Stage.objects.select_for_update().select_related("pipeline__company").get(pk=stage.pk)
        if Deal.objects.filter(stage=stage, is_deleted=False).exists():
            raise RecordInputError("The stage still has deals", errors={"id": ["the stage still has deals"]})
        snapshot = _snapshot(stage)
        _event_record(
            company=stage.pipeline.company,
            actor=actor,
            instance=stage,
            action=ChangeEvent.Action.DELETE,
            source=source,
            before=snapshot,
        )
        Deal.objects.filter(stage=stage).delete()
        stage.delete()


# --- webhooks ---------------------------------------------------------------------------------------------


def webhook_create(*, company: SandboxCompany, owner: SandboxUser, client_id: str, data: Mapping[str, Any]) -> Webhook:
    """``POST /api/v1/webhooks`` with an app's token: an application webhook, 40 per app user."""
    errors: dict[str, list[str]] = {}
    version = validation.webhook_body(data, errors)
    user_id = None if errors else validation.int_field(data, "user_id", errors)
    url = data.get("subscription_url")
    if errors:
        raise RecordInputError("The webhook was not created", errors=errors)
    with transaction.atomic(using=SANDBOX_DB):
        owned = Webhook.objects.filter(owner=owner, client_id=client_id, remove_time__isnull=True).count()
        if owned >= conf.WEBHOOKS_PER_USER:
            raise WebhookLimitReached(limits.webhook_limit_message(), status=422)
        return Webhook.objects.create(
            company=company,
            owner=owner,
            user_id=user_id or owner.pk,
            client_id=client_id,
            type=Webhook.Type.APPLICATION,
            name=str(data["name"])[:255],
            event_action=data["event_action"],
            event_object=data["event_object"],
            subscription_url=str(url),
            version=version,
            http_auth_user=data.get("http_auth_user") or "",
            http_auth_password=data.get("http_auth_password") or "",
        )


def webhook_remove(*, webhook: Webhook, reason: str) -> None:
    """Pipedrive deletes webhooks; the sandbox keeps the row (and its deliveries) to show why."""
    now = timezone.now()
    Webhook.objects.filter(pk=webhook.pk, remove_time__isnull=True).update(
        is_active=False, remove_time=now, remove_reason=reason[:255]
    )


# --- installs -----------------------------------------------------------------------------------------------


def app_uninstall(*, user: SandboxUser, client_id: str, reason: str, notify_app: bool) -> int:
    """Uninstall the app for one user: kill their tokens, delete their application webhooks.

    With ``notify_app`` (the user pressed Uninstall in Pipedrive) the app's callback URL gets
    ``DELETE`` once this commits. Returns how many live grants there were.
    """
    now = timezone.now()
    with transaction.atomic(using=SANDBOX_DB):
        live = RefreshToken.objects.filter(user=user, client_id=client_id, revoked_at__isnull=True)
        grants = live.count()
        live.update(revoked_at=now)
        AccessToken.objects.filter(user=user, client_id=client_id, revoked_at__isnull=True).update(revoked_at=now)
        Webhook.objects.filter(
            owner=user, client_id=client_id, type=Webhook.Type.APPLICATION, remove_time__isnull=True
        ).update(is_active=False, remove_time=now, remove_reason=reason[:255])
        if notify_app:
            company_id, user_id = user.company_id, user.pk
            transaction.on_commit(
                lambda: tasks.notify_app_uninstalled.delay(company_id=company_id, user_id=user_id, client_id=client_id),
                using=SANDBOX_DB,
            )
    logger.info("sandbox: app uninstalled for user %s of company %s (%s)", user.pk, user.company_id, reason)
    return grants


def access_tokens_expire(*, user: SandboxUser) -> int:
    """Make the user's live access tokens expire now (to watch the app refresh after a 401)."""
    now = timezone.now()
    return AccessToken.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=now).update(expires_at=now)
