"""Tokens never sit in plain text in the database, and keys rotate without losing them."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from pipedrive_app.core.crypto import DecryptionError, decrypt
from pipedrive_app.installations.models import Installation
from pipedrive_app.installations.services import installation_token_refresh
from tests.doubles.pipedrive_double import issued_secrets

pytestmark = pytest.mark.django_db


def _every_text_value_in_the_database() -> list[str]:
    values: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                values.extend(str(v) for v in row if v is not None)
    return values


def test_no_token_is_stored_in_plain_text_in_any_table(pipedrive, install_user) -> None:
    first = install_user(1001, 501)
    install_user(1001, 502)
    installation_token_refresh(installation_id=first.pk, force=True)
    secrets = [s for s in issued_secrets() if len(s) >= 12]
    assert len(secrets) >= 4  # two installs (access + refresh) and a refresh at least

    dump = "\n".join(_every_text_value_in_the_database())

    assert dump  # the scan really read the tables
    for secret in secrets:
        assert secret not in dump


def test_stored_ciphertext_decrypts_to_the_token(pipedrive, install_user) -> None:
    installation = install_user()
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM installations_installation WHERE id = %s", [installation.pk])
        (ciphertext,) = cursor.fetchone()
    assert ciphertext != installation.access_token
    assert decrypt(ciphertext) == installation.access_token


def test_rotate_command_re_encrypts_under_the_newest_key(pipedrive, install_user, settings) -> None:
    old_key = settings.TOKEN_ENCRYPTION_KEYS[0]
    first = install_user(1001, 501)
    second = install_user(1001, 502)
    tokens = {i.pk: (i.access_token, i.refresh_token) for i in (first, second)}
    new_key = Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [new_key, old_key]
    err = io.StringIO()
    out = io.StringIO()

    call_command("rotate_token_keys", stdout=out, stderr=err)

    assert "Re-encrypted 2 row(s)" in out.getvalue()
    assert "installations.Installation" in err.getvalue()  # the progress bar
    settings.TOKEN_ENCRYPTION_KEYS = [new_key]  # the old key is gone: everything must still read
    for installation in Installation.objects.all():
        assert (installation.access_token, installation.refresh_token) == tokens[installation.pk]
    out = io.StringIO()
    call_command("rotate_token_keys", "--no-progress", stdout=out)
    assert "Re-encrypted 0 row(s); 2 already under the newest key" in out.getvalue()


def test_a_removed_key_is_a_clear_error(pipedrive, install_user, settings) -> None:
    install_user()
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(DecryptionError):
        Installation.objects.get()
