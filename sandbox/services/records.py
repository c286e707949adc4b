"""Writes to the sandbox's CRM records (deals, people, leads, organizations, notes, activities),
whoever asked (API, sandbox page, seed): input cleaned as Pipedrive does, a change event each."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from .. import representations
from ..facts import validation
from ..models import (
    Activity,
    ChangeEvent,
    Deal,
    Lead,
    Note,
    Organization,
    Person,
    SandboxCompany,
    SandboxUser,
    Stage,
)
from ..routers import SANDBOX_DB
from .changes import (
    RecordInputError,
    _apply_deal_status,
    _event_record,
    _record_create,
    _record_update,
    _soft_delete,
)

logger = logging.getLogger(__name__)

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
