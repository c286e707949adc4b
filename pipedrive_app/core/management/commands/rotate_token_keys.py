"""Re-encrypt every encrypted column under the newest key of TOKEN_ENCRYPTION_KEYS.

Rotation: prepend a new key to TOKEN_ENCRYPTION_KEYS and deploy, run this command, then remove the
old key. Rows are locked in small batches so a concurrent token refresh is never overwritten. The
operators' TOTP and recovery-code seeds (allauth's ``mfa_authenticator.data``) are rotated too.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import models, transaction
from django.db.models.functions import Cast
from tqdm import tqdm

from pipedrive_app.core.crypto import (
    EncryptedTextField,
    authenticator_data_map,
    is_encrypted_with_newest_key,
    rotate,
    rotate_or_encrypt,
)

BATCH = 200


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    found = []
    for model in apps.get_models():
        names = [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            found.append((model, names))
    return found


class Command(BaseCommand):
    help = "Re-encrypt all tokens and secrets under the newest TOKEN_ENCRYPTION_KEYS key."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        rotated = unchanged = 0
        for model, names in encrypted_fields():
            manager = model._base_manager
            pks = list(manager.order_by("pk").values_list("pk", flat=True))
            label = model._meta.label
            with tqdm(total=len(pks), desc=label, unit="row", disable=options["no_progress"], file=self.stderr) as bar:
                for start in range(0, len(pks), BATCH):
                    batch = pks[start : start + BATCH]
                    with transaction.atomic():
                        # Read ciphertext as stored (values() bypasses from_db_value's decryption).
                        rows = (
                            manager.select_for_update()
                            .filter(pk__in=batch)
                            .order_by("pk")
                            .values_list("pk", *[self._raw(model, n) for n in names])
                        )
                        for pk, *ciphertexts in rows:
                            changes = {}
                            for name, ciphertext in zip(names, ciphertexts, strict=True):
                                if ciphertext and not is_encrypted_with_newest_key(ciphertext):
                                    changes[name] = rotate(ciphertext)
                            if changes:
                                # A raw UPDATE: the values are already ciphertext.
                                manager.filter(pk=pk).update(**{n: _Raw(v) for n, v in changes.items()})
                                rotated += 1
                            else:
                                unchanged += 1
                    bar.update(len(batch))
        mfa_rotated, mfa_unchanged = self._rotate_authenticators(progress=not options["no_progress"])
        rotated += mfa_rotated
        unchanged += mfa_unchanged
        self.stdout.write(
            self.style.SUCCESS(f"Re-encrypted {rotated} row(s); {unchanged} already under the newest key.")
        )

    def _rotate_authenticators(self, *, progress: bool) -> tuple[int, int]:
        """The operators' TOTP and recovery-code seeds (allauth's JSON ``data``), row by row locked."""
        if not apps.is_installed("allauth.mfa"):
            return 0, 0
        model = apps.get_model("mfa", "Authenticator")
        manager = model._base_manager
        pks = list(manager.order_by("pk").values_list("pk", flat=True))
        rotated = unchanged = 0
        with tqdm(total=len(pks), desc=model._meta.label, unit="row", disable=not progress, file=self.stderr) as bar:
            for start in range(0, len(pks), BATCH):
                batch = pks[start : start + BATCH]
                with transaction.atomic():
                    for pk, data in (
                        manager.select_for_update().filter(pk__in=batch).order_by("pk").values_list("pk", "data")
                    ):
                        new_data, changed = authenticator_data_map(data, rotate_or_encrypt)
                        if changed:
                            manager.filter(pk=pk).update(data=new_data)
                            rotated += 1
                        else:
                            unchanged += 1
                bar.update(len(batch))
        return rotated, unchanged

    @staticmethod
    def _raw(model: type[models.Model], name: str) -> Any:
        return Cast(name, output_field=models.TextField())


class _Raw(models.Value):
    """A value written as-is, bypassing the field's encryption."""

    def __init__(self, value: str) -> None:
        super().__init__(value, output_field=models.TextField())
