"""The Celery application.

With ``CELERY_BROKER_URL`` unset (the default for ``make run`` and the first test pass), tasks run
eagerly in the calling process; with it set, they go to the broker and ``make worker`` / ``make beat``
run them.
"""

import os

from celery import Celery

from pipedrive_app.core.request_id import connect_celery_signals
from pipedrive_app.webhooks.worker import InboxWakeUpOnConnect

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pipedrive_app.settings")

# Broker connections retry every second or two, not up to every 30 s (core/broker.py).
app = Celery("pipedrive_app", amqp="pipedrive_app.core.broker:AMQP")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# A web request's id travels into the tasks it enqueues (core/request_id.py).
connect_celery_signals()
# Each (re)connection to the broker wakes an inbox drain (webhooks/worker.py).
app.steps["consumer"].add(InboxWakeUpOnConnect)
