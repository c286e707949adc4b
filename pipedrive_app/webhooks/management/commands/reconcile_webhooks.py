"""Reconcile webhook subscriptions at Pipedrive with each company's desired state."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from pipedrive_app.installations.models import Company
from pipedrive_app.pipedrive.errors import PipedriveError
from pipedrive_app.webhooks.services import company_webhooks_reconcile


class Command(BaseCommand):
    help = "List each company's webhooks at Pipedrive; recreate missing ones, delete duplicates and strays."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", type=int, help="Pipedrive company id (default: every company)")

    def handle(self, *args: Any, **options: Any) -> None:
        companies = Company.objects.order_by("pk")
        if options["company"] is not None:
            companies = companies.filter(pipedrive_company_id=options["company"])
            if not companies.exists():
                raise CommandError(f"no company with Pipedrive id {options['company']}")
        rows = list(companies.values_list("pk", "pipedrive_company_id"))
        failures = 0
        for pk, pipedrive_id in tqdm(rows, desc="reconciling", unit="company", disable=len(rows) < 2):
            try:
                result = company_webhooks_reconcile(company_id=pk)
            except PipedriveError as exc:
                failures += 1
                self.stderr.write(f"company {pipedrive_id}: {exc}")
                continue
            summary = f"company {pipedrive_id}: {result.status}"
            if result.status == "available":
                summary += f" (created {len(result.created)}, deleted {len(result.deleted)}, kept {len(result.kept)})"
            elif result.reason:
                summary += f": {result.reason}"
            self.stdout.write(summary)
        if failures:
            raise CommandError(f"{failures} compan{'y' if failures == 1 else 'ies'} could not be reconciled")
