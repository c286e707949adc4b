"""Webhook subscriptions per company: per-company state and credentials, desired state, reconciliation
against Pipedrive, ownership moves and release.

Reconciliation treats Pipedrive as the source of truth: it lists the company's webhooks, keeps one
per desired subscription, deletes duplicates and strays of ours (our URL prefix, not desired), and
creates what is missing. One run per company at a time, under the company's reconcile lease
(core/locks.py); no transaction or row lock is open while Pipedrive is called, and the outcome is
stored in one short transaction (lock order: Company, then its CompanyWebhookState).
"""

from __future__ import annotations

import logging
import secrets
from contextlib import suppress
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from pipedrive_app.core import locks
from pipedrive_app.installations.models import Company, Installation
from pipedrive_app.installations.selectors import company_acting_installations
from pipedrive_app.installations.services import InstallationNotActive, installation_client
from pipedrive_app.pipedrive.errors import (
    PipedriveError,
    PipedriveForbidden,
    PipedriveNotFound,
    PipedriveValidationError,
)
from pipedrive_app.pipedrive.types import Webhook

from ..models import CompanyWebhookState, Subscription
from ..selectors import (
    DesiredSubscription,
    desired_subscriptions,
    subscription_url_prefix,
)

logger = logging.getLogger(__name__)


# --- per-company state --------------------------------------------------------------------------


def webhook_state_get_or_create(*, company: Company) -> CompanyWebhookState:
    """The company's receiver key and Basic credentials, made once, at random."""
    state = CompanyWebhookState.objects.filter(company=company).first()
    if state is not None:
        return state
    try:
        with transaction.atomic():
            return CompanyWebhookState.objects.create(
                company=company,
                url_key=secrets.token_urlsafe(32),
                http_auth_user=f"pd-{secrets.token_hex(8)}",
                http_auth_password=secrets.token_urlsafe(32),
            )
    except IntegrityError:  # created concurrently
        return CompanyWebhookState.objects.get(company=company)


def webhook_credentials_check(*, state: CompanyWebhookState, username: str, password: str) -> bool:
    """Constant-time comparison of both parts (a mismatch in either costs the same)."""
    user_ok = secrets.compare_digest(username.encode(), (state.http_auth_user or "").encode())
    password_ok = secrets.compare_digest(password.encode(), (state.http_auth_password or "").encode())
    return user_ok and password_ok


# --- reconciliation -----------------------------------------------------------------------------


@dataclass
class ReconcileResult:
    status: str  # available | unavailable | gone | deferred (another run holds the lease and runs again)
    owner_installation_id: int | None = None
    created: list[str] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reason: str = ""


# Longer than one run can take; a holder that died frees it after this long.
RECONCILE_LEASE_SECONDS = 600
RECONCILE_MAX_RUNS = 5


def _reconcile_lease_scope(company_id: int):
    return Company.objects.filter(pk=company_id)


def company_webhooks_reconcile(*, company_id: int) -> ReconcileResult:
    """Make the company's webhooks at Pipedrive match its tracked entities. Idempotent.

    One run per company at a time, under the company's reconcile lease (core/locks.py): no
    transaction or row lock is open while Pipedrive is called. A run asked for while another holds
    the lease does not wait: it asks the holder to run once more (status ``deferred``).

    Raises PipedriveRateLimited (with ``retry_after``) and PipedriveUnavailable for the task to retry.
    """
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return ReconcileResult(status="gone")
    webhook_state_get_or_create(company=company)
    lease = {"until_field": "webhooks_lease_until", "owner_field": "webhooks_lease_id"}
    lease_id = locks.lease_claim(_reconcile_lease_scope(company_id), seconds=RECONCILE_LEASE_SECONDS, **lease)
    if lease_id is None:
        _reconcile_lease_scope(company_id).update(webhooks_rerun=True)
        # The holder may have let go between the claim and the request: try once more.
        lease_id = locks.lease_claim(_reconcile_lease_scope(company_id), seconds=RECONCILE_LEASE_SECONDS, **lease)
        if lease_id is None:
            return ReconcileResult(
                status="deferred", reason="Another reconciliation of this company is running; it will run again."
            )
    held = _reconcile_lease_scope(company_id).filter(webhooks_lease_id=lease_id)
    try:
        for _ in range(RECONCILE_MAX_RUNS):
            held.update(webhooks_rerun=False)
            result = _reconcile_once(company_id=company_id)
            # Let go only if nobody asked for another run meanwhile (one statement: no request is lost).
            if held.filter(webhooks_rerun=False).update(webhooks_lease_until=None, webhooks_lease_id=""):
                return result
        return result
    finally:
        locks.lease_release(_reconcile_lease_scope(company_id), lease_id=lease_id, **lease)


