"""allauth adapters: operators are created by `create_operator`, never by signing up; their TOTP
seeds and recovery-code seeds are stored encrypted with the app's key set (TOKEN_ENCRYPTION_KEYS)."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from django.http import HttpRequest

from pipedrive_app.core import crypto


class OperatorAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False


class OperatorMFAAdapter(DefaultMFAAdapter):
    """allauth calls ``encrypt`` before it stores a TOTP seed or a recovery-code seed in
    ``mfa_authenticator.data`` and ``decrypt`` when it reads one: the same MultiFernet as tokens,
    so ``rotate_token_keys`` covers them too."""

    def encrypt(self, text: str) -> str:
        return crypto.encrypt(text)

    def decrypt(self, encrypted_text: str) -> str:
        if not crypto.looks_encrypted(encrypted_text):
            # Stored before encryption was switched on, and not yet migrated: still readable.
            return encrypted_text
        return crypto.decrypt(encrypted_text)
