"""Per-company webhook subscriptions (desired state + what Pipedrive reports) and the event inbox.

Every row belongs to a Company (on_delete=CASCADE): the company's last uninstall purges it.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from pipedrive_app.core.crypto import EncryptedTextField
from pipedrive_app.installations.models import Company, Installation


class CompanyWebhookState(models.Model):
    """One per company: the receiver URL key, the Basic credentials Pipedrive sends, the owner.

    Its row is also the per-company lock: reconciliation holds ``select_for_update`` on it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Not provisioned yet"
        AVAILABLE = "available", "Available"
        UNAVAILABLE = "unavailable", "Webhooks unavailable"

    company = models.OneToOneField(Company, on_delete=models.CASCADE, related_name="webhook_state")
    # The unguessable part of the subscription URL: /webhooks/pipedrive/<url_key>/.
    url_key = models.CharField(max_length=64, unique=True)
    http_auth_user = EncryptedTextField()
    http_auth_password = EncryptedTextField()
    # The admin installation whose token created the subscriptions (Pipedrive deletes a user's
    # webhooks when that user uninstalls, docs/app-uninstallation).
    owner = models.ForeignKey(Installation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    unavailable_reason = models.CharField(max_length=500, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"webhooks of {self.company_id}: {self.status}"


class Subscription(models.Model):
    """A subscription the company should have, with what Pipedrive last reported about it."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="webhook_subscriptions")
    event_object = models.CharField(max_length=32)
    event_action = models.CharField(max_length=16, default="*")
    version = models.CharField(max_length=8)
    name = models.CharField(max_length=255)
    subscription_url = models.URLField(max_length=500)
    pipedrive_webhook_id = models.BigIntegerField(null=True, blank=True)
    owner_user_id = models.BigIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    last_http_status = models.IntegerField(null=True, blank=True)
    last_delivery_time = models.DateTimeField(null=True, blank=True)
    remove_reason = models.CharField(max_length=255, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("company", "event_object")
        constraints = [
            models.UniqueConstraint(fields=("company", "event_object"), name="webhooks_one_subscription_per_object")
        ]

    def __str__(self) -> str:
        return f"{self.event_object}.{self.event_action} v{self.version} of {self.company_id}"


class InboxEvent(models.Model):
    """One delivered event, stored raw before anything else happens to it.

    ``dedup_key`` is the same for every attempt of one delivery and distinct per change (v2: ``meta.id``
    plus a digest of entity, record id and ``meta.correlation_id``; v1: a digest of what a retry
    repeats); the unique constraint makes a retry or duplicate a no-op.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        DEAD = "dead", "Dead (gave up)"
        # Acknowledged and kept, never processed; ``reason`` says why.
        SKIPPED = "skipped", "Skipped (nothing to do)"
        UNPROCESSABLE = "unprocessable", "Unprocessable (content not usable)"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="inbox_events")
    dedup_key = models.CharField(max_length=200)
    version = models.CharField(max_length=8)
    entity = models.CharField(max_length=32)
    action = models.CharField(max_length=16)
    # Text: most record ids are integers, a lead's is a UUID.
    entity_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001  (None: no usable id)
    occurred_at = models.DateTimeField(null=True, blank=True)
    # The body exactly as received (text, not JSON, so nothing a JSON column refuses can fail a store).
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    deliveries = models.PositiveIntegerField(default=1)
    last_error = models.TextField(blank=True)
    # Why a skipped or unprocessable event was not processed (no secrets: derived from the body).
    reason = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    # The sweeper re-enqueues a pending row once this is older than WEBHOOKS_SWEEP_AFTER_SECONDS.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("received_at", "pk")
        constraints = [models.UniqueConstraint(fields=("company", "dedup_key"), name="webhooks_inbox_dedup")]
        indexes = [
            models.Index(fields=("status", "next_attempt_at"), name="webhooks_inbox_due"),
            models.Index(fields=("company", "received_at"), name="webhooks_inbox_company"),
            # The dashboard: events per hour (dashboard/inbox_counts.py), pending and dead ones per
            # hour, and dead events per company, without scanning the inbox.
            models.Index(fields=("received_at",), name="webhooks_inbox_received"),
            models.Index(
                fields=("received_at",), name="webhooks_inbox_pending_at", condition=models.Q(status="pending")
            ),
            models.Index(fields=("received_at",), name="webhooks_inbox_dead_at", condition=models.Q(status="dead")),
            models.Index(fields=("company",), name="webhooks_inbox_dead", condition=models.Q(status="dead")),
        ]

    def __str__(self) -> str:
        return f"{self.entity}.{self.action} {self.entity_id} ({self.status})"