def _reconcile_once(*, company_id: int) -> ReconcileResult:
    company = Company.objects.filter(pk=company_id).first()
    state = CompanyWebhookState.objects.select_related("company").filter(company_id=company_id).first()
    if company is None or state is None:
        return ReconcileResult(status="gone")
    # Webhooks need an admin's token with the admin scope; the current owner keeps them if it can.
    candidates = company_acting_installations(
        company_id=company.pk, preferred_id=state.owner_id, admins_only=True, scope="admin"
    )
    if not candidates:
        reason = "No active admin installation with the admin scope: an admin of the company must install the app."
        return _state_unavailable(company_id, reason)
    refusals: list[str] = []
    for owner in candidates:
        client = installation_client(installation=owner)
        try:
            result, desired, found, errors = _reconcile_as(client=client, owner=owner, state=state)
        except PipedriveForbidden as exc:
            logger.warning("company %s: webhook management refused for installation %s", company_id, owner.pk)
            refusals.append(f"installation {owner.pk}: {exc}")
            continue
        except InstallationNotActive as exc:
            refusals.append(f"installation {owner.pk}: {exc}")
            continue
        finally:
            client.close()
        # Pipedrive has been told; now one short transaction records it (lock order: Company, state).
        with transaction.atomic():
            if locks.lock_company(pk=company_id) is None:
                return ReconcileResult(status="gone")
            locked = locks.lock_company_row("webhooks.CompanyWebhookState", company_id=company_id)
            if locked is None:
                return ReconcileResult(status="gone")
            _subscriptions_sync(state=locked, desired=desired, found=found, errors=errors)
            locked.owner = owner
            locked.status = CompanyWebhookState.Status.AVAILABLE
            locked.unavailable_reason = ""
            locked.last_error = "; ".join(result.errors)[:500]
            locked.last_reconciled_at = timezone.now()
            locked.save()
        return result
    reason = "Pipedrive refused webhook management (403) for every admin installation: " + "; ".join(refusals)
    return _state_unavailable(company_id, reason)


def _state_unavailable(company_id: int, reason: str) -> ReconcileResult:
    logger.warning("company %s: webhooks unavailable: %s", company_id, reason)
    with transaction.atomic():
        if locks.lock_company(pk=company_id) is None:
            return ReconcileResult(status="gone")
        state = locks.lock_company_row("webhooks.CompanyWebhookState", company_id=company_id)
        if state is None:
            return ReconcileResult(status="gone")
        state.owner = None
        state.status = CompanyWebhookState.Status.UNAVAILABLE
        state.unavailable_reason = reason[:500]
        state.last_reconciled_at = timezone.now()
        state.save()
        Subscription.objects.filter(company_id=company_id).update(pipedrive_webhook_id=None, is_active=False)
    return ReconcileResult(status="unavailable", reason=reason)


