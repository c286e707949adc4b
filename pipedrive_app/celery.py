"""The Celery application.

With ``CELERY_BROKER_URL`` unset (the default for ``make run`` and the first test pass), tasks run
eagerly in the calling process; with it set, they go to the broker and ``make worker`` / ``make beat``
run them.

Logging: a worker (and beat) keeps Django's ``LOGGING`` — the secret-redacting filter, the request
id and ``LOG_FORMAT`` — instead of Celery's own set-up. A receiver of ``setup_logging`` tells Celery
not to configure logging at all (``worker_hijack_root_logger`` is off as well), and
``after_setup_*_logger`` attach the filters to any handler Celery adds later (e.g. ``--logfile``).
"""

import logging
import logging.config
import os
from typing import Any

from celery import Celery, signals

from pipedrive_app.core.request_id import connect_celery_signals
from pipedrive_app.webhooks.worker import InboxWakeUpOnConnect

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pipedrive_app.settings")

# Broker connections retry every second or two, not up to every 30 s (core/broker.py).
app = Celery("pipedrive_app", amqp="pipedrive_app.core.broker:AMQP")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
if app.conf.task_always_eager and not app.conf.broker_url:
    # Eager tasks still take a producer from kombu's pool; with no broker configured that would be a
    # connection to a default amqp://localhost (and kombu's "No hostname was supplied" warning in the
    # `make run` log). The in-memory transport makes it a no-op: nothing is sent, nothing is awaited.
    app.conf.update(broker_url="memory://localhost/")
# A web request's id travels into the tasks it enqueues (core/request_id.py).
connect_celery_signals()
# Each (re)connection to the broker wakes an inbox drain (webhooks/worker.py).
app.steps["consumer"].add(InboxWakeUpOnConnect)


@signals.setup_logging.connect(weak=False)
def _django_logging(loglevel: Any = None, **_: Any) -> None:
    """Celery must not replace the root logger's handlers: apply the project's LOGGING instead, at
    the level given on the command line (``--loglevel``), as Celery would."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel if isinstance(loglevel, int) else str(loglevel).upper())


def _guard_handlers(logger: logging.Logger | None = None, **_: Any) -> None:
    from pipedrive_app.core.logging import RedactSecretsFilter
    from pipedrive_app.core.request_id import RequestIdFilter

    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactSecretsFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
            handler.addFilter(RedactSecretsFilter())


@signals.celeryd_after_setup.connect(weak=False)
def _redirect_prints(**_: Any) -> None:
    """Celery redirects a worker's stdout/stderr into logging only when it set logging up itself;
    do it here, so a stray ``print`` goes through the redacting handler too."""
    if app.conf.worker_redirect_stdouts:
        app.log.redirect_stdouts(app.conf.worker_redirect_stdouts_level)


signals.after_setup_logger.connect(_guard_handlers, weak=False)
signals.after_setup_task_logger.connect(_guard_handlers, weak=False)
