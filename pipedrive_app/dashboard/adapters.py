"""allauth adapters: operators are created by `create_operator`, never by signing up; their TOTP
seeds and recovery-code seeds are stored encrypted with the app's key set (TOKEN_ENCRYPTION_KEYS)."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from django.http import HttpRequest

from pipedrive_app.core import crypto

LOGGED_IN_MESSAGE = "account/messages/logged_in.txt"


class OperatorAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def add_message(
        self,
        request: HttpRequest,
        level: int,
        message_template: str | None = None,
        message_context: dict[str, Any] | None = None,
        extra_tags: str = "",
        message: str | None = None,
    ) -> None:
        """No "Successfully signed in" while the second factor is still to come: an operator's first
        sign-in goes on to set up TOTP, and the dashboard opens only after it."""
        if message_template == LOGGED_IN_MESSAGE:
            from .access import operator_has_totp, session_passed_mfa

            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated and not session_passed_mfa(request=request):
                if not operator_has_totp(user=user):
                    message_template = None
                    message = "Password accepted. One more step: set up two-factor authentication."
                else:
                    return
        super().add_message(request, level, message_template, message_context, extra_tags, message)


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
