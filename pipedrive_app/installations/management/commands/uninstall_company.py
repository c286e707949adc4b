"""Vendor-side uninstall: revoke tokens at Pipedrive, then purge as Pipedrive's notification would."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pipedrive_app.installations.models import Company, Installation
from pipedrive_app.installations.services import company_uninstall_by_vendor, installation_uninstall_by_vendor
from pipedrive_app.pipedrive.errors import PipedriveError


class Command(BaseCommand):
    help = "Uninstall the app for a Pipedrive company (or one of its users), revoking tokens at Pipedrive."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("company_id", type=int, help="Pipedrive company id")
        parser.add_argument("--user-id", type=int, help="Only this Pipedrive user's installation")
        parser.add_argument("--yes", action="store_true", help="Confirm: this cannot be undone")

    def handle(self, *args: Any, **options: Any) -> None:
        company = Company.objects.filter(pipedrive_company_id=options["company_id"]).first()
        if company is None:
            raise CommandError(f"No installed company with Pipedrive id {options['company_id']}.")
        if not options["yes"]:
            raise CommandError("This revokes tokens at Pipedrive and purges the company's data; pass --yes to confirm.")
        try:
            if options["user_id"]:
                installation = company.installations.filter(pipedrive_user_id=options["user_id"]).first()
                if installation is None or installation.status == Installation.Status.UNINSTALLED:
                    raise CommandError("That user has no installation to uninstall.")
                result = installation_uninstall_by_vendor(installation=installation)
            else:
                result = company_uninstall_by_vendor(company=company)
        except PipedriveError as exc:
            raise CommandError(f"Pipedrive did not confirm the revocation ({exc}); nothing was purged.") from None
        purged = "company data purged" if result.company_purged else "company still has active installations"
        self.stdout.write(self.style.SUCCESS(f"Uninstalled; {purged}."))
