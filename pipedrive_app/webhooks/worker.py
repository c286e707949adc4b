"""A worker consumer step: wake an inbox drain each time the worker (re)connects to the broker.

Celery starts the consumer's steps on every connection: at start-up (after a restart, e.g. when a
worker was SIGKILLed) and again after each reconnect (the broker was down; whatever was queued in
it may be gone). Each time, if this worker consumes the webhooks queue, it publishes one drain
wake-up per pool process, so the inbox rows left pending meanwhile are processed within seconds,
not at the next periodic sweep. Registered in pipedrive_app/celery.py.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps

logger = logging.getLogger(__name__)


class InboxWakeUpOnConnect(bootsteps.StartStopStep):
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, parent: Any) -> None:
        from django.conf import settings

        from .services import inbox_drain_wake

        consumer = getattr(parent, "task_consumer", None)
        queues = {queue.name for queue in getattr(consumer, "queues", None) or ()}
        if settings.CELERY_WEBHOOKS_QUEUE not in queues:
            return
        concurrency = getattr(getattr(parent, "controller", None), "concurrency", None) or 1
        woken = inbox_drain_wake(count=max(1, int(concurrency)))
        logger.info("connected to the broker: %d inbox drain wake-up(s) queued", woken)
