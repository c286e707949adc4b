"""Create (or promote) an operator: a staff user who signs in with e-mail, password and TOTP."""

from __future__ import annotations

import getpass
import os
from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

PASSWORD_ENV = "OPERATOR_PASSWORD"


class Command(BaseCommand):
    help = (
        "Create the first (or another) dashboard operator. The password is prompted for, or read from "
        f"the {PASSWORD_ENV} environment variable for automation. The operator sets up TOTP at first sign-in."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--superuser", action="store_true", help="also make the operator a superuser")

    def handle(self, *args: Any, **options: Any) -> None:
        email = options["email"].strip().lower()
        if "@" not in email:
            raise CommandError("--email must be an e-mail address")
        password = os.environ.get(PASSWORD_ENV) or self._prompt_password()
        User = get_user_model()
        try:
            validate_password(password, User(email=email, username=email))
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        with transaction.atomic():
            user = User.objects.filter(email__iexact=email).first()
            created = user is None
            if user is None:
                user = User(username=email, email=email)
            user.is_staff = True
            user.is_active = True
            if options["superuser"]:
                user.is_superuser = True
            user.set_password(password)
            user.save()
            EmailAddress.objects.update_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
        self.stdout.write(self.style.SUCCESS(f"Operator {email} {'created' if created else 'updated'}."))
        self.stdout.write(
            "Next: sign in at /accounts/login/ with this e-mail and password. The dashboard then asks you to "
            "set up two-factor authentication (TOTP): scan the QR code with an authenticator app "
            "(or type the secret shown) and enter a code. Keep the recovery codes it offers."
        )

    def _prompt_password(self) -> str:
        if not os.isatty(0):
            raise CommandError(f"No terminal to prompt on: set {PASSWORD_ENV}.")
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The passwords differ.")
        if not first:
            raise CommandError("An empty password is not allowed.")
        return first
