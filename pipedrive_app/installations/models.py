"""Companies, per-user installations and their tokens.

Pipedrive installs are per user (platform guide §2): each user of a company who installs grants
their own tokens. The installation key is (company_id, user_id) from ``/users/me``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.utils import timezone

from pipedrive_app.core.crypto import EncryptedTextField


class Company(models.Model):
    """A Pipedrive company with at least one installation. Deleting it purges all its app data."""

    pipedrive_company_id = models.BigIntegerField(unique=True)
    name = models.CharField(max_length=255, blank=True)
    domain = models.CharField(max_length=255, blank=True, help_text="Pipedrive subdomain, e.g. 'acme'.")
    api_domain = models.URLField(max_length=255, help_text="Origin for API calls, from the token response.")
    installed_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The lease of the company's webhook reconciliation (core/locks.py): one run at a time, with no
    # lock held while Pipedrive is called; a run asked for meanwhile sets ``webhooks_rerun`` and the
    # holder runs once more before letting go.
    webhooks_lease_until = models.DateTimeField(null=True, blank=True)
    webhooks_lease_id = models.CharField(max_length=32, blank=True, default="")
    webhooks_rerun = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "companies"
        ordering = ("name", "pk")

    def __str__(self) -> str:
        return f"{self.name or 'company'} ({self.pipedrive_company_id})"

    @property
    def pipedrive_url(self) -> str:
        """Where a user of this company opens Pipedrive in the browser."""
        return self.api_domain


class CompanySettings(models.Model):
    """What a company's admins chose on the app settings page."""

    # Pipedrive webhook event objects a company can track (platform guide §4). pipeline and stage
    # exist only as v1 webhooks.
    TRACKABLE_ENTITIES = ("deal", "person", "organization", "activity", "note", "product", "lead", "pipeline", "stage")
    DEFAULT_TRACKED_ENTITIES = ("deal", "person")

    company = models.OneToOneField(Company, on_delete=models.CASCADE, related_name="settings")
    tracked_entities = models.JSONField(default=list)
    history_retention_days = models.PositiveIntegerField(default=90)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by_user_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "company settings"

    def __str__(self) -> str:
        return f"settings of {self.company_id}"


class Installation(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        NEEDS_REAUTH = "needs_reauth", "Needs re-authorization"
        UNINSTALLED = "uninstalled", "Uninstalled"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="installations")
    pipedrive_user_id = models.BigIntegerField()
    name = models.CharField(max_length=255, blank=True)
    email = models.EmailField(max_length=255, blank=True)
    is_admin = models.BooleanField(default=False)
    locale = models.CharField(max_length=32, blank=True)
    timezone_name = models.CharField(max_length=64, blank=True)
    scopes = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)

    # Ciphertext of ≥768-character tokens is longer still: unbounded text columns.
    access_token = EncryptedTextField(blank=True, null=True)
    refresh_token = EncryptedTextField(blank=True, null=True)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    # When Pipedrive last issued or accepted the refresh token; it dies after 60 days unused.
    refresh_token_used_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_refresh_at = models.DateTimeField(null=True, blank=True)
    last_refresh_error = models.CharField(max_length=500, blank=True)
    refresh_failures = models.PositiveIntegerField(default=0)
    # Single-flight refresh without a lock across the network (core/locks.py): the lease a caller
    # claims before calling the token endpoint, and how long a failure of that endpoint is
    # remembered so that waiting callers do not each call it again.
    refresh_lease_until = models.DateTimeField(null=True, blank=True)
    refresh_lease_id = models.CharField(max_length=32, blank=True, default="")
    refresh_blocked_until = models.DateTimeField(null=True, blank=True)

    installed_at = models.DateTimeField(default=timezone.now)
    uninstalled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("company", "pk")
        constraints = [
            models.UniqueConstraint(
                fields=("company", "pipedrive_user_id"), name="installation_unique_user_per_company"
            ),
        ]
        indexes = [models.Index(fields=("company", "status"))]

    def __str__(self) -> str:
        return f"{self.name or 'user'} ({self.pipedrive_user_id}) @ {self.company_id}"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])

    def access_token_expires_within(self, margin: timedelta, *, now: datetime | None = None) -> bool:
        if not self.access_token or self.access_token_expires_at is None:
            return True
        return self.access_token_expires_at - (now or timezone.now()) < margin


class OAuthState(models.Model):
    """A ``state`` the app issued at /oauth/install: random, bound to one browser, single use."""

    state_hash = models.CharField(max_length=64, unique=True)
    browser_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"state issued {self.created_at:%Y-%m-%d %H:%M:%S}"


class LifecycleEvent(models.Model):
    """An install or uninstall, kept after the company's data is purged. No personal data."""

    class Kind(models.TextChoices):
        INSTALLED = "installed", "Installed"
        REINSTALLED = "reinstalled", "Reinstalled"
        USER_UNINSTALLED = "user_uninstalled", "User uninstalled"
        COMPANY_UNINSTALLED = "company_uninstalled", "Company uninstalled (data purged)"

    class Source(models.TextChoices):
        OAUTH = "oauth", "OAuth callback"
        PIPEDRIVE = "pipedrive", "Pipedrive uninstall notification"
        VENDOR = "vendor", "Vendor-side uninstall"

    kind = models.CharField(max_length=24, choices=Kind.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    pipedrive_company_id = models.BigIntegerField(db_index=True)
    pipedrive_user_id = models.BigIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-occurred_at", "-pk")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} company {self.pipedrive_company_id}"
