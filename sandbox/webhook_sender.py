"""Deliver change events to webhook subscriptions the way Pipedrive does (docs/pipedrive-platform.md §4).

- Every matching active subscription of the company gets the event (``*`` matches any action or
  object), in the v2 body or, for ``version: "1.0"`` subscriptions, the v1 body.
- POST with JSON, HTTP Basic auth when the subscription has credentials, 10 s timeout; any 2xx is a
  success.
- A failed attempt is retried 3 times, after 3, 30 and 150 s (times ``SANDBOX_WEBHOOK_DELAY_SCALE``),
  with the same event id and a higher ``attempt``.
- Ten consecutive failed first attempts ban the webhook for 30 minutes; events in the ban window are
  recorded as lost and never sent.
- A webhook with no successful delivery for 3 days is deleted (kept here with a ``remove_reason``).

Attempts run as Celery tasks. Without a broker (``make run``, tests) Celery runs them eagerly, so the
first attempt happens inline when the change commits, and a delayed retry runs on a timer thread.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from . import conf
from .facts import webhook_bodies
from .models import ChangeEvent, Webhook, WebhookDelivery
from .routers import SANDBOX_DB

logger = logging.getLogger(__name__)

_USER_AGENT = "Pipedrive-Sandbox-Webhooks/1.0"

# Timers of retries scheduled in eager mode, so tests (and shutdown) can cancel what is pending.
_pending_timers: set[threading.Timer] = set()
_timers_lock = threading.Lock()


# --- bodies -----------------------------------------------------------------------------------------------


def _host(event: ChangeEvent) -> str:
    return urlsplit(event.company.api_domain).netloc


def _delivery(event: ChangeEvent, webhook: Webhook, attempt: int) -> webhook_bodies.Delivery:
    return webhook_bodies.Delivery(
        action=event.action,
        entity=event.entity,
        entity_id=event.entity_id,
        company_id=event.company_id,
        user_id=event.user_id or webhook.owner_id,
        event_id=str(event.event_id),
        correlation_id=str(event.correlation_id),
        occurred_at=event.occurred_at,
        webhook_id=webhook.pk,
        webhook_owner_id=webhook.owner_id,
        webhook_type=webhook.type,
        permitted_user_id=webhook.user_id,
        change_source="app" if event.change_source == ChangeEvent.Source.APP else "api",
        attempt=attempt,
        host=_host(event),
    )


def body_v2(*, event: ChangeEvent, webhook: Webhook, attempt: int) -> dict[str, Any]:
    """Webhooks v2, as the migration guide's examples (``facts.webhook_bodies``)."""
    return webhook_bodies.body_v2(_delivery(event, webhook, attempt), data=event.data, previous=event.previous)


def body_v1(*, event: ChangeEvent, webhook: Webhook, attempt: int) -> dict[str, Any]:
    """Webhooks v1: whole v1 objects, custom fields at the top level."""
    return webhook_bodies.body_v1(_delivery(event, webhook, attempt), current=event.data_v1, previous=event.previous_v1)


def delivery_body(delivery: WebhookDelivery) -> dict[str, Any]:
    build = body_v1 if delivery.webhook.version == "1.0" else body_v2
    return build(event=delivery.event, webhook=delivery.webhook, attempt=delivery.attempt)


# --- fan-out ------------------------------------------------------------------------------------------------


def event_fan_out(*, event_id: int) -> list[int]:
    """Create the first delivery of ``event`` for every matching live subscription; return their ids.

    A banned webhook's delivery is recorded as lost right away (Pipedrive drops those events).
    """
    now = timezone.now()
    to_send: list[int] = []
    with transaction.atomic(using=SANDBOX_DB):
        event = ChangeEvent.objects.select_related("company").filter(pk=event_id).first()
        if event is None:
            return []
        webhooks = Webhook.objects.filter(company_id=event.company_id, is_active=True, remove_time__isnull=True)
        for webhook in webhooks.order_by("pk"):
            if not webhook.matches(action=event.action, entity=event.entity):
                continue
            if webhook.banned_until is not None and webhook.banned_until > now:
                WebhookDelivery.objects.create(
                    webhook=webhook,
                    event=event,
                    attempt=1,
                    status=WebhookDelivery.Status.LOST,
                    error=f"webhook banned until {webhook.banned_until:%H:%M:%S} UTC: event dropped",
                    finished_at=now,
                )
                continue
            to_send.append(WebhookDelivery.objects.create(webhook=webhook, event=event, attempt=1).pk)
    return to_send


# --- one attempt ----------------------------------------------------------------------------------------------


