"""The app's webhooks and installs: subscriptions (Pipedrive's per-user limit), uninstall (with the
notice to the app) and expiring access tokens."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import conf, tasks
from ..facts import limits, validation
from ..models import (
    AccessToken,
    RefreshToken,
    SandboxCompany,
    SandboxUser,
    Webhook,
)
from ..routers import SANDBOX_DB
from .changes import RecordInputError, WebhookLimitReached

logger = logging.getLogger(__name__)

# --- webhooks ---------------------------------------------------------------------------------------------


def webhook_create(*, company: SandboxCompany, owner: SandboxUser, client_id: str, data: Mapping[str, Any]) -> Webhook:
    """``POST /api/v1/webhooks`` with an app's token: an application webhook, 40 per app user."""
    errors: dict[str, list[str]] = {}
    version = validation.webhook_body(data, errors)
    user_id = None if errors else validation.int_field(data, "user_id", errors)
    url = data.get("subscription_url")
    if errors:
        raise RecordInputError("The webhook was not created", errors=errors)
    with transaction.atomic(using=SANDBOX_DB):
        owned = Webhook.objects.filter(owner=owner, client_id=client_id, remove_time__isnull=True).count()
        if owned >= conf.WEBHOOKS_PER_USER:
            raise WebhookLimitReached(limits.webhook_limit_message(), status=422)
        return Webhook.objects.create(
            company=company,
            owner=owner,
            user_id=user_id or owner.pk,
            client_id=client_id,
            type=Webhook.Type.APPLICATION,
            name=str(data["name"])[:255],
            event_action=data["event_action"],
            event_object=data["event_object"],
            subscription_url=str(url),
            version=version,
            http_auth_user=data.get("http_auth_user") or "",
            http_auth_password=data.get("http_auth_password") or "",
        )


def webhook_remove(*, webhook: Webhook, reason: str) -> None:
    """Pipedrive deletes webhooks; the sandbox keeps the row (and its deliveries) to show why."""
    now = timezone.now()
    Webhook.objects.filter(pk=webhook.pk, remove_time__isnull=True).update(
        is_active=False, remove_time=now, remove_reason=reason[:255]
    )


# --- installs -----------------------------------------------------------------------------------------------


def app_uninstall(*, user: SandboxUser, client_id: str, reason: str, notify_app: bool) -> int:
    """Uninstall the app for one user: kill their tokens, delete their application webhooks.

    With ``notify_app`` (the user pressed Uninstall in Pipedrive) the app's callback URL gets
    ``DELETE`` once this commits. Returns how many live grants there were.
    """
    now = timezone.now()
    with transaction.atomic(using=SANDBOX_DB):
        live = RefreshToken.objects.filter(user=user, client_id=client_id, revoked_at__isnull=True)
        grants = live.count()
        live.update(revoked_at=now)
        AccessToken.objects.filter(user=user, client_id=client_id, revoked_at__isnull=True).update(revoked_at=now)
        Webhook.objects.filter(
            owner=user, client_id=client_id, type=Webhook.Type.APPLICATION, remove_time__isnull=True
        ).update(is_active=False, remove_time=now, remove_reason=reason[:255])
        if notify_app:
            company_id, user_id = user.company_id, user.pk
            transaction.on_commit(
                lambda: tasks.notify_app_uninstalled.delay(company_id=company_id, user_id=user_id, client_id=client_id),
                using=SANDBOX_DB,
            )
    logger.info("sandbox: app uninstalled for user %s of company %s (%s)", user.pk, user.company_id, reason)
    return grants


def access_tokens_expire(*, user: SandboxUser) -> int:
    """Make the user's live access tokens expire now (to watch the app refresh after a 401)."""
    now = timezone.now()
    return AccessToken.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=now).update(expires_at=now)
