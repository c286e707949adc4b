"""Operator actions (with their progress) and the audit log of everything operators do.

Both outlive the company they name: a vendor-side uninstall deletes the company, so each row keeps
the Pipedrive company id and a label of its own and its foreign key becomes NULL.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from pipedrive_app.installations.models import Company


class OperatorAction(models.Model):
    """One action an operator asked for; the company page polls its status."""

    class Kind(models.TextChoices):
        REFRESH_TOKENS = "refresh_tokens", "Refresh tokens"
        RECONCILE_WEBHOOKS = "reconcile_webhooks", "Reconcile webhooks"
        REPLAY_DEAD_EVENTS = "replay_dead_events", "Replay dead events"
        REPLAY_EVENT = "replay_event", "Replay event"
        UNINSTALL_COMPANY = "uninstall_company", "Vendor-side uninstall"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    company = models.ForeignKey(
        Company, on_delete=models.SET_NULL, null=True, blank=True, related_name="operator_actions"
    )
    pipedrive_company_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    target_label = models.CharField(max_length=255, blank=True)
    # The inbox event an event replay is about (plain id: the event may be purged with its company).
    event_id = models.BigIntegerField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requested_by_email = models.CharField(max_length=254, blank=True)
    result = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        indexes = [models.Index(fields=("company", "-created_at"), name="dashboard_action_company")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.target_label} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.FAILED}


class AuditEntry(models.Model):
    """Who did what to which target, when, and how it went. Written once per operator action."""

    class Result(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        REFUSED = "refused", "Refused"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=32, choices=OperatorAction.Kind.choices)
    target_type = models.CharField(max_length=32)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=255, blank=True)
    result = models.CharField(max_length=16, choices=Result.choices)
    detail = models.CharField(max_length=1000, blank=True)
    operator_action = models.OneToOneField(
        OperatorAction, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_entry"
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_email or 'unknown'} {self.action} {self.target_type} {self.target_id}: {self.result}"

    @property
    def outcome(self) -> str:
        """The final word: the action's own status once it ran, else the decision at request time."""
        if self.operator_action_id is not None and self.operator_action is not None:
            return self.operator_action.status
        return self.result


class InboxHourlyCount(models.Model):
    """Webhook deliveries received in one hour that is over (``dashboard/inbox_counts.py``).

    Written once per hour; it outlives the purge of the events it counted.
    """

    hour = models.DateTimeField(unique=True)
    received = models.PositiveIntegerField()
    counted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("hour",)

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 UTC: {self.received}"
