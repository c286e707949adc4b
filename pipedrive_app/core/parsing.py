"""Strict parsers for everything a request carries: ids, UUIDs, credentials, JSON bodies, text.

One rule for the whole app: input is checked against a bounded, anchored grammar *before* any work is
done with it, and anything else raises :class:`ParseError` (a ``ValueError``) with a short reason that
is safe to show to the caller. Nothing here ever raises anything else for any input — no
``RecursionError`` from deep JSON, no ``ValueError`` from ``int()`` on "²" or 5,000 digits, no
``UnicodeDecodeError`` from a credential — so a view can turn ``ParseError`` into a 4xx and be done.

- Ids are ASCII digits only (``str.isdigit`` accepts "²" and "٣", which ``int()`` then rejects or
  reads as something else), at most 19 digits and at most PostgreSQL's ``bigint`` maximum.
- Every pattern is matched with ``fullmatch``; ``$`` matches before a trailing newline, so
  ``"same-id\\n"`` would pass a ``^...$`` check and become a second, distinct value.
- JSON bodies are bounded in size and nesting depth by a linear scan of the raw bytes before
  ``json.loads`` runs, so a 50,000-deep array costs one pass over the bytes and a 400, never a stack.
- Text that PostgreSQL cannot store (``\\x00`` in ``text`` and ``jsonb``; lone UTF-16 surrogates,
  which are not encodable as UTF-8) is cleaned before it is written: :func:`text_clean` and
  :func:`json_clean`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Iterable
from typing import Any

__all__ = [
    "BIGINT_MAX",
    "ID_MAX_DIGITS",
    "JSON_MAX_BYTES",
    "JSON_MAX_DEPTH",
    "ParseError",
    "basic_credentials_parse",
    "bearer_token_parse",
    "id_list_parse",
    "id_or_none",
    "id_parse",
    "json_body_parse",
    "json_clean",
    "json_object_parse",
    "oauth_code_parse",
    "text_clean",
    "uuid_parse",
]

BIGINT_MAX = 2**63 - 1  # PostgreSQL bigint; every id column in this app fits in it
ID_MAX_DIGITS = 19  # len(str(BIGINT_MAX))
JSON_MAX_BYTES = 256 * 1024
JSON_MAX_DEPTH = 32
ID_LIST_MAX_ITEMS = 100
CREDENTIAL_MAX_CHARS = 1024  # a Basic header or a bearer token longer than this is refused unread
BEARER_MAX_CHARS = 8192  # a JWT with a generous payload; Pipedrive's are well under 2 KB
OAUTH_CODE_MAX_CHARS = 2048  # Pipedrive's authorization codes are well under 100 characters

_ASCII_DIGITS = re.compile(rf"[0-9]{{1,{ID_MAX_DIGITS}}}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
# RFC 6750 b64token (token68): what a bearer credential may contain.
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 6749 appendix A.11: an authorization code is 1*VSCHAR (printable ASCII, space to tilde).
_VSCHAR = re.compile(r"[\x20-\x7e]+")
# A JSON string literal in raw bytes: outside strings, valid JSON has no quote and no backslash.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = frozenset(b"[{")
# Characters PostgreSQL refuses: NUL anywhere, and lone surrogates (json.loads produces them from
# "\ud800"; they cannot be encoded as UTF-8, so the driver fails before the row is written).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class ParseError(ValueError):
    """The input does not follow the expected grammar; the message is safe to return to the caller."""


# ---------------------------------------------------------------------------------------------- ids


def id_parse(*, value: object, name: str = "id", allow_zero: bool = False, maximum: int = BIGINT_MAX) -> int:
    """A positive integer id from an ``int`` or a string of ASCII digits (no sign, no spaces).

    ``bool`` is refused (``True`` is an ``int`` in Python); so are floats, "²", "٣", "1\\n", " 1",
    "+1", "1_000" and anything longer than 19 digits, without ever calling ``int()`` on it unchecked.
    """
    if isinstance(value, bool):
        raise ParseError(f"{name} must be an integer id")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        if not _ASCII_DIGITS.fullmatch(value):
            raise ParseError(f"{name} must be 1 to {ID_MAX_DIGITS} ASCII digits")
        number = int(value)
    else:
        raise ParseError(f"{name} must be an integer id")
    if number < 0 or (number == 0 and not allow_zero):
        raise ParseError(f"{name} must be positive")
    if number > maximum:
        raise ParseError(f"{name} is out of range")
    return number


def id_or_none(*, value: object, allow_zero: bool = False, maximum: int = BIGINT_MAX) -> int | None:
    """:func:`id_parse`, with ``None`` instead of an error (for optional ids and lenient lookups)."""
    try:
        return id_parse(value=value, allow_zero=allow_zero, maximum=maximum)
    except ParseError:
        return None


def id_list_parse(
    *, value: object, name: str = "ids", separator: str = ",", max_items: int = ID_LIST_MAX_ITEMS
) -> list[int]:
    """Ids from ``"1,2,3"`` or a JSON list ``[1, "2"]``: order kept, duplicates dropped, bounded count.

    An empty string or list gives ``[]``; any invalid member refuses the whole list.
    """
    items: Iterable[object]
    if isinstance(value, str):
        if len(value) > max_items * (ID_MAX_DIGITS + len(separator)):
            raise ParseError(f"{name} has more than {max_items} ids")
        items = value.split(separator) if value else []
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise ParseError(f"{name} must be a list of ids")
    result: list[int] = []
    seen: set[int] = set()
    for count, item in enumerate(items, start=1):
        if count > max_items:
            raise ParseError(f"{name} has more than {max_items} ids")
        number = id_parse(value=item, name=name)
        if number not in seen:
            seen.add(number)
            result.append(number)
    return result


def uuid_parse(*, value: object, name: str = "uuid") -> uuid.UUID:
    """A UUID in its canonical 8-4-4-4-12 hex form only (no braces, ``urn:``, or bare 32 hex)."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise ParseError(f"{name} must be a UUID")
    return uuid.UUID(value)


