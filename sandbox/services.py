"""Every write the sandbox makes to its CRM records, webhooks and installs.

Each create/change/delete of a record goes through here, whoever asked (API, sandbox page, seed),
and leaves a ``ChangeEvent`` whose webhook fan-out is enqueued when the transaction commits.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from . import conf, representations, tasks
from .models import (
    AccessToken,
    ChangeEvent,
    Deal,
    Note,
    Organization,
    Person,
    RefreshToken,
    SandboxCompany,
    SandboxUser,
    Stage,
    Webhook,
)
from .routers import SANDBOX_DB

logger = logging.getLogger(__name__)

WEBHOOK_ACTIONS = ("create", "change", "delete", "*")
WEBHOOK_OBJECTS = (
    "activity",
    "deal",
    "lead",
    "note",
    "organization",
    "person",
    "pipeline",
    "product",
    "stage",
    "user",
    "*",
)
WEBHOOK_VERSIONS = ("1.0", "2.0")


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


def _event_record(
    *,
    company: SandboxCompany,
    actor: SandboxUser | None,
    entity: str,
    entity_id: int,
    action: str,
    source: str,
    data: dict[str, Any] | None,
    previous: dict[str, Any] | None,
) -> ChangeEvent:
    event = ChangeEvent.objects.create(
        company=company,
        user=actor,
        entity=entity,
        entity_id=entity_id,
        action=action,
        change_source=source,
        data=data,
        previous=previous,
    )
    if Webhook.objects.filter(company=company, remove_time__isnull=True).exists():
        transaction.on_commit(lambda: tasks.fan_out_event.delay(event.pk), using=SANDBOX_DB)
    return event


# --- input cleaning -----------------------------------------------------------------------------------


def _int_or_none(data: Mapping[str, Any], name: str, errors: dict[str, list[str]]) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        errors[name] = ["must be an integer"]
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        errors[name] = ["must be an integer"]
        return None


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


def _contact_points(value: Any, *, label: str, name: str, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else ([value] if value else [])
    points: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            if item.strip():
                points.append({"value": item.strip(), "primary": index == 0, "label": label})
        elif isinstance(item, Mapping) and isinstance(item.get("value"), str):
            points.append(
                {
                    "value": item["value"],
                    "primary": bool(item.get("primary", index == 0)),
                    "label": str(item.get("label") or label),
                }
            )
        else:
            errors[name] = ["must be a list of {value, primary, label} objects"]
    return points


def _deal_values(company: SandboxCompany, data: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
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


def deal_create(*, company: SandboxCompany, actor: SandboxUser | None, data: Mapping[str, Any], source: str) -> Deal:
    values = _deal_values(company, data, creating=True)
    now = timezone.now()
    with transaction.atomic(using=SANDBOX_DB):
        deal = Deal(company=company, creator=actor, owner=actor, add_time=now, update_time=now)
        for name, value in values.items():
            setattr(deal, name, value)
        if isinstance(values.get("custom_fields"), dict):
            deal.custom_fields = {k: v for k, v in values["custom_fields"].items() if v is not None}
        _apply_deal_status(deal, previous_status=None, now=now)
        deal.save()
        _event_record(
            company=company,
            actor=actor,
            entity="deal",
            entity_id=deal.pk,
            action=ChangeEvent.Action.CREATE,
            source=source,
            data=representations.deal_v2(deal),
            previous=None,
        )
    return deal


def deal_update(*, deal: Deal, actor: SandboxUser | None, data: Mapping[str, Any], source: str) -> Deal:
    values = _deal_values(deal.company, data, creating=False)
    with transaction.atomic(using=SANDBOX_DB):
        deal = Deal.objects.select_for_update().select_related("company").get(pk=deal.pk)
        before = representations.deal_v2(deal)
        previous_status, previous_stage = deal.status, deal.stage_id
        now = timezone.now()
        for name, value in values.items():
            if name == "custom_fields":
                merged = {**(deal.custom_fields or {}), **value}
                deal.custom_fields = {k: v for k, v in merged.items() if v is not None}
            else:
                setattr(deal, name, value)
        _apply_deal_status(deal, previous_status=previous_status, now=now)
        if deal.stage_id != previous_stage:
            deal.stage_change_time = now
        previous = _changed(before, representations.deal_v2(deal))
        if not previous:
            return deal
        deal.update_time = now
        deal.save()
        _event_record(
            company=deal.company,
            actor=actor,
            entity="deal",
            entity_id=deal.pk,
            action=ChangeEvent.Action.CHANGE,
            source=source,
            data=representations.deal_v2(deal),
            previous=previous,
        )
    return deal


_SoftDeleted = TypeVar("_SoftDeleted", Deal, Person)


def _soft_delete(
    *,
    model: type[_SoftDeleted],
    pk: int,
    entity: str,
    render: Callable[[_SoftDeleted], dict[str, Any]],
    actor: SandboxUser | None,
    source: str,
) -> None:
    """Mark a deal or person deleted (once) and record the delete event with its last state."""
    with transaction.atomic(using=SANDBOX_DB):
        record = model.objects.select_for_update().select_related("company").get(pk=pk)
        if record.is_deleted:
            return
        before = render(record)
        record.is_deleted = True
        record.update_time = timezone.now()
        record.save(update_fields=["is_deleted", "update_time"])
        _event_record(
            company=record.company,
            actor=actor,
            entity=entity,
            entity_id=record.pk,
            action=ChangeEvent.Action.DELETE,
            source=source,
            data=None,
            previous=before,
        )


def deal_delete(*, deal: Deal, actor: SandboxUser | None, source: str) -> None:
    _soft_delete(model=Deal, pk=deal.pk, entity="deal", render=representations.deal_v2, actor=actor, source=source)


# --- persons --------------------------------------------------------------------------------------------


def person_create(
    *, company: SandboxCompany, actor: SandboxUser | None, data: Mapping[str, Any], source: str
) -> Person:
    values = _person_values(company, data, creating=True)
    now = timezone.now()
    with transaction.atomic(using=SANDBOX_DB):
        person = Person(company=company, owner=actor, add_time=now, update_time=now)
        for name, value in values.items():
            setattr(person, name, value)
        person.save()
        _event_record(
            company=company,
            actor=actor,
            entity="person",
            entity_id=person.pk,
            action=ChangeEvent.Action.CREATE,
            source=source,
            data=representations.person_v2(person),
            previous=None,
        )
    return person


def person_update(*, person: Person, actor: SandboxUser | None, data: Mapping[str, Any], source: str) -> Person:
    values = _person_values(person.company, data, creating=False)
    with transaction.atomic(using=SANDBOX_DB):
        person = Person.objects.select_for_update().select_related("company").get(pk=person.pk)
        before = representations.person_v2(person)
        for name, value in values.items():
            if name == "custom_fields":
                merged = {**(person.custom_fields or {}), **value}
                person.custom_fields = {k: v for k, v in merged.items() if v is not None}
            else:
                setattr(person, name, value)
        previous = _changed(before, representations.person_v2(person))
        if not previous:
            return person
        person.update_time = timezone.now()
        person.save()
        _event_record(
            company=person.company,
            actor=actor,
            entity="person",
            entity_id=person.pk,
            action=ChangeEvent.Action.CHANGE,
            source=source,
            data=representations.person_v2(person),
            previous=previous,
        )
    return person


def person_delete(*, person: Person, actor: SandboxUser | None, source: str) -> None:
    _soft_delete(
        model=Person, pk=person.pk, entity="person", render=representations.person_v2, actor=actor, source=source
    )


# --- organizations and notes ----------------------------------------------------------------------------


def organization_create(
    *, company: SandboxCompany, actor: SandboxUser | None, name: str, address: str = "", source: str
) -> Organization:
    with transaction.atomic(using=SANDBOX_DB):
        org = Organization.objects.create(company=company, owner=actor, name=name, address=address)
        _event_record(
            company=company,
            actor=actor,
            entity="organization",
            entity_id=org.pk,
            action=ChangeEvent.Action.CREATE,
            source=source,
            data=representations.organization_v2(org),
            previous=None,
        )
    return org


def note_create(*, company: SandboxCompany, actor: SandboxUser, data: Mapping[str, Any], source: str) -> Note:
    errors: dict[str, list[str]] = {}
    content = data.get("content")
    if not isinstance(content, str) or not content.strip():
        errors["content"] = ["is required"]
    links = ("deal_id", "person_id", "org_id", "lead_id", "project_id")
    if not any(data.get(name) not in (None, "") for name in links):
        errors["deal_id"] = ["the note must be attached to a deal, person, organization, lead or project"]
    deal = _owned(Deal, company, _int_or_none(data, "deal_id", errors), "deal_id", errors)
    person = _owned(Person, company, _int_or_none(data, "person_id", errors), "person_id", errors)
    org = _owned(Organization, company, _int_or_none(data, "org_id", errors), "org_id", errors)
    if errors:
        raise RecordInputError("The note was not saved: " + "; ".join(errors), errors=errors)
    with transaction.atomic(using=SANDBOX_DB):
        note = Note.objects.create(company=company, content=str(content), deal=deal, person=person, org=org, user=actor)
        _event_record(
            company=company,
            actor=actor,
            entity="note",
            entity_id=note.pk,
            action=ChangeEvent.Action.CREATE,
            source=source,
            data=representations.note_v1(note),
            previous=None,
        )
    return note


# --- webhooks ---------------------------------------------------------------------------------------------


def webhook_create(*, company: SandboxCompany, owner: SandboxUser, client_id: str, data: Mapping[str, Any]) -> Webhook:
    """``POST /api/v1/webhooks`` with an app's token: an application webhook, 40 per app user."""
    errors: dict[str, list[str]] = {}
    for name in ("subscription_url", "event_action", "event_object", "name"):
        if not isinstance(data.get(name), str) or not data[name]:
            errors[name] = ["is required"]
    if "event_action" not in errors and data["event_action"] not in WEBHOOK_ACTIONS:
        errors["event_action"] = [f"must be one of {', '.join(WEBHOOK_ACTIONS)}"]
    if "event_object" not in errors and data["event_object"] not in WEBHOOK_OBJECTS:
        errors["event_object"] = [f"must be one of {', '.join(WEBHOOK_OBJECTS)}"]
    version = data.get("version") or "2.0"
    if version not in WEBHOOK_VERSIONS:
        errors["version"] = [f"must be one of {', '.join(WEBHOOK_VERSIONS)}"]
    url = data.get("subscription_url")
    if "subscription_url" not in errors:
        parts = urlsplit(str(url))
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            errors["subscription_url"] = ["invalid or non-reachable URL"]
    errors_user: dict[str, list[str]] = {}
    user_id = _int_or_none(data, "user_id", errors_user)
    errors.update(errors_user)
    for name in ("http_auth_user", "http_auth_password"):
        if data.get(name) is not None and not isinstance(data.get(name), str):
            errors[name] = ["must be a string"]
    if errors:
        raise RecordInputError("The webhook was not created", errors=errors)
    with transaction.atomic(using=SANDBOX_DB):
        owned = Webhook.objects.filter(owner=owner, client_id=client_id, remove_time__isnull=True).count()
        if owned >= conf.WEBHOOKS_PER_USER:
            raise WebhookLimitReached(
                f"The limit of {conf.WEBHOOKS_PER_USER} webhooks per app user is reached", status=422
            )
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
