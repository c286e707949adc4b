"""Webhook subscriptions per company (desired state, reconciliation, ownership) and the event inbox.

Reconciliation treats Pipedrive as the source of truth: it lists the company's webhooks, keeps one
per desired subscription, deletes duplicates and strays of ours (our URL prefix, not desired), and
creates what is missing. One run per company at a time, under the company's reconcile lease
(core/locks.py); no transaction or row lock is open while Pipedrive is called, and the outcome is
stored in one short transaction (lock order: Company, then its CompanyWebhookState).

The inbox stores every delivery before anything else happens (unique per company + event key), then
enqueues processing after commit; processing claims the row in the transaction that marks it
processed, so an event's effects happen once however often it is delivered or enqueued.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from pipedrive_app.core import locks
from pipedrive_app.core.parsing import text_clean
from pipedrive_app.installations.models import Company, Installation
from pipedrive_app.installations.selectors import company_acting_installations
from pipedrive_app.installations.services import InstallationNotActive, installation_client
from pipedrive_app.metrics import instruments as metrics
from pipedrive_app.pipedrive.errors import (
    PipedriveError,
    PipedriveForbidden,
    PipedriveNotFound,
    PipedriveRateLimited,
    PipedriveUnavailable,
    PipedriveValidationError,
)
from pipedrive_app.pipedrive.types import Webhook

from .handlers import EventContext, EventSkipped, handlers_for
from .models import CompanyWebhookState, InboxEvent, Subscription
from .payloads import Delivery, UnreadableDelivery, delivery_parse
from .selectors import (
    DesiredSubscription,
    desired_subscriptions,
    subscription_url_prefix,
)

logger = logging.getLogger(__name__)

# Worth trying again later; anything else is a bug or a 4xx and goes straight to dead.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    PipedriveUnavailable,
    PipedriveRateLimited,
    OperationalError,
    InterfaceError,
)


# --- per-company state --------------------------------------------------------------------------


def webhook_state_get_or_create(*, company: Company) -> CompanyWebhookState:
    """The company's receiver key and Basic credentials, made once, at random."""
    state = CompanyWebhookState.objects.filter(company=company).first()
    if state is not None:
        return state
    try:
        with transaction.atomic():
            return CompanyWebhookState.objects.create(
                company=company,
                url_key=secrets.token_urlsafe(32),
                http_auth_user=f"pd-{secrets.token_hex(8)}",
                http_auth_password=secrets.token_urlsafe(32),
            )
    except IntegrityError:  # created concurrently
        return CompanyWebhookState.objects.get(company=company)


def webhook_credentials_check(*, state: CompanyWebhookState, username: str, password: str) -> bool:
    """Constant-time comparison of both parts (a mismatch in either costs the same)."""
    user_ok = secrets.compare_digest(username.encode(), (state.http_auth_user or "").encode())
    password_ok = secrets.compare_digest(password.encode(), (state.http_auth_password or "").encode())
    return user_ok and password_ok


# --- reconciliation -----------------------------------------------------------------------------


@dataclass
class ReconcileResult:
    status: str  # available | unavailable | gone | deferred (another run holds the lease and runs again)
    owner_installation_id: int | None = None
    created: list[str] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reason: str = ""


# Longer than one run can take; a holder that died frees it after this long.
RECONCILE_LEASE_SECONDS = 600
RECONCILE_MAX_RUNS = 5


def _reconcile_lease_scope(company_id: int):
    return Company.objects.filter(pk=company_id)


