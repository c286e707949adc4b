"""Operators' TOTP and recovery-code seeds are stored encrypted with the app's key set, sign-in with
TOTP still works, ``rotate_token_keys`` re-encrypts them, and seeds stored in the clear before are
encrypted by the data migration."""

from __future__ import annotations

import importlib
import io

import pytest
from allauth.mfa.adapter import get_adapter
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import call_command
from django.test import Client

from pipedrive_app.core.crypto import decrypt, is_encrypted_with_newest_key

from .conftest import PASSWORD, make_user, totp_code

pytestmark = pytest.mark.django_db

migration = importlib.import_module("pipedrive_app.dashboard.migrations.0003_encrypt_mfa_seeds")


def _stored(user, kind: str) -> dict:
    """The row's JSON as stored (no adapter in between)."""
    return Authenticator.objects.filter(user=user, type=kind).values_list("data", flat=True).get()


def _signs_in_with_totp(user, secret: str) -> bool:
    client = Client()
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response["Location"] == "/accounts/2fa/authenticate/"
    response = client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret)})
    return response.status_code == 302 and response["Location"] == "/dashboard/"


def test_the_totp_seed_is_not_stored_in_the_clear_and_sign_in_works() -> None:
    user, secret = make_user(email="ops@example.test", staff=True, with_totp=True)
    assert secret is not None

    stored = _stored(user, Authenticator.Type.TOTP)["secret"]

    assert secret not in str(_stored(user, Authenticator.Type.TOTP))
    assert decrypt(stored) == secret
    assert _signs_in_with_totp(user, secret)


def test_recovery_code_seeds_are_encrypted_and_the_codes_still_work() -> None:
    user, _ = make_user(email="ops@example.test", staff=True, with_totp=True)
    codes = RecoveryCodes.activate(user).get_unused_codes()

    data = _stored(user, Authenticator.Type.RECOVERY_CODES)

    assert decrypt(data["seed"]) != data["seed"]
    assert RecoveryCodes(Authenticator.objects.get(user=user, type="recovery_codes")).validate_code(codes[0])


def test_rotate_token_keys_re_encrypts_the_seeds(settings) -> None:
    user, secret = make_user(email="ops@example.test", staff=True, with_totp=True)
    assert secret is not None
    RecoveryCodes.activate(user)
    new_key = Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [new_key, *settings.TOKEN_ENCRYPTION_KEYS]
    out = io.StringIO()

    call_command("rotate_token_keys", "--no-progress", stdout=out)

    assert "Re-encrypted 2 row(s)" in out.getvalue()
    assert is_encrypted_with_newest_key(_stored(user, Authenticator.Type.TOTP)["secret"])
    assert is_encrypted_with_newest_key(_stored(user, Authenticator.Type.RECOVERY_CODES)["seed"])
    settings.TOKEN_ENCRYPTION_KEYS = [new_key]  # the old key is gone: sign-in still works
    assert _signs_in_with_totp(user, secret)


def test_seeds_stored_in_the_clear_before_are_readable_then_encrypted_by_the_migration() -> None:
    user, secret = make_user(email="ops@example.test", staff=True, with_totp=True)
    assert secret is not None
    Authenticator.objects.filter(user=user, type="totp").update(data={"secret": secret})  # as before this change
    assert _signs_in_with_totp(user, secret)

    migration.encrypt_seeds(apps, None)

    stored = _stored(user, Authenticator.Type.TOTP)["secret"]
    assert stored != secret and decrypt(stored) == secret
    assert get_adapter().decrypt(stored) == secret  # what allauth reads at the next sign-in
    migration.encrypt_seeds(apps, None)  # idempotent: ciphertext is not encrypted twice
    assert decrypt(_stored(user, Authenticator.Type.TOTP)["secret"]) == secret
