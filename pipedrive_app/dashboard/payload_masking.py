"""Mask what an operator does not need from a webhook payload: secrets and personal data.

Masked everywhere: credentials (passwords, tokens, secrets, Basic/HTTP auth), e-mail addresses,
phone numbers, instant-messenger handles, postal addresses, birthdays, and people's names (first,
last, person/owner/user/contact names). ``name`` itself is masked on a person (the event's entity)
and inside any object that describes a person or user; a deal's or organization's name stays.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "•••• masked"

_SECRET = re.compile(r"pass(word)?|secret|token|auth|api_?key|credential|cookie|session|signature", re.I)
_PERSONAL = re.compile(
    r"e-?mail|phone|(^|_)im$|messenger|postal|address|birthday|^first_name$|^last_name$|"
    r"(person|owner|user|creator|contact|participant|attendee|assignee|author)_?name$|^cc_email$",
    re.I,
)
_PERSON_CONTAINERS = re.compile(r"person|owner|user|creator|contact|participant|attendee|assignee|author", re.I)
_PERSON_ENTITIES = {"person", "user"}
# The envelopes around the record itself: they keep the record's context.
_SHELLS = {"data", "current", "previous"}


def _key_is_sensitive(key: str) -> bool:
    return bool(_SECRET.search(key) or _PERSONAL.search(key))


def payload_mask(*, payload: Any, entity: str = "") -> Any:
    """A copy of ``payload`` with sensitive values replaced; structure and other values kept."""
    return _mask(payload, person_context=entity in _PERSON_ENTITIES, depth=0)


def _mask(value: Any, *, person_context: bool, depth: int) -> Any:
    if depth > 50:
        return MASK
    if isinstance(value, list):
        return [_mask(item, person_context=person_context, depth=depth + 1) for item in value]
    if not isinstance(value, dict):
        return value
    # v1 names the entity in meta.object, v2 in meta.entity; a person's name is in current/data.
    meta = value.get("meta")
    if isinstance(meta, dict) and str(meta.get("entity") or meta.get("object") or "") in _PERSON_ENTITIES:
        person_context = True
    masked: dict[str, Any] = {}
    for key, item in value.items():
        name = str(key)
        if _key_is_sensitive(name) or (person_context and name == "name"):
            masked[key] = item if item in (None, "", [], {}) else MASK
            continue
        # The record's envelopes keep its context; a "person"/"owner"/... object is a person.
        inner = person_context if name in _SHELLS else bool(_PERSON_CONTAINERS.search(name))
        masked[key] = _mask(item, person_context=inner, depth=depth + 1)
    return masked