def company_webhooks_reconcile(*, company_id: int) -> ReconcileResult:
    """Make the company's webhooks at Pipedrive match its tracked entities. Idempotent.

    One run per company at a time, under the company's reconcile lease (core/locks.py): no
    transaction or row lock is open while Pipedrive is called. A run asked for while another holds
    the lease does not wait: it asks the holder to run once more (status ``deferred``).

    Raises PipedriveRateLimited (with ``retry_after``) and PipedriveUnavailable for the task to retry.
    """
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return ReconcileResult(status="gone")
    webhook_state_get_or_create(company=company)
    lease = {"until_field": "webhooks_lease_until", "owner_field": "webhooks_lease_id"}
    lease_id = locks.lease_claim(_reconcile_lease_scope(company_id), seconds=RECONCILE_LEASE_SECONDS, **lease)
    if lease_id is None:
        _reconcile_lease_scope(company_id).update(webhooks_rerun=True)
        # The holder may have let go between the claim and the request: try once more.
        lease_id = locks.lease_claim(_reconcile_lease_scope(company_id), seconds=RECONCILE_LEASE_SECONDS, **lease)
        if lease_id is None:
            return ReconcileResult(
                status="deferred", reason="Another reconciliation of this company is running; it will run again."
            )
    held = _reconcile_lease_scope(company_id).filter(webhooks_lease_id=lease_id)
    try:
        for _ in range(RECONCILE_MAX_RUNS):
            held.update(webhooks_rerun=False)
            result = _reconcile_once(company_id=company_id)
            # Let go only if nobody asked for another run meanwhile (one statement: no request is lost).
            if held.filter(webhooks_rerun=False).update(webhooks_lease_until=None, webhooks_lease_id=""):
                return result
        return result
    finally:
        locks.lease_release(_reconcile_lease_scope(company_id), lease_id=lease_id, **lease)


def _reconcile_once(*, company_id: int) -> ReconcileResult:
    company = Company.objects.filter(pk=company_id).first()
    state = CompanyWebhookState.objects.select_related("company").filter(company_id=company_id).first()
    if company is None or state is None:
        return ReconcileResult(status="gone")
    # Webhooks need an admin's token with the admin scope; the current owner keeps them if it can.
    candidates = company_acting_installations(
        company_id=company.pk, preferred_id=state.owner_id, admins_only=True, scope="admin"
    )
    if not candidates:
        reason = "No active admin installation with the admin scope: an admin of the company must install the app."
        return _state_unavailable(company_id, reason)
    refusals: list[str] = []
    for owner in candidates:
        client = installation_client(installation=owner)
        try:
            result, desired, found, errors = _reconcile_as(client=client, owner=owner, state=state)
        except PipedriveForbidden as exc:
            logger.warning("company %s: webhook management refused for installation %s", company_id, owner.pk)
            refusals.append(f"installation {owner.pk}: {exc}")
            continue
        except InstallationNotActive as exc:
            refusals.append(f"installation {owner.pk}: {exc}")
            continue
        finally:
            client.close()
        # Pipedrive has been told; now one short transaction records it (lock order: Company, state).
        with transaction.atomic():
            if locks.lock_company(pk=company_id) is None:
                return ReconcileResult(status="gone")
            locked = locks.lock_company_row("webhooks.CompanyWebhookState", company_id=company_id)
            if locked is None:
                return ReconcileResult(status="gone")
            _subscriptions_sync(state=locked, desired=desired, found=found, errors=errors)
            locked.owner = owner
            locked.status = CompanyWebhookState.Status.AVAILABLE
            locked.unavailable_reason = ""
            locked.last_error = "; ".join(result.errors)[:500]
            locked.last_reconciled_at = timezone.now()
            locked.save()
        return result
    reason = "Pipedrive refused webhook management (403) for every admin installation: " + "; ".join(refusals)
    return _state_unavailable(company_id, reason)


def _state_unavailable(company_id: int, reason: str) -> ReconcileResult:
    logger.warning("company %s: webhooks unavailable: %s", company_id, reason)
    with transaction.atomic():
        if locks.lock_company(pk=company_id) is None:
            return ReconcileResult(status="gone")
        state = locks.lock_company_row("webhooks.CompanyWebhookState", company_id=company_id)
        if state is None:
            return ReconcileResult(status="gone")
        state.owner = None
        state.status = CompanyWebhookState.Status.UNAVAILABLE
        state.unavailable_reason = reason[:500]
        state.last_reconciled_at = timezone.now()
        state.save()
        Subscription.objects.filter(company_id=company_id).update(pipedrive_webhook_id=None, is_active=False)
    return ReconcileResult(status="unavailable", reason=reason)


