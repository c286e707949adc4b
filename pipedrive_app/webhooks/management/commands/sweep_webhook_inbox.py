"""Re-queue webhook inbox events left pending (what the periodic sweeper does), once, now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from pipedrive_app.webhooks.selectors import inbox_counts
from pipedrive_app.webhooks.services import inbox_events_sweep


class Command(BaseCommand):
    help = "Queue processing again for inbox events pending longer than --older-than seconds."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=float, default=None, help="default: WEBHOOKS_SWEEP_AFTER_SECONDS")

    def handle(self, *args: Any, **options: Any) -> None:
        swept = inbox_events_sweep(older_than_seconds=options["older_than"])
        counts = inbox_counts()
        self.stdout.write(
            f"re-queued {swept}; pending {counts['pending']}, processed {counts['processed']}, dead {counts['dead']}"
        )
