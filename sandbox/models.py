"""What the sandbox remembers: companies and their CRM records, OAuth grants, webhooks and deliveries.

All of it lives in the ``sandbox`` database alias (see ``routers.py``). Ids are plain integers as in
Pipedrive. Tokens and codes are stored only as SHA-256 digests.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import models
from django.utils import timezone

from . import conf


class SandboxCompany(models.Model):
    name = models.CharField(max_length=255)
    domain = models.SlugField(max_length=63, unique=True, help_text="Subdomain; the api_domain path segment.")
    burst_limit = models.PositiveIntegerField(
        default=conf.default_burst_limit, help_text="Requests per token per window."
    )
    daily_budget = models.PositiveIntegerField(default=conf.default_daily_budget, help_text="Tokens per day.")
    budget_day = models.DateField(null=True, blank=True)
    budget_used = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("pk",)
        verbose_name_plural = "sandbox companies"

    def __str__(self) -> str:
        return f"{self.name} ({self.domain})"

    @property
    def api_domain(self) -> str:
        return conf.api_domain(self.domain)


class SandboxUser(models.Model):
    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE, related_name="users")
    name = models.CharField(max_length=255)
    email = models.EmailField(max_length=255)
    is_admin = models.BooleanField(default=False)
    locale = models.CharField(max_length=16, default="en_US")
    timezone_name = models.CharField(max_length=64, default="Europe/Tallinn")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("company", "pk")

    def __str__(self) -> str:
        return f"{self.name} ({'admin' if self.is_admin else 'regular user'})"


class Pipeline(models.Model):
    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE, related_name="pipelines")
    name = models.CharField(max_length=255)
    order_nr = models.PositiveIntegerField(default=1)
    deal_probability = models.BooleanField(default=True, help_text="Deal probabilities are used.")
    add_time = models.DateTimeField(default=timezone.now)
    update_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("company", "order_nr", "pk")

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=255)
    order_nr = models.PositiveIntegerField(default=1)
    deal_probability = models.PositiveSmallIntegerField(default=100)
    rotten_days = models.PositiveIntegerField(null=True, blank=True, help_text="Days until a deal rots; none: never.")
    add_time = models.DateTimeField(default=timezone.now)
    update_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("pipeline", "order_nr", "pk")

    def __str__(self) -> str:
        return f"{self.pipeline.name} / {self.name}"


class Organization(models.Model):
    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE, related_name="organizations")
    name = models.CharField(max_length=255)
    owner = models.ForeignKey(SandboxUser, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    address = models.CharField(max_length=255, blank=True)
    add_time = models.DateTimeField(default=timezone.now)
    update_time = models.DateTimeField(default=timezone.now)
    is_deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ("company", "pk")

    def __str__(self) -> str:
        return self.name


class Person(models.Model):
    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE, related_name="persons")
    name = models.CharField(max_length=255)
    owner = models.ForeignKey(SandboxUser, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    org = models.ForeignKey(Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="persons")
    # [{"value": "a@b.c", "label": "work", "primary": true}, ...] as API v2 shows them.
    emails = models.JSONField(default=list, blank=True)
    phones = models.JSONField(default=list, blank=True)
    job_title = models.CharField(max_length=255, blank=True)
    visible_to = models.PositiveSmallIntegerField(default=3)
    custom_fields = models.JSONField(default=dict, blank=True)
    add_time = models.DateTimeField(default=timezone.now)
    update_time = models.DateTimeField(default=timezone.now)
    is_deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ("company", "pk")

    def __str__(self) -> str:
        return self.name


class Deal(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE, related_name="deals")
    title = models.CharField(max_length=255)
    value = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="EUR")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="deals")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="deals")
    person = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="deals")
    org = models.ForeignKey(Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="deals")
    owner = models.ForeignKey(SandboxUser, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    creator = models.ForeignKey(SandboxUser, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    expected_close_date = models.DateField(null=True, blank=True)
    probability = models.PositiveSmallIntegerField(null=True, blank=True)
    lost_reason = models.CharField(max_length=255, blank=True)
    visible_to = models.PositiveSmallIntegerField(default=3)
    custom_fields = models.JSONField(default=dict, blank=True)
    add_time = models.DateTimeField(default=timezone.now)
    update_time = models.DateTimeField(default=timezone.now)
    stage_change_time = models.DateTimeField(null=True, blank=True)
    close_time = models.DateTimeField(null=True, blank=True)
    won_time = models.DateTimeField(null=True, blank=True)
    lost_time = models.DateTimeField(null=True, blank=True)
    is_deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ("company", "pk")

    def __str__(self) -> str:
        return self.title


class Lead(models.Model):
    """A lead: a potential deal, with a UUID id (API v1 ``/leads``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE, related_name="leads")
    title = models.CharField(max_length=255)
    owner = models.ForeignKey(SandboxUser, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    creator = models.ForeignKey(SandboxUser, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    person = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="leads")
    org = models.ForeignKey(Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="leads")
    value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="EUR")
    expected_close_date = models.DateField(null=True, blank=True)
    is_archived = models.BooleanField(default=False)
    custom_fields = models.JSONField(default=dict, blank=True)
    add_time = models.DateTimeField(default=timezone.now)
    update_time = models.DateTimeField(default=timezone.now)
    is_deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ("company", "add_time", "pk")

    def __str__(self) -> str:
        return self.title


