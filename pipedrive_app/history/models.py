"""Per-record change history built from Pipedrive webhook events, and what it needs to show labels.

Every row belongs to a Company (on_delete=CASCADE): the company's last uninstall purges it.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from pipedrive_app.installations.models import Company


class ChangeRecord(models.Model):
    """One line of a record's history: created, deleted, merged, or one changed field."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        CHANGED = "changed", "Changed"
        DELETED = "deleted", "Deleted"
        MERGED = "merged", "Merged"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="change_records")
    entity = models.CharField(max_length=32)
    entity_id = models.CharField(max_length=64)  # text: a lead's id is a UUID
    kind = models.CharField(max_length=16, choices=Kind.choices)
    field_key = models.CharField(max_length=128, blank=True)
    field_label = models.CharField(max_length=255, blank=True)
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    old_display = models.TextField(blank=True)
    new_display = models.TextField(blank=True)
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=255, blank=True)
    change_source = models.CharField(max_length=64, blank=True)
    # The record's owner as the event carried it (``owner_id``, else v1's ``user_id``): whose
    # records changed, for the floating window's "changes on your records" (extensions/floating_window.py).
    owner_user_id = models.BigIntegerField(null=True, blank=True)
    # The record's title or name as the event carried it ("" when it carried none): the feed names
    # the record without asking Pipedrive.
    record_label = models.CharField(max_length=255, blank=True)
    # Pipedrive's own event time: history is ordered by it, never by arrival.
    occurred_at = models.DateTimeField()
    # The inbox de-duplication key of the event the row came from (Pipedrive's event id for v2).
    event_key = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-occurred_at", "-pk")
        constraints = [
            models.UniqueConstraint(
                fields=("company", "event_key", "entity", "entity_id", "kind", "field_key"),
                name="history_change_once_per_event",
            )
        ]
        indexes = [
            models.Index(fields=("company", "entity", "entity_id", "-occurred_at"), name="history_record_timeline"),
            models.Index(fields=("company", "occurred_at"), name="history_company_occurred"),
            # The floating window's feed: one owner's rows of one company, newest id first.
            models.Index(fields=("company", "owner_user_id", "-id"), name="history_owner_feed"),
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.entity_id} {self.kind} {self.field_key}".strip()


class FieldValueState(models.Model):
    """A field's current value, taken from the event with the latest Pipedrive timestamp.

    Updated only when an event is newer than ``as_of``, so a late (out-of-order) delivery adds its
    history line but never overwrites a newer value.
    """

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="field_values")
    entity = models.CharField(max_length=32)
    entity_id = models.CharField(max_length=64)  # text: a lead's id is a UUID
    field_key = models.CharField(max_length=128)
    value = models.JSONField(null=True, blank=True)
    display = models.TextField(blank=True)
    as_of = models.DateTimeField()
    event_key = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("company", "entity", "entity_id", "field_key"), name="history_one_current_value"
            )
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.entity_id}.{self.field_key}"


class FieldCatalog(models.Model):
    """When a company's field definitions for one entity were last fetched from Pipedrive."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="field_catalogs")
    entity = models.CharField(max_length=32)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("company", "entity"), name="history_one_catalog_per_entity")]

    def __str__(self) -> str:
        return f"{self.entity} fields of {self.company_id}"


class FieldDefinitionCache(models.Model):
    """A field's label, type and option labels as Pipedrive's ``/api/v2/<entity>Fields`` lists them."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="field_definitions")
    entity = models.CharField(max_length=32)
    field_key = models.CharField(max_length=128)
    name = models.CharField(max_length=255)
    field_type = models.CharField(max_length=64, blank=True)
    # {"<option id>": "<label>"}; ids as strings so that 5 and "5" resolve alike.
    options = models.JSONField(default=dict, blank=True)
    is_custom = models.BooleanField(default=False)
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("company", "entity", "field_key"), name="history_one_field_definition")
        ]

    def __str__(self) -> str:
        return f"{self.entity}.{self.field_key} = {self.name}"