def _reconcile_as(
    *, client, owner: Installation, state: CompanyWebhookState
) -> tuple[ReconcileResult, dict[str, DesiredSubscription], dict[str, Webhook], dict[str, str]]:
    """The Pipedrive side of a run (no transaction open): list, delete strays, create what is missing."""
    desired = desired_subscriptions(company=state.company, state=state)
    prefix = subscription_url_prefix()
    ours = [w for w in client.list_webhooks() if w.subscription_url.startswith(prefix)]
    result = ReconcileResult(status="available", owner_installation_id=owner.pk)
    keep: dict[str, Webhook] = {}
    # Prefer an active webhook, then the oldest: the rest of a group are duplicates.
    for webhook in sorted(ours, key=lambda w: (not w.is_active, w.id)):
        want = desired.get(webhook.event_object)
        if want is not None and webhook.event_object not in keep and _matches(webhook, want, state):
            keep[webhook.event_object] = webhook
            result.kept.append(webhook.id)
            continue
        with suppress(PipedriveNotFound):  # already gone
            client.delete_webhook(webhook.id)
        result.deleted.append(webhook.id)
    errors: dict[str, str] = {}
    for event_object, want in desired.items():
        if event_object in keep:
            continue
        try:
            keep[event_object] = client.create_webhook(
                subscription_url=want.subscription_url,
                event_action=want.event_action,
                event_object=want.event_object,
                name=want.name,
                version=want.version,
                http_auth_user=state.http_auth_user,
                http_auth_password=state.http_auth_password,
            )
            result.created.append(event_object)
        except PipedriveValidationError as exc:
            # 400: URL unreachable from Pipedrive; 422: the 40-per-user limit. Recorded, not retried.
            errors[event_object] = str(exc)[:500]
            result.errors.append(f"{event_object}: {exc}")
    logger.info(
        "company %s: webhooks reconciled (kept %d, created %d, deleted %d)",
        state.company_id,
        len(result.kept),
        len(result.created),
        len(result.deleted),
    )
    return result, desired, keep, errors


def _matches(webhook: Webhook, want: DesiredSubscription, state: CompanyWebhookState) -> bool:
    return (
        webhook.subscription_url == want.subscription_url
        and webhook.event_action == want.event_action
        and (webhook.version or "2.0") == want.version
        # Pipedrive echoes the user (not the password); a different one is a stale credential.
        and webhook.http_auth_user in (None, state.http_auth_user)
    )


def _subscriptions_sync(
    *,
    state: CompanyWebhookState,
    desired: dict[str, DesiredSubscription],
    found: dict[str, Webhook],
    errors: dict[str, str],
) -> None:
    now = timezone.now()
    Subscription.objects.filter(company_id=state.company_id).exclude(event_object__in=list(desired)).delete()
    for event_object, want in desired.items():
        webhook = found.get(event_object)
        Subscription.objects.update_or_create(
            company_id=state.company_id,
            event_object=event_object,
            defaults={
                "event_action": want.event_action,
                "version": want.version,
                "name": want.name,
                "subscription_url": want.subscription_url,
                "pipedrive_webhook_id": webhook.id if webhook else None,
                "owner_user_id": webhook.owner_id if webhook else None,
                "is_active": bool(webhook and webhook.is_active),
                "last_http_status": webhook.last_http_status if webhook else None,
                "last_delivery_time": webhook.last_delivery_time if webhook else None,
                "remove_reason": (webhook.remove_reason or "")[:255] if webhook else "",
                "last_error": errors.get(event_object, ""),
                "last_seen_at": now if webhook else None,
            },
        )


def company_webhooks_release(*, installation: Installation) -> int:
    """Delete, at Pipedrive, the webhooks of ours this installation's user owns (vendor-side
    uninstall, while the tokens still work). Never raises: Pipedrive deletes them on uninstall anyway."""
    if not installation.is_active or not installation.is_admin:
        return 0
    prefix = subscription_url_prefix()
    deleted = 0
    client = installation_client(installation=installation)
    try:
        for webhook in client.list_webhooks():
            if webhook.subscription_url.startswith(prefix) and webhook.owner_id in (
                None,
                installation.pipedrive_user_id,
            ):
                with suppress(PipedriveNotFound):
                    client.delete_webhook(webhook.id)
                deleted += 1
    except PipedriveError as exc:
        logger.warning("installation %s: webhooks not deleted before uninstall: %s", installation.pk, exc)
    finally:
        client.close()
    Subscription.objects.filter(
        company_id=installation.company_id, owner_user_id=installation.pipedrive_user_id
    ).update(pipedrive_webhook_id=None, is_active=False)
    return deleted