class Note(models.Model):
    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE, related_name="notes")
    content = models.TextField()
    deal = models.ForeignKey(Deal, on_delete=models.SET_NULL, null=True, blank=True, related_name="notes")
    person = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="notes")
    org = models.ForeignKey(Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="notes")
    lead = models.ForeignKey(Lead, on_delete=models.SET_NULL, null=True, blank=True, related_name="notes")
    user = models.ForeignKey(SandboxUser, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    add_time = models.DateTimeField(default=timezone.now)
    update_time = models.DateTimeField(default=timezone.now)
    is_deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ("company", "pk")

    def __str__(self) -> str:
        return f"note {self.pk}"


class Activity(models.Model):
    """An activity (call, meeting, task...) linked to a deal, person and/or organization (API v2
    ``/activities``). ``due_date``/``due_time`` are as the API takes them (``due_time`` in UTC)."""

    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE, related_name="activities")
    subject = models.CharField(max_length=255)
    type = models.CharField(max_length=64, default="task")
    deal = models.ForeignKey(Deal, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities")
    person = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities")
    org = models.ForeignKey(Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities")
    owner = models.ForeignKey(SandboxUser, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    creator = models.ForeignKey(SandboxUser, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    due_date = models.DateField(null=True, blank=True)
    due_time = models.CharField(max_length=5, blank=True)
    duration = models.CharField(max_length=5, blank=True)
    busy = models.BooleanField(default=False)
    done = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    add_time = models.DateTimeField(default=timezone.now)
    update_time = models.DateTimeField(default=timezone.now)
    is_deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ("company", "pk")

    def __str__(self) -> str:
        return self.subject


class FieldDefinition(models.Model):
    """A custom field of deals or persons: ``custom_fields`` is keyed by its 40-character hash key."""

    class Entity(models.TextChoices):
        DEAL = "deal", "Deal"
        PERSON = "person", "Person"
        ORGANIZATION = "organization", "Organization"
        LEAD = "lead", "Lead"

    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE, related_name="field_definitions")
    entity = models.CharField(max_length=16, choices=Entity.choices)
    key = models.CharField(max_length=40)
    name = models.CharField(max_length=255)
    field_type = models.CharField(max_length=32, default="varchar")
    options = models.JSONField(default=list, blank=True)  # [{"id": 1, "label": "..."}] for enum/set

    class Meta:
        ordering = ("company", "entity", "pk")
        constraints = [models.UniqueConstraint(fields=("company", "entity", "key"), name="sandbox_field_key_unique")]

    def __str__(self) -> str:
        return f"{self.entity}.{self.name}"


# --- OAuth ------------------------------------------------------------------------------------------


class AuthorizationCode(models.Model):
    code_hash = models.CharField(max_length=64, unique=True)
    client_id = models.CharField(max_length=255)
    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(SandboxUser, on_delete=models.CASCADE, related_name="+")
    redirect_uri = models.CharField(max_length=1024)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"code for user {self.user_id}"


class RefreshToken(models.Model):
    """One per install grant. Stable: refreshing returns the same value and extends its 60-day window."""

    token_hash = models.CharField(max_length=64, unique=True)
    client_id = models.CharField(max_length=255)
    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(SandboxUser, on_delete=models.CASCADE, related_name="refresh_tokens")
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"refresh token of user {self.user_id}"

    @property
    def expires_at(self) -> datetime:
        return self.last_used_at + timedelta(days=conf.REFRESH_TOKEN_IDLE_DAYS)

    def is_usable(self, *, now: datetime | None = None) -> bool:
        return self.revoked_at is None and self.expires_at > (now or timezone.now())


class AccessToken(models.Model):
    token_hash = models.CharField(max_length=64, unique=True)
    client_id = models.CharField(max_length=255)
    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(SandboxUser, on_delete=models.CASCADE, related_name="access_tokens")
    refresh_token = models.ForeignKey(
        RefreshToken, on_delete=models.CASCADE, null=True, blank=True, related_name="access_tokens"
    )
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"access token of user {self.user_id}"

    def is_usable(self, *, now: datetime | None = None) -> bool:
        return self.revoked_at is None and self.expires_at > (now or timezone.now())


# --- Webhooks ---------------------------------------------------------------------------------------


class Webhook(models.Model):
    class Type(models.TextChoices):
        GENERAL = "general", "General"
        APPLICATION = "application", "Application"

    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE, related_name="webhooks")
    owner = models.ForeignKey(SandboxUser, on_delete=models.CASCADE, related_name="webhooks")
    user_id = models.BigIntegerField(help_text="Whose permissions the events are filtered by.")
    client_id = models.CharField(max_length=255, blank=True, help_text="The app that created it.")
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.APPLICATION)
    name = models.CharField(max_length=255, blank=True)
    event_action = models.CharField(max_length=16)
    event_object = models.CharField(max_length=32)
    subscription_url = models.URLField(max_length=2048)
    version = models.CharField(max_length=8, default="2.0")
    http_auth_user = models.CharField(max_length=255, blank=True, default="")
    # Kept as given: the sandbox must send it back as Basic auth (never shown by the API).
    http_auth_password = models.CharField(max_length=255, blank=True, default="")
    is_active = models.BooleanField(default=True)
    add_time = models.DateTimeField(default=timezone.now)
    remove_time = models.DateTimeField(null=True, blank=True)
    remove_reason = models.CharField(max_length=255, blank=True, default="")
    last_delivery_time = models.DateTimeField(null=True, blank=True)
    last_http_status = models.IntegerField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    banned_until = models.DateTimeField(null=True, blank=True)
    consecutive_failed_first_attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("company", "pk")

    def __str__(self) -> str:
        return f"webhook {self.pk} {self.event_action}.{self.event_object}"

    @property
    def is_removed(self) -> bool:
        return self.remove_time is not None

    def matches(self, *, action: str, entity: str) -> bool:
        return self.event_action in {"*", action} and self.event_object in {"*", entity}


class ChangeEvent(models.Model):
    """The change log: one row per create/change/delete, from which webhook bodies are built."""

    class Action(models.TextChoices):
        CREATE = "create", "create"
        CHANGE = "change", "change"
        DELETE = "delete", "delete"

    class Source(models.TextChoices):
        API = "api", "API"
        APP = "app", "Sandbox page"
        SEED = "seed", "Seed"

    event_id = models.UUIDField(default=uuid.uuid4, unique=True)
    correlation_id = models.UUIDField(default=uuid.uuid4)
    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE, related_name="events")
    user = models.ForeignKey(SandboxUser, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    entity = models.CharField(max_length=32)
    entity_id = models.CharField(max_length=36, help_text="A number, or a lead's UUID.")
    action = models.CharField(max_length=8, choices=Action.choices)
    change_source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    data = models.JSONField(null=True, blank=True, help_text="The record after the change (webhooks v2 shape).")
    previous = models.JSONField(null=True, blank=True, help_text="Changed fields' old values; all on delete.")
    data_v1 = models.JSONField(null=True, blank=True, help_text="The record after the change (webhooks v1 shape).")
    previous_v1 = models.JSONField(null=True, blank=True, help_text="The whole record before (webhooks v1 shape).")
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-occurred_at", "-pk")

    def __str__(self) -> str:
        return f"{self.action}.{self.entity} {self.entity_id}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Failed"
        LOST = "lost", "Lost (webhook banned)"
        CANCELLED = "cancelled", "Cancelled (webhook removed)"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(ChangeEvent, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED, db_index=True)
    response_code = models.IntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    scheduled_for = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-pk")
        constraints = [
            models.UniqueConstraint(fields=("webhook", "event", "attempt"), name="sandbox_delivery_attempt_unique")
        ]

    def __str__(self) -> str:
        return f"delivery of {self.event_id} to webhook {self.webhook_id} (attempt {self.attempt})"
