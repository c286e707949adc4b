"""Time the dashboard's list and overview pages in-process (Django test client, real database).

Prints, per page, the median and 95th percentile server time and the number of SQL queries. Run
it after ``seed_dashboard`` (``make bench-dashboard`` does both). Uses a throw-away operator
``bench-operator@dashboard.invalid`` with TOTP, signed in as if it had passed MFA.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pipedrive_app.dashboard.inbox_counts import inbox_hours_count
from pipedrive_app.installations.models import Company
from pipedrive_app.webhooks.models import InboxEvent

BENCH_EMAIL = "bench-operator@dashboard.invalid"


class Command(BaseCommand):
    help = "Measure server time (median/p95) and query counts of the dashboard's list and overview pages."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--runs", type=int, default=15)
        parser.add_argument("--save", help="write the figures to this JSON file")
        parser.add_argument("--compare", help="a JSON file from an earlier --save: compare query counts with it")

    def handle(self, *args: Any, **options: Any) -> None:
        if not Company.objects.exists():
            raise CommandError("No company in the database: run `manage.py seed_dashboard --companies 10000` first.")
        if "testserver" not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
            settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        client = self._signed_in_client()
        middle = Company.objects.order_by("name", "pk").values_list("name", flat=True)[Company.objects.count() // 2]
        pages = Company.objects.count() // settings.DASHBOARD_PAGE_SIZE
        urls = [
            ("overview", "/dashboard/"),
            ("companies p1", "/dashboard/companies/"),
            ("companies middle page", f"/dashboard/companies/?page={max(pages // 2, 1)}"),
            ("companies search", f"/dashboard/companies/?q={middle.split()[0]}"),
            ("companies unhealthy", "/dashboard/companies/?health=unhealthy"),
            ("companies needs re-auth", "/dashboard/companies/?status=needs_reauth"),
            ("inbox p1", "/dashboard/events/"),
            ("inbox dead", "/dashboard/events/?status=dead"),
            ("inbox entity+action", "/dashboard/events/?entity=person&action=change"),
            ("audit log", "/dashboard/audit/"),
        ]
        vendor = connection.vendor
        # What the beat task `count_inbox_hours` does every 5 minutes on a live deployment.
        counted = inbox_hours_count(start=timezone.now() - timedelta(days=8))
        self.stdout.write(
            f"database: {vendor} · {Company.objects.count()} companies · {InboxEvent.objects.count()} inbox events · "
            f"{options['runs']} runs per page (1 warm-up) · {counted} inbox hours counted first, as beat does"
        )
        results: dict[str, dict[str, float]] = {}
        self.stdout.write(f"{'page':<26}{'median ms':>10}{'p95 ms':>10}{'queries':>9}")
        for label, url in urls:
            client.get(url)  # warm-up
            timings, queries = [], 0
            for _ in range(options["runs"]):
                with CaptureQueriesContext(connection) as captured:
                    started = time.perf_counter()
                    response = client.get(url)
                    timings.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise CommandError(f"{url} answered {response.status_code}")
                queries = len(captured)
            timings.sort()
            p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
            self.stdout.write(f"{label:<26}{statistics.median(timings):>10.1f}{p95:>10.1f}{queries:>9}")
            results[label] = {
                "median_ms": statistics.median(timings),
                "p95_ms": p95,
                "queries": queries,
            }
        inbox = InboxEvent.objects.count()
        if options["save"]:
            Path(options["save"]).write_text(json.dumps({"inbox_events": inbox, "pages": results}, indent=2))
        if options["compare"]:
            self._compare(Path(options["compare"]), inbox=inbox, results=results)

    def _compare(self, path: Path, *, inbox: int, results: dict[str, dict[str, float]]) -> None:
        earlier = json.loads(path.read_text())
        self.stdout.write(f"query counts: {earlier['inbox_events']} inbox events against {inbox}")
        differ = []
        for label, figures in results.items():
            before = earlier["pages"].get(label, {}).get("queries")
            if before != figures["queries"]:
                differ.append(f"{label}: {before} then {figures['queries']}")
        slow = [label for label, figures in results.items() if figures["p95_ms"] >= 200]
        self.stdout.write("  equal on every page" if not differ else "  DIFFER: " + "; ".join(differ))
        self.stdout.write("p95 under 200 ms on every page" if not slow else "p95 at or over 200 ms: " + ", ".join(slow))

    def _signed_in_client(self) -> Client:
        User = get_user_model()
        user, _ = User.objects.get_or_create(
            username=BENCH_EMAIL, defaults={"email": BENCH_EMAIL, "is_staff": True, "is_active": True}
        )
        if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            TOTP.activate(user, generate_totp_secret())
        client = Client()
        client.force_login(user)
        session = client.session
        session[AUTHENTICATION_METHODS_SESSION_KEY] = [{"method": "mfa", "type": "totp", "at": time.time()}]
        session.save()
        return client
