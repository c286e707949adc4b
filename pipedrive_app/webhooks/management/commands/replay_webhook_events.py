"""Replay dead-lettered webhook events (one, or all of them, optionally for one company)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pipedrive_app.installations.models import Company
from pipedrive_app.webhooks.services import inbox_event_replay, inbox_events_replay_dead


class Command(BaseCommand):
    help = "Give dead webhook events a new set of attempts. Processed events are never run again."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--event", type=int, help="inbox event id")
        target.add_argument("--all-dead", action="store_true", help="every dead event")
        parser.add_argument("--company", type=int, help="with --all-dead: only this Pipedrive company id")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["event"] is not None:
            if not inbox_event_replay(inbox_event_id=options["event"]):
                raise CommandError(f"event {options['event']} is not dead (or does not exist)")
            self.stdout.write(f"event {options['event']} queued again")
            return
        company_pk = None
        if options["company"] is not None:
            company_pk = (
                Company.objects.filter(pipedrive_company_id=options["company"]).values_list("pk", flat=True).first()
            )
            if company_pk is None:
                raise CommandError(f"no company with Pipedrive id {options['company']}")
        count = inbox_events_replay_dead(company_id=company_pk)
        self.stdout.write(f"{count} dead event(s) queued again")
