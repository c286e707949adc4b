"""Operator actions: request (audit + action row + task on commit) and execution (the task's body).

Every action calls the same services the background tasks use; the dashboard adds the audit row,
the progress row and the typed confirmation of a vendor-side uninstall.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from pipedrive_app.installations.models import Company, Installation
from pipedrive_app.installations.services import (
    InstallationNotActive,
    NeedsReauth,
    company_uninstall_by_vendor,
    installation_token_refresh,
)
from pipedrive_app.pipedrive.errors import PipedriveError
from pipedrive_app.webhooks.models import InboxEvent
from pipedrive_app.webhooks.services import company_webhooks_reconcile, inbox_event_replay, inbox_events_replay_dead

from .models import AuditEntry, OperatorAction

logger = logging.getLogger(__name__)

Kind = OperatorAction.Kind


class ActionRefused(Exception):
    """The dashboard refused the action (an audit row says so); ``message`` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ActionFailed(Exception):
    """The action ran and failed; the message is stored on the action row."""


# --- Requests (called by the views) ----------------------------------------------------------------


def _operator_email(operator: Any) -> str:
    return (getattr(operator, "email", "") or str(operator))[:254]


def audit_entry_create(
    *,
    operator: Any,
    action: str,
    target_type: str,
    target_id: str,
    target_label: str,
    result: str,
    detail: str = "",
    operator_action: OperatorAction | None = None,
    ip_address: str | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=operator if getattr(operator, "pk", None) else None,
        actor_email=_operator_email(operator),
        action=action,
        target_type=target_type,
        target_id=target_id[:64],
        target_label=target_label[:255],
        result=result,
        detail=detail[:1000],
        operator_action=operator_action,
        ip_address=ip_address,
    )


def _action_start(
    *,
    kind: str,
    operator: Any,
    company: Company | None,
    target_type: str,
    target_id: str,
    target_label: str,
    event_id: int | None = None,
    ip_address: str | None = None,
) -> OperatorAction:
    from .tasks import run_operator_action

    with transaction.atomic():
        action = OperatorAction.objects.create(
            kind=kind,
            company=company,
            pipedrive_company_id=company.pipedrive_company_id if company else None,
            target_label=target_label[:255],
            event_id=event_id,
            requested_by=operator,
            requested_by_email=_operator_email(operator),
        )
        audit_entry_create(
            operator=operator,
            action=kind,
            target_type=target_type,
            target_id=target_id,
            target_label=target_label,
            result=AuditEntry.Result.ACCEPTED,
            operator_action=action,
            ip_address=ip_address,
        )
        action_id = action.pk
        transaction.on_commit(lambda: run_operator_action.delay(action_id))
    return action


def _company_action(kind: str) -> Callable[..., OperatorAction]:
    def request(*, company: Company, operator: Any, ip_address: str | None = None) -> OperatorAction:
        return _action_start(
            kind=kind,
            operator=operator,
            company=company,
            target_type="company",
            target_id=str(company.pipedrive_company_id),
            target_label=str(company),
            ip_address=ip_address,
        )

    request.__name__ = f"company_{kind}_request"
    return request


company_tokens_refresh_request = _company_action(Kind.REFRESH_TOKENS)
company_webhooks_reconcile_request = _company_action(Kind.RECONCILE_WEBHOOKS)
company_dead_events_replay_request = _company_action(Kind.REPLAY_DEAD_EVENTS)


def event_replay_request(*, event: InboxEvent, operator: Any, ip_address: str | None = None) -> OperatorAction:
    """Replay one dead event. Processed events never run twice; pending ones are already queued."""
    company = event.company
    target: dict[str, Any] = {
        "target_type": "event",
        "target_id": str(event.pk),
        "target_label": f"{event.entity}.{event.action} of {company}",
    }
    if event.status != InboxEvent.Status.DEAD:
        audit_entry_create(
            operator=operator,
            action=Kind.REPLAY_EVENT,
            result=AuditEntry.Result.REFUSED,
            detail=f"event is {event.status}; only dead events can be replayed",
            ip_address=ip_address,
            **target,
        )
        raise ActionRefused(
            f"Not replayed: the event is {event.get_status_display().lower()}; only dead events are replayed."
        )
    return _action_start(
        kind=Kind.REPLAY_EVENT, operator=operator, company=company, event_id=event.pk, ip_address=ip_address, **target
    )


def uninstall_confirmation_matches(*, company: Company, confirmation: str) -> bool:
    """The operator must type the company's Pipedrive id or its name (case and spaces aside)."""
    typed = " ".join((confirmation or "").split())
    if not typed:
        return False
    if typed == str(company.pipedrive_company_id):
        return True
    name = " ".join((company.name or "").split())
    return bool(name) and typed.casefold() == name.casefold()


