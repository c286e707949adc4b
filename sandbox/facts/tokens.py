"""What Pipedrive's OAuth secrets look like: a short prefix, then a long random part.

Access tokens are long on purpose (over 100 characters), so column sizes and header handling are
exercised as real tokens exercise them.
"""

from __future__ import annotations

import secrets


def new_access_token() -> str:
    return "v1u:" + secrets.token_urlsafe(96)


def new_refresh_token() -> str:
    return "v1r:" + secrets.token_urlsafe(48)


def new_authorization_code() -> str:
    return secrets.token_urlsafe(32)


def new_custom_field_key() -> str:
    """Custom fields are keyed by a 40-character hex hash."""
    return secrets.token_hex(20)
