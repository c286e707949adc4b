"""Encrypt the operators' TOTP and recovery-code seeds stored in the clear before the MFA adapter
encrypted them (allauth's ``mfa_authenticator.data``), with TOKEN_ENCRYPTION_KEYS. Reversible."""

from django.db import migrations


def _transform(apps, transform):  # type: ignore[no-untyped-def]
    from pipedrive_app.core.crypto import authenticator_data_map

    Authenticator = apps.get_model("mfa", "Authenticator")
    for authenticator in Authenticator.objects.order_by("pk").iterator():
        data, changed = authenticator_data_map(authenticator.data, transform)
        if changed:
            Authenticator.objects.filter(pk=authenticator.pk).update(data=data)


def encrypt_seeds(apps, schema_editor):  # type: ignore[no-untyped-def]
    from pipedrive_app.core.crypto import encrypt_if_clear

    _transform(apps, encrypt_if_clear)


def decrypt_seeds(apps, schema_editor):  # type: ignore[no-untyped-def]
    from pipedrive_app.core.crypto import decrypt, looks_encrypted

    _transform(apps, lambda value: decrypt(value) if looks_encrypted(value) else value)


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0002_inbox_hourly_count"),
        ("mfa", "0003_authenticator_type_uniq"),
    ]

    operations = [migrations.RunPython(encrypt_seeds, decrypt_seeds)]