# -------------------------------------------------------------------------------------- credentials


def basic_credentials_parse(*, header: str | None) -> tuple[str, str]:
    """``(username, password)`` from an ``Authorization: Basic …`` header value.

    The scheme is case-insensitive (RFC 7617); the base64 must be strict, the decoded bytes UTF-8
    with a ``:``, and neither part may contain control characters. Bounded before decoding.
    """
    if not header:
        raise ParseError("missing Basic credentials")
    if len(header) > CREDENTIAL_MAX_CHARS:
        raise ParseError("credentials too long")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not _BASE64.fullmatch(encoded):
        raise ParseError("malformed Basic credentials")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ParseError("malformed Basic credentials") from None
    username, colon, password = decoded.partition(":")
    if not colon or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in decoded):
        raise ParseError("malformed Basic credentials")
    return username, password


def bearer_token_parse(*, header: str | None, max_length: int = BEARER_MAX_CHARS) -> str:
    """The token from an ``Authorization: Bearer <token68>`` header value (scheme case-insensitive)."""
    if not header:
        raise ParseError("missing bearer token")
    if len(header) > max_length + len("Bearer "):
        raise ParseError("bearer token too long")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not _TOKEN68.fullmatch(token):
        raise ParseError("malformed bearer token")
    return token


def oauth_code_parse(*, value: str | None) -> str:
    """An OAuth authorization code from the callback's query (RFC 6749 A.11: printable ASCII), bounded.

    Checked before the code is sent to the token endpoint, so a forged or mangled callback URL is a
    400 on our side instead of a round trip that Pipedrive would refuse.
    """
    if not value:
        raise ParseError("missing authorization code")
    if len(value) > OAUTH_CODE_MAX_CHARS or not _VSCHAR.fullmatch(value):
        raise ParseError("malformed authorization code")
    return value


# --------------------------------------------------------------------------------------------- JSON


def json_depth_exceeds(*, raw: bytes, max_depth: int) -> bool:
    """Whether brackets outside string literals nest deeper than ``max_depth``; one linear pass."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        if byte in _OPEN:
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def _reject_constant(name: str) -> Any:
    raise ParseError(f"JSON constant {name} is not allowed")


def json_body_parse(
    *, body: bytes | str, max_bytes: int = JSON_MAX_BYTES, max_depth: int = JSON_MAX_DEPTH, allow_empty: bool = False
) -> Any:
    """A JSON document, with its size and depth checked on the raw bytes before it is parsed.

    Refuses ``NaN``/``Infinity``, integers longer than Python's digit limit and invalid UTF-8. Strings
    may still hold NUL or lone surrogates (``"\\u0000"``, ``"\\ud800"``): pass what you store through
    :func:`json_clean`. ``allow_empty`` turns an empty body into ``None``.
    """
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    if len(raw) > max_bytes:
        raise ParseError(f"JSON body larger than {max_bytes} bytes")
    if not raw.strip():
        if allow_empty:
            return None
        raise ParseError("empty JSON body")
    if json_depth_exceeds(raw=raw, max_depth=max_depth):
        raise ParseError(f"JSON nested deeper than {max_depth}")
    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except ParseError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise ParseError("body is not valid JSON") from None


def json_object_parse(
    *, body: bytes | str, max_bytes: int = JSON_MAX_BYTES, max_depth: int = JSON_MAX_DEPTH, allow_empty: bool = False
) -> dict[str, Any]:
    """:func:`json_body_parse` that also requires a top-level object (``{}`` for an allowed empty body)."""
    value = json_body_parse(body=body, max_bytes=max_bytes, max_depth=max_depth, allow_empty=allow_empty)
    if value is None and allow_empty:
        return {}
    if not isinstance(value, dict):
        raise ParseError("JSON body must be an object")
    return value


# --------------------------------------------------------------------------------------------- text


def text_clean(value: str) -> str:
    """``value`` without NUL and with lone surrogates replaced by U+FFFD, so PostgreSQL can store it."""
    if _UNSTORABLE.search(value) is None:
        return value
    return _UNSTORABLE.sub(lambda match: "" if match.group() == "\x00" else "\ufffd", value)


def json_clean(value: Any, *, max_depth: int = 256) -> Any:
    """A copy of a parsed JSON value whose strings and keys all pass :func:`text_clean`.

    Iterative (no recursion), so any depth is safe; containers deeper than ``max_depth`` raise
    :class:`ParseError` because PostgreSQL's ``jsonb`` and Python's encoder would not take them.
    """
    if isinstance(value, str):
        return text_clean(value)
    if not isinstance(value, dict | list):
        return value
    root: Any = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, Any, int]] = [(value, root, 1)]
    while stack:
        source, target, depth = stack.pop()
        if depth > max_depth:
            raise ParseError(f"JSON nested deeper than {max_depth}")
        entries = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in entries:
            if isinstance(item, dict | list):
                child: Any = {} if isinstance(item, dict) else []
                stack.append((item, child, depth + 1))
            elif isinstance(item, str):
                child = text_clean(item)
            else:
                child = item
            if isinstance(target, dict):
                target[text_clean(key) if isinstance(key, str) else key] = child
            else:
                target.append(child)
    return root
