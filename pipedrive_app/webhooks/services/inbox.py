"""The event inbox: receive (store every delivery before anything else happens, unique per company
+ event key), enqueue after commit, drain (the inbox is the queue), process, replay and purge.

Processing claims the row in the transaction that marks it processed, so an event's effects happen
once however often it is delivered or enqueued.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from pipedrive_app.core.parsing import text_clean
from pipedrive_app.metrics import instruments as metrics
from pipedrive_app.pipedrive.errors import (
    PipedriveRateLimited,
    PipedriveUnavailable,
)

from ..handlers import EventContext, EventSkipped, handlers_for
from ..models import CompanyWebhookState, InboxEvent
from ..payloads import Delivery, UnreadableDelivery, delivery_parse

logger = logging.getLogger(__name__)


# Worth trying again later; anything else is a bug or a 4xx and goes straight to dead.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    PipedriveUnavailable,
    PipedriveRateLimited,
    OperationalError,
    InterfaceError,
)


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
    from ..tasks import process_inbox_event

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
            result.outcomes[outcome] += 1  # the metric is counted once, by inbox_event_process's wrapper
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
    from ..tasks import drain_inbox

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
    from ..selectors import dead_inbox_event_ids

    return sum(1 for pk in dead_inbox_event_ids(company_id=company_id) if inbox_event_replay(inbox_event_id=pk))


def inbox_events_purge_processed(*, now=None) -> int:
    """Forget settled events (processed, skipped, unprocessable) after WEBHOOKS_INBOX_RETENTION_DAYS
    (long past Pipedrive's retries)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOKS_INBOX_RETENTION_DAYS)
    settled = (InboxEvent.Status.PROCESSED, InboxEvent.Status.SKIPPED, InboxEvent.Status.UNPROCESSABLE)
    deleted, _ = InboxEvent.objects.filter(status__in=settled, received_at__lt=cutoff).delete()
    return deleted
