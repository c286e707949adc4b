"""Which Celery queue each task goes to (settings.CELERY_TASK_ROUTES points here).

Two queues with their own workers, so that a burst of webhook deliveries never delays a token
refresh: ``CELERY_WEBHOOKS_QUEUE`` (default ``webhooks``) for webhook processing and housekeeping,
``CELERY_PIPEDRIVE_QUEUE`` (default ``pipedrive``) for work that calls Pipedrive's API or OAuth
server. Anything else goes to ``CELERY_TASK_DEFAULT_QUEUE`` (default ``celery``), which the
Pipedrive worker also consumes (Procfile).

A router function rather than a static dict: the names are read from settings at publish time, so a
test can point all three at one private queue (``override_settings`` or the ``settings`` fixture).
"""

from __future__ import annotations

from typing import Any

WEBHOOKS_TASKS = frozenset(
    {
        "pipedrive_app.webhooks.tasks.process_inbox_event",
        "pipedrive_app.webhooks.tasks.drain_inbox",
        "pipedrive_app.webhooks.tasks.sweep_inbox",
        "pipedrive_app.webhooks.tasks.purge_processed_inbox",
        "pipedrive_app.history.tasks.purge_expired_history",
        "pipedrive_app.dashboard.tasks.count_inbox_hours",
    }
)
PIPEDRIVE_TASKS = frozenset(
    {
        "pipedrive_app.installations.tasks.refresh_installation_token",
        "pipedrive_app.installations.tasks.refresh_idle_refresh_tokens",
        "pipedrive_app.webhooks.tasks.reconcile_company_webhooks",
        "pipedrive_app.webhooks.tasks.reconcile_all_webhooks",
        "pipedrive_app.dashboard.tasks.run_operator_action",
    }
)


def queue_for(task_name: str) -> str | None:
    """The routed queue's name, or None for the default queue (Celery's ``task_default_queue``)."""
    from django.conf import settings

    if task_name in WEBHOOKS_TASKS:
        return str(settings.CELERY_WEBHOOKS_QUEUE)
    if task_name in PIPEDRIVE_TASKS:
        return str(settings.CELERY_PIPEDRIVE_QUEUE)
    return None


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> dict[str, str] | None:
    """Celery router: ``{"queue": ...}``; an explicit ``queue=`` given to apply_async still wins."""
    queue = queue_for(name)
    return {"queue": queue} if queue else None
