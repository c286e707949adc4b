"""Encryption at rest for tokens and other secrets.

``TOKEN_ENCRYPTION_KEYS`` holds Fernet keys, newest first. Values are encrypted with the newest key
and decrypted with any of them (cryptography's MultiFernet), so a key can be rotated in without
downtime: prepend the new key, run ``manage.py rotate_token_keys``, then drop the old one.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models


class DecryptionError(Exception):
    """A stored value cannot be decrypted with any configured key."""


@cache
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError) as exc:
        # Never echo the key itself.
        raise ImproperlyConfigured("TOKEN_ENCRYPTION_KEYS holds a malformed Fernet key.") from exc


def current_fernet() -> MultiFernet:
    return _multi_fernet(tuple(settings.TOKEN_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return current_fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return current_fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("value was encrypted with a key that is no longer configured") from exc


def rotate(ciphertext: str) -> str:
    """Re-encrypt under the newest key (MultiFernet.rotate keeps the original timestamp)."""
    try:
        return current_fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("value was encrypted with a key that is no longer configured") from exc


def is_encrypted_with_newest_key(ciphertext: str) -> bool:
    newest = Fernet(settings.TOKEN_ENCRYPTION_KEYS[0])
    try:
        newest.decrypt(ciphertext.encode())
    except InvalidToken:
        return False
    return True


# Fernet tokens are URL-safe base64 of a version byte 0x80 and a timestamp: they start with "gAAAAA".
# Values this app encrypts elsewhere (TOTP seeds: base32; recovery-code seeds: hex) never do.
_FERNET_PREFIX = "gAAAAA"


def looks_encrypted(value: str) -> bool:
    return value.startswith(_FERNET_PREFIX)


# --- allauth MFA authenticators (operators' TOTP seeds and recovery codes) -----------------------------
#
# ``mfa_authenticator.data`` is JSON; these keys hold secrets: the TOTP ``secret``, the recovery codes'
# ``seed`` and (for codes imported from elsewhere) ``migrated_codes``. The dashboard's MFA adapter
# encrypts them on write through allauth's encrypt/decrypt hooks; a data migration encrypts the
# ones stored before, and ``rotate_token_keys`` re-encrypts them with the rest.
AUTHENTICATOR_SECRET_KEYS = ("secret", "seed")
AUTHENTICATOR_SECRET_LISTS = ("migrated_codes",)


def authenticator_data_map(data: Any, transform: Any) -> tuple[Any, bool]:
    """Apply ``transform`` (str -> str) to each secret value of an authenticator's ``data``; return
    the new data and whether anything changed."""
    if not isinstance(data, dict):
        return data, False
    changed = False
    result = dict(data)
    for key in AUTHENTICATOR_SECRET_KEYS:
        value = result.get(key)
        if isinstance(value, str) and value:
            new = transform(value)
            changed = changed or new != value
            result[key] = new
    for key in AUTHENTICATOR_SECRET_LISTS:
        values = result.get(key)
        if isinstance(values, list):
            new_values = [transform(v) if isinstance(v, str) and v else v for v in values]
            changed = changed or new_values != values
            result[key] = new_values
    return result, changed


def encrypt_if_clear(value: str) -> str:
    return value if looks_encrypted(value) else encrypt(value)


def rotate_or_encrypt(value: str) -> str:
    """Under the newest key: clear text is encrypted, older ciphertext re-encrypted."""
    if not looks_encrypted(value):
        return encrypt(value)
    return value if is_encrypted_with_newest_key(value) else rotate(value)


def _clear_cache(*, setting: str, **_: Any) -> None:
    if setting == "TOKEN_ENCRYPTION_KEYS":
        _multi_fernet.cache_clear()


setting_changed.connect(_clear_cache)


class EncryptedTextField(models.TextField):
    """A text column stored as Fernet ciphertext; Python code sees plaintext (or None).

    Lookups other than ``isnull`` are meaningless on ciphertext, so the field is never indexed or
    compared by value.
    """

    description = "Text encrypted at rest with TOKEN_ENCRYPTION_KEYS"

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return decrypt(value)