def _reconcile_as(
    *, client, owner: Installation, state: CompanyWebhookState
) -> tuple[ReconcileResult, dict[str, DesiredSubscription], dict[str, Webhook], dict[str, str]]:
    """The Pipedrive side of a run (no transaction open): list, delete strays, create what is missing."""
    desired = desired_subscriptions(company=state.company, state=state)
    prefix = subscription_url_prefix()
    ours = [w for w in client.list_webhooks() if w.subscription_url.startswith(prefix)]
    result = ReconcileResult(status="available", owner_installation_id=owner.pk)
    keep: dict[str, Webhook] = {}
    # Prefer an active webhook, then the oldest: the rest of a group are duplicates.
    for webhook in sorted(ours, key=lambda w: (not w.is_active, w.id)):
        want = desired.get(webhook.event_object)
        if want is not None and webhook.event_object not in keep and _matches(webhook, want, state):
            keep[webhook.event_object] = webhook
            result.kept.append(webhook.id)
            continue
        with suppress(PipedriveNotFound):  # already gone
            client.delete_webhook(webhook.id)
        result.deleted.append(webhook.id)
    errors: dict[str, str] = {}
    for event_object, want in desired.items():
        if event_object in keep:
            continue
        try:
            keep[event_object] = client.create_webhook(
                subscription_url=want.subscription_url,
                event_action=want.event_action,
                event_object=want.event_object,
                name=want.name,
                version=want.version,
                http_auth_user=state.http_auth_user,
                http_auth_password=state.http_auth_password,
            )
            result.created.append(event_object)
        except PipedriveValidationError as exc:
            # 400: URL unreachable from Pipedrive; 422: the 40-per-user limit. Recorded, not retried.
            errors[event_object] = str(exc)[:500]
            result.errors.append(f"{event_object}: {exc}")
    logger.info(
        "company %s: webhooks reconciled (kept %d, created %d, deleted %d)",
        state.company_id,
        len(result.kept),
        len(result.created),
        len(result.deleted),
    )
    return result, desired, keep, errors


def _matches(webhook: Webhook, want: DesiredSubscription, state: CompanyWebhookState) -> bool:
    return (
        webhook.subscription_url == want.subscription_url
        and webhook.event_action == want.event_action
        and (webhook.version or "2.0") == want.version
        # Pipedrive echoes the user (not the password); a different one is a stale credential.
        and webhook.http_auth_user in (None, state.http_auth_user)
    )


def _subscriptions_sync(
    *,
    state: CompanyWebhookState,
    desired: dict[str, DesiredSubscription],
    found: dict[str, Webhook],
    errors: dict[str, str],
) -> None:
    now = timezone.now()
    Subscription.objects.filter(company_id=state.company_id).exclude(event_object__in=list(desired)).delete()
    for event_object, want in desired.items():
        webhook = found.get(event_object)
        Subscription.objects.update_or_create(
            company_id=state.company_id,
            event_object=event_object,
            defaults={
                "event_action": want.event_action,
                "version": want.version,
                "name": want.name,
                "subscription_url": want.subscription_url,
                "pipedrive_webhook_id": webhook.id if webhook else None,
                "owner_user_id": webhook.owner_id if webhook else None,
                "is_active": bool(webhook and webhook.is_active),
                "last_http_status": webhook.last_http_status if webhook else None,
                "last_delivery_time": webhook.last_delivery_time if webhook else None,
                "remove_reason": (webhook.remove_reason or "")[:255] if webhook else "",
                "last_error": errors.get(event_object, ""),
                "last_seen_at": now if webhook else None,
            },
        )


def company_webhooks_release(*, installation: Installation) -> int:
    """Delete, at Pipedrive, the webhooks of ours this installation's user owns (vendor-side
    uninstall, while the tokens still work). Never raises: Pipedrive deletes them on uninstall anyway."""
    if not installation.is_active or not installation.is_admin:
        return 0
    prefix = subscription_url_prefix()
    deleted = 0
    client = installation_client(installation=installation)
    try:
        for webhook in client.list_webhooks():
            if webhook.subscription_url.startswith(prefix) and webhook.owner_id in (
                None,
                installation.pipedrive_user_id,
            ):
                with suppress(PipedriveNotFound):
                    client.delete_webhook(webhook.id)
                deleted += 1
    except PipedriveError as exc:
        logger.warning("installation %s: webhooks not deleted before uninstall: %s", installation.pk, exc)
    finally:
        client.close()
    Subscription.objects.filter(
        company_id=installation.company_id, owner_user_id=installation.pipedrive_user_id
    ).update(pipedrive_webhook_id=None, is_active=False)
    return deleted


def company_webhooks_reconcile_enqueue(*, company_id: int) -> bool:
    """Queue a reconciliation; a broker failure is logged (the periodic run catches up)."""
    from ..tasks import reconcile_company_webhooks

    try:
        reconcile_company_webhooks.apply_async(args=(company_id,), retry=False)
        return True
    except Exception:
        logger.exception("company %s: could not queue webhook reconciliation", company_id)
        return False


def companies_for_reconciliation() -> list[int]:
    return list(Company.objects.order_by("pk").values_list("pk", flat=True))
