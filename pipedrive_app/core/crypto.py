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
