"""API v2 cursors: opaque URL-safe base64 of a small JSON object, without padding.

``{"id": <last id>}`` for lists ordered by id; ``{"offset": n}`` for small lists sorted by another
field, where "after this id" has no meaning.
"""

from __future__ import annotations

import base64
import binascii
import json

from .validation import InvalidQuery


def _encode(payload: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _decode(cursor: str, key: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = int(json.loads(base64.urlsafe_b64decode(padded))[key])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidQuery("Invalid cursor") from None
    if value < 0:
        raise InvalidQuery("Invalid cursor")
    return value


def encode_after(last_id: int) -> str:
    return _encode({"id": last_id})


def decode_after(cursor: str | None) -> int:
    """The id after which the page starts (0: from the first)."""
    return _decode(cursor, "id") if cursor else 0


def encode_offset(offset: int) -> str:
    return _encode({"offset": offset})


def decode_offset(cursor: str | None) -> int:
    return _decode(cursor, "offset") if cursor else 0