def _post(delivery: WebhookDelivery, body: dict[str, Any]) -> tuple[int | None, str]:
    """Send one attempt; return (HTTP status or None, error text without secrets)."""
    webhook = delivery.webhook
    auth = None
    if webhook.http_auth_user:
        auth = (webhook.http_auth_user, webhook.http_auth_password or "")
    session = requests.Session()
    session.trust_env = False  # never a proxy or ~/.netrc for a subscription URL
    try:
        response = session.post(
            webhook.subscription_url,
            json=body,
            auth=auth,
            timeout=conf.WEBHOOK_TIMEOUT,
            allow_redirects=False,
            headers={"User-Agent": _USER_AGENT},
        )
    except requests.Timeout:
        return None, f"no answer within {conf.WEBHOOK_TIMEOUT:.0f} s"
    except requests.RequestException as exc:
        return None, f"could not connect ({type(exc).__name__})"
    finally:
        session.close()
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    return response.status_code, f"HTTP {response.status_code}"


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """Make one scheduled attempt, record it, and schedule the next one if it failed."""
    delivery = (
        WebhookDelivery.objects.select_related("webhook", "event", "event__company").filter(pk=delivery_id).first()
    )
    if delivery is None or delivery.status != WebhookDelivery.Status.SCHEDULED:
        return delivery
    if delivery.webhook.remove_time is not None:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.CANCELLED, finished_at=timezone.now(), error="webhook was deleted"
        )
        return delivery
    started = timezone.now()
    status_code, error = _post(delivery, delivery_body(delivery))
    finished = timezone.now()
    succeeded = status_code is not None and 200 <= status_code < 300
    retry: WebhookDelivery | None = None
    with transaction.atomic(using=SANDBOX_DB):
        webhook = Webhook.objects.select_for_update().get(pk=delivery.webhook_id)
        delivery.status = WebhookDelivery.Status.SUCCEEDED if succeeded else WebhookDelivery.Status.FAILED
        delivery.response_code = status_code
        delivery.error = error[:500]
        delivery.started_at = started
        delivery.finished_at = finished
        delivery.save(update_fields=["status", "response_code", "error", "started_at", "finished_at"])
        webhook.last_delivery_time = finished
        webhook.last_http_status = status_code
        if succeeded:
            webhook.last_success_at = finished
            webhook.consecutive_failed_first_attempts = 0
        else:
            if delivery.attempt == 1:
                webhook.consecutive_failed_first_attempts += 1
                if webhook.consecutive_failed_first_attempts >= conf.WEBHOOK_BAN_AFTER_FAILED_FIRST_ATTEMPTS:
                    webhook.banned_until = finished + timedelta(minutes=conf.WEBHOOK_BAN_MINUTES)
                    webhook.consecutive_failed_first_attempts = 0
                    logger.warning("sandbox: webhook %s banned for %s minutes", webhook.pk, conf.WEBHOOK_BAN_MINUTES)
            if (webhook.last_success_at or webhook.add_time) <= finished - timedelta(
                days=conf.WEBHOOK_REMOVE_AFTER_DAYS
            ):
                webhook.is_active = False
                webhook.remove_time = finished
                webhook.remove_reason = f"No successful delivery for {conf.WEBHOOK_REMOVE_AFTER_DAYS} days"
                logger.warning("sandbox: webhook %s deleted: %s", webhook.pk, webhook.remove_reason)
            elif delivery.attempt <= len(conf.WEBHOOK_RETRY_DELAYS):
                delay = conf.WEBHOOK_RETRY_DELAYS[delivery.attempt - 1] * conf.webhook_delay_scale()
                retry = WebhookDelivery.objects.create(
                    webhook=webhook,
                    event=delivery.event,
                    attempt=delivery.attempt + 1,
                    scheduled_for=finished + timedelta(seconds=delay),
                )
        webhook.save()
        if retry is not None:
            retry_id, retry_delay = retry.pk, (retry.scheduled_for - finished).total_seconds()
            transaction.on_commit(lambda: delivery_schedule(delivery_id=retry_id, delay=retry_delay), using=SANDBOX_DB)
    return delivery


# --- scheduling ---------------------------------------------------------------------------------------------------


def delivery_schedule(*, delivery_id: int, delay: float) -> None:
    """Run attempt ``delivery_id`` after ``delay`` seconds: a countdown with a broker, else a timer."""
    from .tasks import deliver_webhook

    if delay <= 0:
        deliver_webhook.delay(delivery_id)
    elif deliver_webhook.app.conf.task_always_eager:
        # Eager Celery ignores countdowns; a timer keeps Pipedrive's spacing without blocking a request.
        timer = threading.Timer(delay, _run_on_timer, args=(delivery_id,))
        timer.daemon = True
        with _timers_lock:
            _pending_timers.add(timer)
        timer.start()
    else:
        deliver_webhook.apply_async(args=(delivery_id,), countdown=delay)


def _run_on_timer(delivery_id: int) -> None:
    from .tasks import deliver_webhook

    current = threading.current_thread()
    try:
        close_old_connections()
        deliver_webhook.apply(args=(delivery_id,))
    except Exception:
        logger.exception("sandbox: scheduled webhook delivery %s failed", delivery_id)
    finally:
        with _timers_lock:
            _pending_timers.discard(current)
        connections.close_all()


def pending_retries() -> int:
    with _timers_lock:
        return len(_pending_timers)


def pending_retries_cancel() -> int:
    """Cancel retries waiting on timers (tests call it between tests; also handy in a shell)."""
    with _timers_lock:
        timers = list(_pending_timers)
        _pending_timers.clear()
    for timer in timers:
        timer.cancel()
    return len(timers)


def pending_retries_wait(*, timeout: float) -> bool:
    """Wait until no retry is pending on a timer; False if some still are after ``timeout``."""
    deadline = time.monotonic() + timeout
    while pending_retries():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def webhooks_remove_stale(*, now: datetime | None = None) -> int:
    """Delete every webhook without a successful delivery for 3 days (Pipedrive's rule)."""
    cutoff = (now or timezone.now()) - timedelta(days=conf.WEBHOOK_REMOVE_AFTER_DAYS)
    stale = Webhook.objects.filter(remove_time__isnull=True, last_delivery_time__isnull=False).exclude(
        last_success_at__gt=cutoff
    )
    stale = stale.filter(add_time__lte=cutoff)
    return stale.update(
        is_active=False,
        remove_time=now or timezone.now(),
        remove_reason=f"No successful delivery for {conf.WEBHOOK_REMOVE_AFTER_DAYS} days",
    )
