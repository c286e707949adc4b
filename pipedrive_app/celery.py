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
if app.conf.task_always_eager and not app.conf.broker_url:
    # Eager tasks still take a producer from kombu's pool; with no broker configured that would be a
    # connection to a default amqp://localhost (and kombu's "No hostname was supplied" warning in the
    # `make run` log). The in-memory transport makes it a no-op: nothing is sent, nothing is awaited.
    app.conf.update(broker_url="memory://localhost/")
# A web request's id travels into the tasks it enqueues (core/request_id.py).
connect_celery_signals()
