"""Webhooks: subscriptions per company and the event inbox, one module each.

- ``subscriptions``: per-company state and Basic credentials, desired subscriptions, reconciliation
  against Pipedrive (under the company's lease, no lock across a call), ownership and release;
- ``inbox``: receive, enqueue, drains (the inbox is the queue), processing, replay and purge.

Callers import from this package (``from pipedrive_app.webhooks import services``).
"""

from .inbox import (
    BROKER_BACKOFF_SECONDS,
    TRANSIENT_ERRORS,
    CompanyGone,
    DrainResult,
    InboxEventRetry,
    ReceiveResult,
    inbox_drain,
    inbox_drain_wake,
    inbox_drain_wake_when_due,
    inbox_event_enqueue,
    inbox_event_leased,
    inbox_event_process,
    inbox_event_receive,
    inbox_event_replay,
    inbox_events_claim,
    inbox_events_purge_processed,
    inbox_events_replay_dead,
    inbox_events_sweep,
    inbox_retry_backoff,
    inbox_stragglers_drain,
)
from .subscriptions import (
    RECONCILE_LEASE_SECONDS,
    RECONCILE_MAX_RUNS,
    ReconcileResult,
    companies_for_reconciliation,
    company_webhooks_reconcile,
    company_webhooks_reconcile_enqueue,
    company_webhooks_release,
    webhook_credentials_check,
    webhook_state_get_or_create,
)

__all__ = [
    "BROKER_BACKOFF_SECONDS",
    "RECONCILE_LEASE_SECONDS",
    "RECONCILE_MAX_RUNS",
    "TRANSIENT_ERRORS",
    "CompanyGone",
    "DrainResult",
    "InboxEventRetry",
    "ReceiveResult",
    "ReconcileResult",
    "companies_for_reconciliation",
    "company_webhooks_reconcile",
    "company_webhooks_reconcile_enqueue",
    "company_webhooks_release",
    "inbox_drain",
    "inbox_drain_wake",
    "inbox_drain_wake_when_due",
    "inbox_event_enqueue",
    "inbox_event_leased",
    "inbox_event_process",
    "inbox_event_receive",
    "inbox_event_replay",
    "inbox_events_claim",
    "inbox_events_purge_processed",
    "inbox_events_replay_dead",
    "inbox_events_sweep",
    "inbox_retry_backoff",
    "inbox_stragglers_drain",
    "webhook_credentials_check",
    "webhook_state_get_or_create",
]
