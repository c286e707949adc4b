"""Celery tasks of the sandbox. Thin: take ids, call one service. Pipedrive's own retry policy for
webhooks lives in ``webhook_sender`` (fixed delays, not Celery's back-off)."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def fan_out_event(event_id: int) -> None:
    from .webhook_sender import delivery_schedule, event_fan_out

    for delivery_id in event_fan_out(event_id=event_id):
        delivery_schedule(delivery_id=delivery_id, delay=0)


@shared_task(ignore_result=True)
def deliver_webhook(delivery_id: int) -> None:
    from .webhook_sender import webhook_delivery_attempt

    webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def notify_app_uninstalled(*, company_id: int, user_id: int, client_id: str) -> None:
    from .uninstall_notifier import app_notify_uninstalled

    app_notify_uninstalled(company_id=company_id, user_id=user_id, client_id=client_id)


@shared_task(ignore_result=True)
def remove_stale_webhooks() -> int:
    from .webhook_sender import webhooks_remove_stale

    return webhooks_remove_stale()
