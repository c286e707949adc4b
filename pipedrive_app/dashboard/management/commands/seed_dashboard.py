"""Fill the database with synthetic companies, installations, webhooks and inbox events.

For load-testing the dashboard (``make bench-dashboard``) and for looking at it with data. Seeded
companies use Pipedrive ids from SEED_ID_BASE on; ``--reset`` deletes them (and only them) first.
No real token is stored: seeded installations have none.
"""

from __future__ import annotations

import json
import random
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone
from tqdm import tqdm

from pipedrive_app.installations.models import Company, CompanySettings, Installation, LifecycleEvent
from pipedrive_app.webhooks.models import CompanyWebhookState, InboxEvent, Subscription

SEED_ID_BASE = 900_000_000
BATCH = 500
WORDS = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Vandelay",
    "Pied",
    "Piper",
    "Aperture",
    "Nimbus",
    "Oscorp",
    "Gringotts",
    "Duff",
    "Monarch",
)


class Command(BaseCommand):
    help = "Seed synthetic companies with installations, webhook subscriptions and inbox events (bulk_create)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--companies", type=int, default=1000)
        parser.add_argument("--events-per-company", type=int, default=5)
        parser.add_argument("--reset", action="store_true", help="delete previously seeded companies first")
        parser.add_argument("--seed", type=int, default=7, help="random seed (same seed, same data)")
        parser.add_argument("--force", action="store_true", help="seed even though DEBUG is off")

    def handle(self, *args: Any, **options: Any) -> None:
        if not (settings.DEBUG or getattr(settings, "TESTING", False) or options["force"]):
            raise CommandError("Refusing to seed fake companies with DEBUG off (a production database?); use --force.")
        rng = random.Random(options["seed"])
        if options["reset"]:
            self._reset()
        start = (
            Company.objects.filter(pipedrive_company_id__gte=SEED_ID_BASE)
            .order_by("-pipedrive_company_id")
            .values_list("pipedrive_company_id", flat=True)
            .first()
            or SEED_ID_BASE - 1
        ) + 1
        total = options["companies"]
        now = timezone.now()
        with tqdm(total=total, unit="company", desc="seeding", disable=options["verbosity"] == 0) as bar:
            for offset in range(0, total, BATCH):
                count = min(BATCH, total - offset)
                self._seed_batch(
                    rng=rng,
                    first_id=start + offset,
                    count=count,
                    now=now,
                    events_per_company=options["events_per_company"],
                )
                bar.update(count)
        # Fresh planner statistics and visibility map, as autovacuum keeps them on a live database
        # (PostgreSQL otherwise guesses badly and cannot answer counts from an index alone).
        with connection.cursor() as cursor:
            vacuum = connection.vendor == "postgresql" and not connection.in_atomic_block  # (not inside a test)
            cursor.execute("VACUUM ANALYZE" if vacuum else "ANALYZE")
        self.stdout.write(
            self.style.SUCCESS(
                f"seeded {total} companies ({Company.objects.count()} companies, {Installation.objects.count()} "
                f"installations, {InboxEvent.objects.count()} inbox events in the database)"
            )
        )

    def _reset(self) -> None:
        seeded = Company.objects.filter(pipedrive_company_id__gte=SEED_ID_BASE)
        deleted = 0
        with tqdm(total=seeded.count(), unit="company", desc="deleting seeded") as bar:
            while keys := list(seeded.values_list("pk", flat=True)[:BATCH]):
                with transaction.atomic():
                    Company.objects.filter(pk__in=keys).delete()
                deleted += len(keys)
                bar.update(len(keys))
        LifecycleEvent.objects.filter(pipedrive_company_id__gte=SEED_ID_BASE).delete()

    @transaction.atomic
    def _seed_batch(self, *, rng: random.Random, first_id: int, count: int, now: Any, events_per_company: int) -> None:
        companies = []
        for i in range(count):
            pid = first_id + i
            name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {pid - SEED_ID_BASE}"
            domain = name.lower().replace(" ", "-")
            companies.append(
                Company(
                    pipedrive_company_id=pid,
                    name=name,
                    domain=domain,
                    api_domain=f"https://{domain}.pipedrive.invalid",
                    installed_at=now - timedelta(days=rng.randint(0, 400)),
                )
            )
        Company.objects.bulk_create(companies, batch_size=BATCH)
        companies = list(
            Company.objects.filter(pipedrive_company_id__gte=first_id, pipedrive_company_id__lt=first_id + count)
        )
        installations, settings_rows, states, subscriptions, events, lifecycle = [], [], [], [], [], []
        for company in companies:
            settings_rows.append(CompanySettings(company=company, tracked_entities=["deal", "person"]))
            for n in range(rng.choice((1, 1, 1, 2, 3))):
                status = rng.choices(
                    [Installation.Status.ACTIVE, Installation.Status.NEEDS_REAUTH, Installation.Status.UNINSTALLED],
                    weights=[90, 6, 4],
                )[0]
                installations.append(
                    Installation(
                        company=company,
                        pipedrive_user_id=1000 + n,
                        name=f"User {n + 1}",
                        email="",
                        is_admin=n == 0,
                        scopes=["base", "deals:full", "contacts:read", "admin"] if n == 0 else ["base", "deals:read"],
                        status=status,
                        access_token_expires_at=now + timedelta(minutes=rng.randint(-120, 60)),
                        last_refresh_at=now - timedelta(hours=rng.randint(0, 72)),
                        installed_at=company.installed_at,
                    )
                )
                lifecycle.append(
                    LifecycleEvent(
                        kind=LifecycleEvent.Kind.INSTALLED,
                        source=LifecycleEvent.Source.OAUTH,
                        pipedrive_company_id=company.pipedrive_company_id,
                        pipedrive_user_id=1000 + n,
                        occurred_at=now - timedelta(days=rng.randint(0, 29), minutes=rng.randint(0, 1440)),
                    )
                )
            roll = rng.random()
            state_status = (
                CompanyWebhookState.Status.UNAVAILABLE
                if roll < 0.03
                else CompanyWebhookState.Status.PENDING
                if roll < 0.05
                else CompanyWebhookState.Status.AVAILABLE
            )
            states.append(
                CompanyWebhookState(
                    company=company,
                    url_key=secrets.token_urlsafe(24),
                    http_auth_user="seed",
                    http_auth_password="seed",
                    status=state_status,
                    last_reconciled_at=now - timedelta(hours=rng.randint(0, 24)),
                    unavailable_reason="No active admin installation with the admin scope." if roll < 0.03 else "",
                )
            )
            for obj_n, entity in enumerate(("deal", "person")):
                failing = rng.random() < 0.04
                subscriptions.append(
                    Subscription(
                        company=company,
                        event_object=entity,
                        event_action="*",
                        version="2.0",
                        name=f"seed: {entity} events",
                        subscription_url=f"https://app.invalid/webhooks/pipedrive/{company.pk}/",
                        pipedrive_webhook_id=company.pk * 10 + obj_n,
                        owner_user_id=1000,
                        is_active=not failing,
                        last_http_status=(410 if failing else 200),
                        last_delivery_time=now - timedelta(minutes=rng.randint(0, 600)),
                        remove_reason="Subscription URL returned 410" if failing else "",
                    )
                )
            for n in range(events_per_company):
                entity = rng.choice(("deal", "person"))
                action = rng.choice(("create", "change", "change", "delete"))
                received = now - timedelta(minutes=rng.randint(0, 7 * 24 * 60))
                event_status: str = rng.choices(
                    [InboxEvent.Status.PROCESSED, InboxEvent.Status.PENDING, InboxEvent.Status.DEAD], weights=[92, 3, 5]
                )[0]
                record_id = rng.randint(1, 50_000)
                body = {
                    "meta": {
                        "id": f"seed-{company.pk}-{n}",
                        "entity": entity,
                        "action": action,
                        "entity_id": str(record_id),
                        "company_id": str(company.pipedrive_company_id),
                        "version": "2.0",
                        "timestamp": received.isoformat(),
                    },
                    "data": {"id": record_id, "name": "Jane Example", "emails": [{"value": "jane@example.invalid"}]}
                    if entity == "person"
                    else {"id": record_id, "title": f"Deal {record_id}", "value": rng.randint(1, 9000)},
                    "previous": None,
                }
                events.append(
                    InboxEvent(
                        company=company,
                        dedup_key=f"seed-{company.pk}-{n}",
                        version="2.0",
                        entity=entity,
                        action=action,
                        entity_id=record_id,
                        occurred_at=received,
                        body=json.dumps(body),
                        status=event_status,
                        attempts=0
                        if event_status == InboxEvent.Status.PENDING
                        else (5 if event_status == InboxEvent.Status.DEAD else 1),
                        last_error="TimeoutError: seed" if event_status == InboxEvent.Status.DEAD else "",
                        received_at=received,
                        next_attempt_at=received,
                        processed_at=received if event_status == InboxEvent.Status.PROCESSED else None,
                    )
                )
            if rng.random() < 0.02:
                lifecycle.append(
                    LifecycleEvent(
                        kind=LifecycleEvent.Kind.USER_UNINSTALLED,
                        source=LifecycleEvent.Source.PIPEDRIVE,
                        pipedrive_company_id=company.pipedrive_company_id,
                        pipedrive_user_id=1001,
                        occurred_at=now - timedelta(days=rng.randint(0, 29)),
                    )
                )
        CompanySettings.objects.bulk_create(settings_rows, batch_size=BATCH)
        Installation.objects.bulk_create(installations, batch_size=BATCH)
        CompanyWebhookState.objects.bulk_create(states, batch_size=BATCH)
        Subscription.objects.bulk_create(subscriptions, batch_size=BATCH)
        InboxEvent.objects.bulk_create(events, batch_size=BATCH)
        LifecycleEvent.objects.bulk_create(lifecycle, batch_size=BATCH)