def company_webhooks_reconcile_enqueue(*, company_id: int) -> bool:
    """Queue a reconciliation; a broker failure is logged (the periodic run catches up)."""
    from .tasks import reconcile_company_webhooks

    try:
        reconcile_company_webhooks.apply_async(args=(company_id,), retry=False)
        return True
    except Exception:
        logger.exception("company %s: could not queue webhook reconciliation", company_id)
        return False


def companies_for_reconciliation() -> list[int]:
    return list(Company.objects.order_by("pk").values_list("pk", flat=True))


# --- inbox: receive -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiveResult:
    inbox_event_id: int | None
    duplicate: bool


def inbox_event_receive(
    *, state: CompanyWebhookState, delivery: Delivery | UnreadableDelivery, body: str
) -> ReceiveResult:
    """Store the delivery (once per event) and queue its processing once it is committed.

    One INSERT in autocommit: the row is durable before Pipedrive hears 200, and the enqueue that
    ``on_commit`` runs right after it can only find a committed row. A delivery whose content the app
    cannot use (or that names another company) is kept as ``unprocessable`` with the reason, and
    acknowledged like any other: Pipedrive bans webhooks whose deliveries fail.
    """
    status, reason = InboxEvent.Status.PENDING, ""
    if isinstance(delivery, UnreadableDelivery):
        status, reason = InboxEvent.Status.UNPROCESSABLE, delivery.reason
    elif delivery.pipedrive_company_id != state.company.pipedrive_company_id:
        status = InboxEvent.Status.UNPROCESSABLE
        reason = f"the event names company {delivery.pipedrive_company_id}, not the company of this URL"
    if status != InboxEvent.Status.PENDING:
        logger.info("webhook for company %s kept unprocessed: %s", state.company_id, reason)
    readable = isinstance(delivery, Delivery)
    try:
        # Inside a caller's transaction a savepoint keeps a duplicate from breaking it; otherwise
        # no BEGIN/COMMIT round trips.
        with transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext():
            row = InboxEvent.objects.create(
                company_id=state.company_id,
                dedup_key=delivery.dedup_key,
                version=delivery.version,
                entity=delivery.entity,
                action=delivery.action,
                entity_id=delivery.entity_id,
                occurred_at=delivery.occurred_at if isinstance(delivery, Delivery) else None,
                body=text_clean(body),
                status=status,
                reason=reason,
                processed_at=None if status == InboxEvent.Status.PENDING else timezone.now(),
            )
    except IntegrityError:
        counted = InboxEvent.objects.filter(company_id=state.company_id, dedup_key=delivery.dedup_key).update(
            deliveries=F("deliveries") + 1
        )
        if not counted:  # not a duplicate: the company was purged a moment ago
            raise CompanyGone("the company of this URL is no longer installed") from None
        return ReceiveResult(inbox_event_id=None, duplicate=True)
    event_id = row.pk
    if readable and status == InboxEvent.Status.PENDING:
        transaction.on_commit(lambda: inbox_event_enqueue(inbox_event_id=event_id), robust=True)
    return ReceiveResult(inbox_event_id=event_id, duplicate=False)


class CompanyGone(Exception):
    """The URL key's company was deleted between the key lookup and the insert."""


# After a failed publish this process leaves the broker alone for a few seconds: every attempt at a
# dead broker costs a connection attempt on the acknowledgement path (Pipedrive bans slow
# endpoints). The first publish that works again also wakes a drain of the inbox, which takes
# whatever stayed pending meanwhile (see inbox_drain).
BROKER_BACKOFF_SECONDS = 5.0
broker_clock: Callable[[], float] = time.monotonic  # the back-off's clock (tests put their own here)
_broker_down_until = 0.0
_broker_failed = False


def inbox_event_enqueue(*, inbox_event_id: int) -> bool:
    """Queue processing. If the broker is down the row stays pending: a drain takes it later."""
    global _broker_down_until, _broker_failed
    from .tasks import process_inbox_event

    if broker_clock() < _broker_down_until:
        return False
    try:
        process_inbox_event.apply_async(args=(inbox_event_id,), retry=False)
    except Exception as exc:
        if not process_inbox_event.app.conf.task_always_eager:  # eager: the task itself failed
            _broker_down_until = broker_clock() + BROKER_BACKOFF_SECONDS
            _broker_failed = True
        logger.warning("inbox event %s not queued (%s); a drain will take it", inbox_event_id, type(exc).__name__)
        return False
    if _broker_failed:
        _broker_failed = False
        logger.info("broker reachable again: waking an inbox drain for what stayed pending")
        inbox_drain_wake()
    return True


