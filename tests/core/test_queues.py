"""Task routing: webhook processing and Pipedrive API work never share a queue."""

from __future__ import annotations

import pytest

from pipedrive_app.celery import app
from pipedrive_app.core import queues


def _queue(name: str, **options: str) -> str:
    return app.amqp.router.route(dict(options), name, (), {}, None)["queue"].name


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("pipedrive_app.webhooks.tasks.process_inbox_event", "webhooks"),
        ("pipedrive_app.webhooks.tasks.sweep_inbox", "webhooks"),
        ("pipedrive_app.webhooks.tasks.purge_processed_inbox", "webhooks"),
        ("pipedrive_app.history.tasks.purge_expired_history", "webhooks"),
        ("pipedrive_app.installations.tasks.refresh_installation_token", "pipedrive"),
        ("pipedrive_app.installations.tasks.refresh_idle_refresh_tokens", "pipedrive"),
        ("pipedrive_app.webhooks.tasks.reconcile_company_webhooks", "pipedrive"),
        ("pipedrive_app.webhooks.tasks.reconcile_all_webhooks", "pipedrive"),
        ("pipedrive_app.dashboard.tasks.run_operator_action", "pipedrive"),
        ("pipedrive_app.installations.tasks.purge_expired_oauth_states", "celery"),
    ],
)
def test_tasks_are_routed_to_their_queue(task: str, queue: str) -> None:
    assert _queue(task) == queue


def test_every_routed_name_is_a_registered_task() -> None:
    app.loader.import_default_modules()
    assert set(app.tasks) >= queues.WEBHOOKS_TASKS | queues.PIPEDRIVE_TASKS
    assert not queues.WEBHOOKS_TASKS & queues.PIPEDRIVE_TASKS


def test_queue_names_are_read_at_publish_time_and_explicit_queue_wins(settings) -> None:
    settings.CELERY_WEBHOOKS_QUEUE = settings.CELERY_PIPEDRIVE_QUEUE = "private-q"
    assert _queue("pipedrive_app.webhooks.tasks.process_inbox_event") == "private-q"
    assert _queue("pipedrive_app.installations.tasks.refresh_installation_token") == "private-q"
    assert _queue("pipedrive_app.webhooks.tasks.sweep_inbox", queue="explicit") == "explicit"


def test_eager_tasks_borrow_no_connection_to_a_default_broker(caplog, settings) -> None:
    """With no broker configured (`make run`), enqueuing takes a producer from an in-memory transport:
    no connection attempt to amqp://localhost and no kombu "No hostname" warning in the log."""
    if settings.CELERY_BROKER_URL:
        pytest.skip("a broker is configured: tasks are not eager")
    from pipedrive_app.celery import app

    with caplog.at_level("WARNING"), app.producer_or_acquire() as producer:
        assert producer.connection.transport.driver_type == "memory"
    assert not [r for r in caplog.records if r.name.startswith("kombu")]
