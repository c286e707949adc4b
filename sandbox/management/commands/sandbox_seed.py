"""``manage.py sandbox_seed [--reset]``: create the sandbox's tables and demo data.

Idempotent: an already seeded sandbox is left alone unless ``--reset`` wipes it first. ``make run``
calls it before starting the server.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS
from tqdm import tqdm

from sandbox.routers import SANDBOX_DB
from sandbox.seeding import COMPANIES, sandbox_is_empty, sandbox_seed, sandbox_wipe


class Command(BaseCommand):
    help = "Create the Pipedrive sandbox's tables and seed demo companies, users and records (once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reset", action="store_true", help="Wipe all sandbox data, then seed again.")

    def handle(self, *args: Any, **options: Any) -> None:
        if SANDBOX_DB not in settings.DATABASES:
            raise CommandError("The sandbox is off: set PIPEDRIVE_SANDBOX=on (make run does).")
        call_command("migrate", "sandbox", database=SANDBOX_DB, interactive=False, verbosity=0)
        # Also mark them applied in the default database's ledger. The router creates no sandbox table
        # there; without the entries, runserver warns "1 unapplied migration(s) ... sandbox" on start.
        call_command("migrate", "sandbox", database=DEFAULT_DB_ALIAS, interactive=False, verbosity=0)
        if options["reset"]:
            sandbox_wipe()
            self.stdout.write("Sandbox wiped.")
        elif not sandbox_is_empty():
            self.stdout.write("Sandbox already seeded; nothing to do (use --reset to start over).")
            return
        companies = sandbox_seed(
            progress=lambda items: tqdm(
                list(items),
                desc="Seeding sandbox companies",
                unit="company",
                total=len(COMPANIES),
                disable=options.get("verbosity", 1) == 0,
            )
        )
        for company in companies:
            users = ", ".join(f"{u.name} ({'admin' if u.is_admin else 'regular'})" for u in company.users.all())
            self.stdout.write(f"  {company.name}: api_domain {company.api_domain}; users: {users}")
        self.stdout.write(self.style.SUCCESS(f"Sandbox seeded with {len(companies)} companies."))