def company_uninstall_request(
    *, company: Company, operator: Any, confirmation: str, ip_address: str | None = None
) -> OperatorAction:
    if not uninstall_confirmation_matches(company=company, confirmation=confirmation):
        audit_entry_create(
            operator=operator,
            action=Kind.UNINSTALL_COMPANY,
            target_type="company",
            target_id=str(company.pipedrive_company_id),
            target_label=str(company),
            result=AuditEntry.Result.REFUSED,
            detail="confirmation missing" if not (confirmation or "").strip() else "confirmation did not match",
            ip_address=ip_address,
        )
        raise ActionRefused(
            "Not uninstalled: type the company's Pipedrive id or its exact name to confirm the uninstall."
        )
    return _action_start(
        kind=Kind.UNINSTALL_COMPANY,
        operator=operator,
        company=company,
        target_type="company",
        target_id=str(company.pipedrive_company_id),
        target_label=str(company),
        ip_address=ip_address,
    )


# --- Execution (called by the task) ----------------------------------------------------------------


def _run_refresh_tokens(action: OperatorAction) -> str:
    company = _action_company(action)
    refreshed = needs_reauth = failed = 0
    errors: list[str] = []
    ids = company.installations.filter(status=Installation.Status.ACTIVE).order_by("pk").values_list("pk", flat=True)
    for installation_id in list(ids):
        try:
            installation_token_refresh(installation_id=installation_id, force=True)
            refreshed += 1
        except NeedsReauth:
            needs_reauth += 1
        except InstallationNotActive:
            continue  # uninstalled meanwhile
        except PipedriveError as exc:
            failed += 1
            errors.append(f"installation {installation_id}: {exc}")
    summary = f"{refreshed} refreshed, {needs_reauth} need re-auth, {failed} failed"
    if failed:
        raise ActionFailed(summary + ("; " + "; ".join(errors) if errors else ""))
    return summary


def _run_uninstall(action: OperatorAction) -> str:
    company = Company.objects.filter(pk=action.company_id).first() if action.company_id else None
    if company is None:
        return "company already uninstalled; nothing to do"
    try:
        result = company_uninstall_by_vendor(company=company)
    except PipedriveError as exc:
        raise ActionFailed(f"revocation failed, nothing erased (retry later): {exc}") from exc
    return "uninstalled; company data purged" if result.company_purged else "uninstalled"


def _action_company(action: OperatorAction) -> Company:
    company = Company.objects.filter(pk=action.company_id).first() if action.company_id else None
    if company is None:
        raise ActionFailed("the company no longer exists (uninstalled)")
    return company


def _run_reconcile(action: OperatorAction) -> str:
    company = _action_company(action)
    try:
        result = company_webhooks_reconcile(company_id=company.pk)
    except PipedriveError as exc:
        raise ActionFailed(f"Pipedrive did not answer as expected: {exc}") from exc
    summary = (
        f"{result.status}: {len(result.created)} created, {len(result.deleted)} deleted, {len(result.kept)} kept"
        + (f"; {result.reason}" if result.reason else "")
        + (f"; errors: {'; '.join(result.errors)}" if result.errors else "")
    )
    if result.status != "available" or result.errors:
        raise ActionFailed(summary)
    return summary


def _run_replay_dead(action: OperatorAction) -> str:
    company = _action_company(action)
    replayed = inbox_events_replay_dead(company_id=company.pk)
    counts = InboxEvent.objects.filter(company=company).order_by().values("status").annotate(n=Count("pk"))
    now = ", ".join(f"{row['n']} {row['status']}" for row in counts) or "no events"
    return f"{replayed} dead event(s) replayed; now {now}"


def _run_replay_event(action: OperatorAction) -> str:
    if action.event_id is None or not inbox_event_replay(inbox_event_id=action.event_id):
        raise ActionFailed("not replayed: the event is no longer dead (or no longer exists)")
    status = InboxEvent.objects.filter(pk=action.event_id).values_list("status", flat=True).first()
    return f"replayed; the event is now {status}"


_RUNNERS: dict[str, Callable[[OperatorAction], str]] = {
    Kind.REFRESH_TOKENS: _run_refresh_tokens,
    Kind.RECONCILE_WEBHOOKS: _run_reconcile,
    Kind.REPLAY_DEAD_EVENTS: _run_replay_dead,
    Kind.REPLAY_EVENT: _run_replay_event,
    Kind.UNINSTALL_COMPANY: _run_uninstall,
}


def operator_action_execute(*, action_id: int) -> OperatorAction:
    """Run a pending action once and record how it went; a finished action is left alone."""
    with transaction.atomic():
        claimed = OperatorAction.objects.filter(pk=action_id, status=OperatorAction.Status.PENDING).update(
            status=OperatorAction.Status.RUNNING, started_at=timezone.now()
        )
    action = OperatorAction.objects.get(pk=action_id)
    if not claimed:
        return action
    status, result = OperatorAction.Status.DONE, ""
    try:
        result = _RUNNERS[action.kind](action)
    except ActionFailed as exc:
        status, result = OperatorAction.Status.FAILED, str(exc)
    except Exception as exc:
        logger.exception("operator action %s (%s) crashed", action.pk, action.kind)
        status, result = OperatorAction.Status.FAILED, f"unexpected error: {type(exc).__name__}"
    action.status = status
    action.result = result[:1000]
    action.finished_at = timezone.now()
    action.save(update_fields=["status", "result", "finished_at"])
    return action
