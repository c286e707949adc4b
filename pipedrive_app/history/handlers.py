"""The change-history handler for webhook events."""

from __future__ import annotations

from pipedrive_app.webhooks.handlers import EventContext, handler_register

from .field_labels import FieldLabels
from .services import changed_custom_keys, field_labels_load, history_record_delivery


class HistoryHandler:
    def prepare(self, context: EventContext) -> FieldLabels:
        # May call Pipedrive (*Fields) when a custom field key is new; runs before the claim.
        delivery = context.delivery
        return field_labels_load(
            company_id=context.company_id, entity=delivery.entity, keys=changed_custom_keys(delivery=delivery)
        )

    def apply(self, context: EventContext, prepared: FieldLabels) -> None:
        history_record_delivery(company_id=context.company_id, delivery=context.delivery, labels=prepared)


history_handler = HistoryHandler()


def register_history_handlers() -> None:
    handler_register(entity="*", action="*", handler=history_handler)