def inbox_events_sweep(*, older_than_seconds: float | None = None, limit: int = 2000) -> int:
    """Re-queue pending rows nobody has touched for a while (lost by a dead broker or worker)."""
    wait = settings.WEBHOOKS_SWEEP_AFTER_SECONDS if older_than_seconds is None else older_than_seconds
    now = timezone.now()
    due = list(
        InboxEvent.objects.filter(status=InboxEvent.Status.PENDING, next_attempt_at__lt=now - timedelta(seconds=wait))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    if not due:
        return 0
    InboxEvent.objects.filter(pk__in=due, status=InboxEvent.Status.PENDING).update(next_attempt_at=now)
    queued = sum(1 for pk in due if inbox_event_enqueue(inbox_event_id=pk))
    logger.info("inbox sweep: %d pending event(s) re-queued (%d accepted by the broker)", len(due), queued)
    return len(due)


# --- inbox: drain (the inbox is the queue) --------------------------------------------------------
#
# Every delivery is a row before it is a message, so a lost message loses nothing but time. A drain
# takes due pending rows straight from the table, in short transactions: it leases a batch (SELECT
# ... FOR UPDATE SKIP LOCKED, then next_attempt_at = now + lease, committed at once), processes each
# row with inbox_event_process (whose own claim keeps the effects to exactly once), and leases the
# next batch until nothing is due or its time budget is spent. Concurrent drains never lease the
# same row; a drain killed mid-batch leaves its leased rows due again when the lease runs out.
#
# What runs a drain: a wake-up task (drain_inbox), published when a worker connects or reconnects to
# the broker (webhooks/worker.py), when a web process's publish works again after failing, by a
# drain that ran out of budget, and at the time the next pending row becomes due (a retry's
# back-off, an expired lease). The periodic sweep stays as the last resort.


def inbox_events_claim(*, limit: int, lease_seconds: float | None = None, due_for_seconds: float = 0.0) -> list[int]:
    """Lease up to ``limit`` pending rows due for at least ``due_for_seconds``, oldest due first."""
    lease = settings.WEBHOOKS_CLAIM_LEASE_SECONDS if lease_seconds is None else lease_seconds
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            InboxEvent.objects.select_for_update(skip_locked=True)
            .filter(status=InboxEvent.Status.PENDING, next_attempt_at__lte=now - timedelta(seconds=due_for_seconds))
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            InboxEvent.objects.filter(pk__in=ids).update(next_attempt_at=now + timedelta(seconds=lease))
    return ids


@dataclass
class DrainResult:
    outcomes: Counter[str] = field(default_factory=Counter)
    more: bool = False  # stopped for the time budget with rows still due

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


def inbox_drain(
    *,
    budget_seconds: float | None = None,
    batch: int | None = None,
    max_batches: int | None = None,
    due_for_seconds: float = 0.0,
) -> DrainResult:
    """Process due pending rows until none is due, the budget is spent or ``max_batches`` ran."""
    budget = settings.WEBHOOKS_DRAIN_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    size = settings.WEBHOOKS_DRAIN_BATCH if batch is None else batch
    deadline = time.monotonic() + budget
    result = DrainResult()
    batches = 0
    while True:
        ids = inbox_events_claim(limit=size, due_for_seconds=due_for_seconds)
        batches += 1
        for pk in ids:
            try:
                outcome = inbox_event_process(inbox_event_id=pk)
            except InboxEventRetry:  # next_attempt_at now holds the back-off; a later drain retries
                outcome = "retry"
            result.outcomes[outcome] += 1
            # Counted like a processing task's outcome (metrics/hooks.py counts those).
            metrics.inbox_event_finished(outcome)
        if len(ids) < size:
            break
        if time.monotonic() >= deadline or (max_batches is not None and batches >= max_batches):
            result.more = True
            break
    if result.total:
        logger.info("inbox drain: %s", ", ".join(f"{k} {v}" for k, v in sorted(result.outcomes.items())))
    return result


def inbox_event_leased(*, inbox_event_id: int) -> bool:
    """Is the row pending but not due (a drain holds its lease, or it waits for a retry)?"""
    return InboxEvent.objects.filter(
        pk=inbox_event_id, status=InboxEvent.Status.PENDING, next_attempt_at__gt=timezone.now()
    ).exists()


def inbox_stragglers_drain() -> DrainResult:
    """After a task's own event: one batch of rows due for a while (their message was lost, or
    waits behind a backlog). Costs one query when there are none."""
    return inbox_drain(max_batches=1, due_for_seconds=settings.WEBHOOKS_STRAGGLER_SECONDS)


def inbox_drain_wake(*, count: int = 1, countdown: float | None = None) -> int:
    """Publish ``count`` drain wake-ups (never raises; returns how many the broker accepted)."""
    from .tasks import drain_inbox

    if drain_inbox.app.conf.task_always_eager and countdown is not None:
        return 0  # no broker: nothing can run later, and running now would find nothing due
    accepted = 0
    for _ in range(count):
        try:
            if countdown is None:
                drain_inbox.apply_async(retry=False)
            else:
                drain_inbox.apply_async(countdown=countdown, retry=False)
        except Exception as exc:
            logger.warning("inbox drain wake-up not queued (%s)", type(exc).__name__)
            break
        accepted += 1
    return accepted


def inbox_drain_wake_when_due(*, horizon_seconds: float = 300.0) -> float | None:
    """Schedule a drain for when the next pending row becomes due (a back-off or a lease ending).

    One wake-up per second of due time, whichever drain asks first (a cache key). Beyond the
    horizon the periodic sweep takes over. Returns the delay scheduled, or None.
    """
    now = timezone.now()
    due = (
        InboxEvent.objects.filter(status=InboxEvent.Status.PENDING, next_attempt_at__gt=now)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if due is None:
        return None
    delay = max(0.2, (due - now).total_seconds() + 0.2)
    if delay > horizon_seconds:
        return None
    from django.core.cache import cache

    try:
        first = cache.add(f"webhooks:inbox-wake:{int(time.time() + delay)}", 1, timeout=int(delay) + 60)
    except Exception:  # the cache is down: a duplicate wake-up costs one query
        first = True
    if first and inbox_drain_wake(countdown=delay):
        return delay
    return None


# --- inbox: process -----------------------------------------------------------------------------


class InboxEventRetry(Exception):
    """A transient failure; the task should try again after ``retry_after`` seconds (None: back off)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@metrics.inbox_event_outcome
def inbox_event_process(*, inbox_event_id: int) -> str:
    """Run the handlers of one stored event, once. Returns processed | skipped | dead.

    Raises InboxEventRetry for a transient failure while attempts remain.
    """
    row = InboxEvent.objects.filter(pk=inbox_event_id).only("pk", "company_id", "status", "body").first()
    if row is None or row.status != InboxEvent.Status.PENDING:
        return "skipped"
    try:
        delivery = delivery_parse(row.body.encode("utf-8"))
    except ValueError as exc:  # InvalidDelivery: not JSON (the receiver refuses those)
        return _inbox_event_settle(inbox_event_id, InboxEvent.Status.UNPROCESSABLE, str(exc))
    if isinstance(delivery, UnreadableDelivery):
        return _inbox_event_settle(inbox_event_id, InboxEvent.Status.UNPROCESSABLE, delivery.reason)
    context = EventContext(inbox_event_id=row.pk, company_id=row.company_id, delivery=delivery)
    handlers = handlers_for(entity=delivery.entity, action=delivery.action)
    if not handlers:
        reason = f"nothing in the app handles {delivery.entity}.{delivery.action} events"
        return _inbox_event_settle(inbox_event_id, InboxEvent.Status.SKIPPED, reason)
    try:
        try:
            prepared = [handler.prepare(context) for handler in handlers]
        except EventSkipped as exc:
            return _inbox_event_settle(inbox_event_id, InboxEvent.Status.SKIPPED, exc.reason)
        with transaction.atomic():
            # The claim: a row another worker holds is skipped, a processed one is not pending.
            claimed = (
                InboxEvent.objects.select_for_update(skip_locked=True)
                .filter(pk=inbox_event_id, status=InboxEvent.Status.PENDING)
                .values_list("pk", flat=True)
                .first()
            )
            if claimed is None:
                return "skipped"
            for handler, state in zip(handlers, prepared, strict=True):
                handler.apply(context, state)
            InboxEvent.objects.filter(pk=inbox_event_id).update(
                status=InboxEvent.Status.PROCESSED,
                processed_at=timezone.now(),
                attempts=F("attempts") + 1,
                last_error="",
            )
    except TRANSIENT_ERRORS as exc:
        return _inbox_event_fail(inbox_event_id, exc, transient=True)
    except Exception as exc:
        logger.exception("inbox event %s: handler failed", inbox_event_id)
        return _inbox_event_fail(inbox_event_id, exc, transient=False)
    return "processed"


def inbox_retry_backoff(retries: int) -> float:
    """Exponential back-off with full jitter (seconds before retry number ``retries + 1``)."""
    ceiling = min(settings.WEBHOOKS_RETRY_BACKOFF_MAX_SECONDS, settings.WEBHOOKS_RETRY_BACKOFF_SECONDS * 2**retries)
    return random.uniform(ceiling / 2, ceiling)


def _inbox_event_settle(inbox_event_id: int, status: str, reason: str) -> str:
    """Mark a pending event skipped or unprocessable (acknowledged, kept, never retried)."""
    settled = InboxEvent.objects.filter(pk=inbox_event_id, status=InboxEvent.Status.PENDING).update(
        status=status, reason=text_clean(reason)[:500], processed_at=timezone.now(), attempts=F("attempts") + 1
    )
    if settled:
        logger.info("inbox event %s %s: %s", inbox_event_id, status, reason[:200])
    return status if settled else "skipped"


def _inbox_event_fail(inbox_event_id: int, exc: BaseException, *, transient: bool) -> str:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    row = InboxEvent.objects.filter(pk=inbox_event_id, status=InboxEvent.Status.PENDING).only("attempts").first()
    if row is None:
        return "skipped"
    attempts = row.attempts + 1
    if transient and attempts < settings.WEBHOOKS_PROCESSING_MAX_ATTEMPTS:
        # The wait Pipedrive named, or exponential back-off; the row is not due before then, so
        # neither a drain nor the sweeper takes it early, and the task's retry comes at that time.
        wait = exc.retry_after if isinstance(exc, PipedriveRateLimited) else inbox_retry_backoff(attempts - 1)
        InboxEvent.objects.filter(pk=inbox_event_id, status=InboxEvent.Status.PENDING).update(
            attempts=attempts, last_error=error, next_attempt_at=timezone.now() + timedelta(seconds=wait)
        )
        logger.warning("inbox event %s: attempt %d failed (%s); will retry", inbox_event_id, attempts, error[:200])
        raise InboxEventRetry(error, retry_after=wait) from exc
    InboxEvent.objects.filter(pk=inbox_event_id, status=InboxEvent.Status.PENDING).update(
        status=InboxEvent.Status.DEAD, attempts=attempts, last_error=error
    )
    logger.error("inbox event %s: dead after %d attempt(s): %s", inbox_event_id, attempts, error[:200])
    return "dead"


# --- inbox: replay and purge ---------------------------------------------------------------------


def inbox_event_replay(*, inbox_event_id: int) -> bool:
    """Give a dead event another full set of attempts. Processed events are never run again."""
    with transaction.atomic():
        replayed = InboxEvent.objects.filter(pk=inbox_event_id, status=InboxEvent.Status.DEAD).update(
            status=InboxEvent.Status.PENDING, attempts=0, last_error="", next_attempt_at=timezone.now()
        )
        if replayed:
            transaction.on_commit(lambda: inbox_event_enqueue(inbox_event_id=inbox_event_id), robust=True)
            transaction.on_commit(metrics.event_replayed)
    return bool(replayed)


def inbox_events_replay_dead(*, company_id: int | None = None) -> int:
    from .selectors import dead_inbox_event_ids

    return sum(1 for pk in dead_inbox_event_ids(company_id=company_id) if inbox_event_replay(inbox_event_id=pk))


def inbox_events_purge_processed(*, now=None) -> int:
    """Forget settled events (processed, skipped, unprocessable) after WEBHOOKS_INBOX_RETENTION_DAYS
    (long past Pipedrive's retries)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOKS_INBOX_RETENTION_DAYS)
    settled = (InboxEvent.Status.PROCESSED, InboxEvent.Status.SKIPPED, InboxEvent.Status.UNPROCESSABLE)
    deleted, _ = InboxEvent.objects.filter(status__in=settled, received_at__lt=cutoff).delete()
    return deleted
