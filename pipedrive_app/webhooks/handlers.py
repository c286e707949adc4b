"""The registry of what the app does with a webhook event, per entity and action.

A handler has two steps. ``prepare`` runs before the inbox row is claimed and may call Pipedrive
(e.g. to learn a custom field's label); ``apply`` runs inside the transaction that claims the row and
marks it processed, and only writes to the database. ``prepare`` may raise ``EventSkipped`` to leave
the event unprocessed on purpose, with a reason. So a handler's writes happen exactly once per
event, and a crash or a transient error in either step leaves the row pending for a retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .payloads import Delivery


class EventSkipped(Exception):
    """Raised by a handler's ``prepare``: the event is deliberately not processed (e.g. its entity is
    not tracked). The inbox row becomes ``skipped`` with ``reason``; it is never retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class EventContext:
    inbox_event_id: int
    company_id: int  # the app's Company pk
    delivery: Delivery


class EventHandler(Protocol):
    def prepare(self, context: EventContext) -> Any: ...

    def apply(self, context: EventContext, prepared: Any) -> None: ...


_handlers: dict[tuple[str, str], list[EventHandler]] = {}


def handler_register(*, entity: str, action: str, handler: EventHandler) -> None:
    """Run ``handler`` for events of ``entity`` ("*" for all) with ``action`` ("*" for all)."""
    registered = _handlers.setdefault((entity, action), [])
    if handler not in registered:
        registered.append(handler)


def handler_unregister(*, entity: str, action: str, handler: EventHandler) -> None:
    registered = _handlers.get((entity, action), [])
    if handler in registered:
        registered.remove(handler)


def handlers_for(*, entity: str, action: str) -> list[EventHandler]:
    found: list[EventHandler] = []
    for key in ((entity, action), (entity, "*"), ("*", action), ("*", "*")):
        for handler in _handlers.get(key, []):
            if handler not in found:
                found.append(handler)
    return found
