"""Hooks connected at start-up (``MetricsConfig.ready``): they record into ``instruments``."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from pipedrive_app.webhooks.handlers import EventContext

from . import instruments

PROCESS_TASK = "pipedrive_app.webhooks.tasks.process_inbox_event"


class LagHandler:
    """A webhook event handler that writes nothing: it measures delivery -> history once committed."""

    def prepare(self, context: EventContext) -> None:
        return None

    def apply(self, context: EventContext, prepared: None) -> None:
        from pipedrive_app.webhooks.models import InboxEvent

        received_at = InboxEvent.objects.filter(pk=context.inbox_event_id).values_list("received_at", flat=True).first()
        if received_at is not None:
            transaction.on_commit(
                lambda: instruments.history_lag_observe((timezone.now() - received_at).total_seconds())
            )


lag_handler = LagHandler()


def on_task_postrun(sender: Any = None, retval: Any = None, state: str | None = None, **_: Any) -> None:
    """Count how each run of the processing task ended (processed, skipped, dead or retry)."""
    if getattr(sender, "name", None) != PROCESS_TASK:
        return
    if state == "RETRY":
        instruments.inbox_event_finished("retry")
    elif state == "FAILURE":
        instruments.inbox_event_finished("error")
    elif isinstance(retval, str):
        instruments.inbox_event_finished(retval)
