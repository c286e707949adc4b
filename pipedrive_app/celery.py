"""The Celery application.

With ``CELERY_BROKER_URL`` unset (the default for ``make run`` and the first test pass), tasks run
eagerly in the calling process; with it set, they go to the broker and ``make worker`` / ``make beat``
run them.
"""

import os

from celery import Celery

from pipedrive_app.core.request_id import connect_celery_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pipedrive_app.settings")

app = Celery("pipedrive_app")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# A web request's id travels into the tasks it enqueues (core/request_id.py).
connect_celery_signals()
