"""Celery tasks for webhooks: thin wrappers that own the retry policy."""

from __future__ import annotations

import logging
import random

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from pipedrive_app.pipedrive.errors import PipedriveBudgetExhausted, PipedriveRateLimited, PipedriveUnavailable

from . import services

logger = logging.getLogger(__name__)


def _backoff(retries: int) -> float:
    """Exponential back-off with full jitter."""
    ceiling = min(settings.WEBHOOKS_RETRY_BACKOFF_MAX_SECONDS, settings.WEBHOOKS_RETRY_BACKOFF_SECONDS * 2**retries)
    return random.uniform(ceiling / 2, ceiling)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def process_inbox_event(self, inbox_event_id: int) -> str:
    """Process one stored delivery, then a batch of stragglers (services.inbox_stragglers_drain).

    The service counts attempts and dead-letters; this retries. A first delivery of a row that a
    drain has leased is left to that drain.
    """
    try:
        if not self.request.is_eager and self.request.retries == 0:
            if services.inbox_event_leased(inbox_event_id=inbox_event_id):
                outcome = "leased"
            else:
                outcome = services.inbox_event_process(inbox_event_id=inbox_event_id)
            services.inbox_stragglers_drain()
            return outcome
        return services.inbox_event_process(inbox_event_id=inbox_event_id)
    except services.InboxEventRetry as exc:
        if self.request.is_eager:
            # No broker (development, tests): no delayed retry exists, so try again at once. The
            # service's attempt count bounds this.
            return process_inbox_event.run(inbox_event_id)
        # The row's next_attempt_at says the same time: a drain would take it then if this retry
        # were lost with its worker or the broker.
        countdown = exc.retry_after if exc.retry_after is not None else _backoff(self.request.retries)
        raise self.retry(countdown=countdown, exc=exc) from None
    except (OperationalError, InterfaceError) as exc:  # the database itself failed: try again later
        if self.request.retries >= settings.WEBHOOKS_PROCESSING_MAX_ATTEMPTS:
            raise
        raise self.retry(countdown=_backoff(self.request.retries), exc=exc) from None


@shared_task(bind=True, acks_late=True, max_retries=8)
def reconcile_company_webhooks(self, company_id: int) -> str:
    """Reconcile one company; 429 retries after the wait Pipedrive named, 5xx with back-off, 4xx never."""
    try:
        return services.company_webhooks_reconcile(company_id=company_id).status
    except PipedriveBudgetExhausted as exc:
        # Paused: the company's daily budget is down to the panels' reserve. Look again until it
        # resets; these waits do not count against max_retries.
        countdown = max(1.0, min(exc.retry_after, settings.PIPEDRIVE_BUDGET_RECHECK_SECONDS))
        logger.info("company %s: reconcile paused for the daily budget; next look in %.0f s", company_id, countdown)
        raise self.retry(countdown=countdown, exc=exc, max_retries=None) from None
    except PipedriveRateLimited as exc:
        raise self.retry(countdown=max(1.0, exc.retry_after), exc=exc) from None
    except (PipedriveUnavailable, OperationalError) as exc:
        raise self.retry(countdown=_backoff(self.request.retries), exc=exc) from None


@shared_task
def reconcile_all_webhooks() -> int:
    """Periodic: queue a reconciliation per company (re-creates webhooks Pipedrive deleted)."""
    companies = services.companies_for_reconciliation()
    for company_id in companies:
        services.company_webhooks_reconcile_enqueue(company_id=company_id)
    return len(companies)


@shared_task(bind=True, acks_late=True, max_retries=None)
def drain_inbox(self) -> dict[str, int]:
    """A wake-up: process the inbox's due pending rows (services.inbox_drain).

    Out of budget with rows still due, it hands over to a fresh task (behind whatever else is
    queued); done, it schedules the next drain for when the next pending row becomes due.
    """
    try:
        result = services.inbox_drain()
    except (OperationalError, InterfaceError) as exc:  # the database itself failed: try again later
        raise self.retry(countdown=_backoff(min(self.request.retries, 6)), exc=exc) from None
    if result.more:
        services.inbox_drain_wake()
    elif not self.request.is_eager:
        services.inbox_drain_wake_when_due()
    return dict(result.outcomes)


@shared_task
def sweep_inbox() -> int:
    """Periodic: re-queue inbox rows left pending (the broker or a worker lost their message)."""
    return services.inbox_events_sweep()


@shared_task
def purge_processed_inbox() -> int:
    return services.inbox_events_purge_processed()
