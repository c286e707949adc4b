"""The change-history handler for webhook events."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pipedrive_app.installations.models import Company, CompanySettings
from pipedrive_app.webhooks.handlers import EventContext, EventSkipped, handler_register
from pipedrive_app.webhooks.selectors import tracked_entities

from .field_labels import FieldLabels
from .references import RecordNames, delivery_references, record_names_resolve
from .services import changed_custom_keys, field_changes, field_labels_load, history_record_delivery

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedHistory:
    labels: FieldLabels
    names: RecordNames


class HistoryHandler:
    def prepare(self, context: EventContext) -> PreparedHistory:
        # Runs before the claim and may call Pipedrive: *Fields when a custom field key is new (a
        # transient failure there retries the event), and the names of the records the event refers
        # to (cosmetic: a failure falls back to "Stage #3" and never fails the event).
        delivery = context.delivery
        _skip_untracked(company_id=context.company_id, entity=delivery.entity)
        labels = field_labels_load(
            company_id=context.company_id, entity=delivery.entity, keys=changed_custom_keys(delivery=delivery)
        )
        changes = field_changes(delivery=delivery) if delivery.action == "change" else []
        wanted = delivery_references(delivery=delivery, changes=changes)
        try:
            names = record_names_resolve(company_id=context.company_id, wanted=wanted)
        except Exception:  # e.g. the cache is down: "Stage #3" is better than an event never recorded
            logger.exception("inbox event %s: record names not resolved", context.inbox_event_id)
            names = RecordNames()
        return PreparedHistory(labels=labels, names=names)

    def apply(self, context: EventContext, prepared: PreparedHistory) -> None:
        history_record_delivery(
            company_id=context.company_id, delivery=context.delivery, labels=prepared.labels, names=prepared.names
        )


def _skip_untracked(*, company_id: int, entity: str) -> None:
    """History is kept for the entities the company tracks (settings page); others are skipped."""
    if entity not in CompanySettings.TRACKABLE_ENTITIES:
        raise EventSkipped(f"no history is kept for {entity} records (not a trackable entity)")
    company = Company.objects.filter(pk=company_id).first()
    if company is None or entity not in tracked_entities(company=company):
        raise EventSkipped(f"{entity} is not among the entities this company tracks")


history_handler = HistoryHandler()


def register_history_handlers() -> None:
    handler_register(entity="*", action="*", handler=history_handler)
