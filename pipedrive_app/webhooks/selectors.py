"""Reads for webhooks: the receiver's key lookup, desired subscriptions, owners, the inbox."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Q

from pipedrive_app.installations.models import Company, CompanySettings

from .models import CompanyWebhookState, InboxEvent

# v2 covers every event object except this one, which exists only in v1 (docs/pipedrive-platform.md
# §4: the current Guide for webhooks v2 and the migration guide list pipeline and stage as v2 objects,
# with v2 examples; only an earlier beta of the guide sent them to v1). A v1 subscription of ours for
# pipeline or stage no longer matches and is replaced with a v2 one by the next reconciliation.
V1_ONLY_OBJECTS = frozenset({"activityType"})
WEBHOOKS_PER_APP_USER = 40  # docs/webhooks-for-apps


@dataclass(frozen=True)
class DesiredSubscription:
    event_object: str
    event_action: str
    version: str
    name: str
    subscription_url: str


def receiver_path_prefix() -> str:
    return "/webhooks/pipedrive/"


def subscription_url_prefix() -> str:
    return f"{settings.APP_BASE_URL}{receiver_path_prefix()}"


def subscription_url_for(*, url_key: str) -> str:
    return f"{subscription_url_prefix()}{url_key}/"


def webhook_state_for_key(*, url_key: str) -> CompanyWebhookState | None:
    if not url_key or len(url_key) > 64:
        return None
    return CompanyWebhookState.objects.select_related("company").filter(url_key=url_key).first()


def tracked_entities(*, company: Company) -> list[str]:
    row = CompanySettings.objects.filter(company=company).first()
    if row is None:
        return list(CompanySettings.DEFAULT_TRACKED_ENTITIES)
    return [e for e in CompanySettings.TRACKABLE_ENTITIES if e in set(row.tracked_entities or [])]


def desired_subscriptions(*, company: Company, state: CompanyWebhookState) -> dict[str, DesiredSubscription]:
    """One subscription per tracked entity, ``event_action: "*"`` to keep the count low."""
    url = subscription_url_for(url_key=state.url_key)
    desired = {
        entity: DesiredSubscription(
            event_object=entity,
            event_action="*",
            version="1.0" if entity in V1_ONLY_OBJECTS else "2.0",
            name=f"{settings.WEBHOOKS_SUBSCRIPTION_NAME}: {entity} events",
            subscription_url=url,
        )
        for entity in tracked_entities(company=company)
    }
    if len(desired) > WEBHOOKS_PER_APP_USER:
        raise ValueError("more subscriptions than Pipedrive allows per app user")
    return desired


def inbox_counts(*, company_id: int | None = None) -> dict[str, int]:
    rows = InboxEvent.objects.all()
    if company_id is not None:
        rows = rows.filter(company_id=company_id)
    counts = rows.aggregate(
        pending=Count("pk", filter=Q(status=InboxEvent.Status.PENDING)),
        processed=Count("pk", filter=Q(status=InboxEvent.Status.PROCESSED)),
        dead=Count("pk", filter=Q(status=InboxEvent.Status.DEAD)),
    )
    return {key: int(value or 0) for key, value in counts.items()}


def dead_inbox_event_ids(*, company_id: int | None = None) -> list[int]:
    rows = InboxEvent.objects.filter(status=InboxEvent.Status.DEAD)
    if company_id is not None:
        rows = rows.filter(company_id=company_id)
    return list(rows.order_by("pk").values_list("pk", flat=True))
