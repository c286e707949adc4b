"""Fill an empty sandbox with demo data: two companies, admin and regular users, a pipeline, custom
fields, organizations, persons and deals. Records go through ``services`` like any other change, so
the change log shows them (no webhook exists yet to deliver them to)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVar

from django.db import transaction

from . import services
from .models import (
    AccessToken,
    AuthorizationCode,
    ChangeEvent,
    Deal,
    FieldDefinition,
    Note,
    Organization,
    Person,
    Pipeline,
    RefreshToken,
    SandboxCompany,
    SandboxUser,
    Stage,
    Webhook,
    WebhookDelivery,
)
from .routers import SANDBOX_DB

T = TypeVar("T")


@dataclass(frozen=True)
class CompanySeed:
    name: str
    domain: str
    burst_limit: int
    daily_budget: int
    users: tuple[tuple[str, str, bool, str, str], ...]  # name, email, is_admin, locale, timezone


COMPANIES = (
    CompanySeed(
        "Acme Sales",
        "acme",
        80,
        30_000,
        (
            ("Ann Admin", "ann@acme.example", True, "en_US", "Europe/Tallinn"),
            ("Rob Regular", "rob@acme.example", False, "en_GB", "Europe/London"),
        ),
    ),
    CompanySeed(
        "Globex Trading",
        "globex",
        40,
        20_000,
        (
            ("Gina Globex", "gina@globex.example", True, "de_DE", "Europe/Berlin"),
            ("Nick Newhire", "nick@globex.example", False, "en_US", "America/New_York"),
        ),
    ),
)
STAGES = (("Qualified", 10), ("Contact made", 30), ("Proposal made", 60), ("Negotiations started", 80))
ORGANIZATIONS = ("Northwind", "Initech", "Umbrella", "Stark Industries", "Wayne Enterprises")
FIRST_NAMES = ("Mia", "Liam", "Olivia", "Noah", "Emma", "Lucas", "Sofia", "Mateo", "Aino", "Kaspar")
LAST_NAMES = ("Tamm", "Smith", "Müller", "Rossi", "Novak", "Kask", "García", "Berg")
DEAL_WORDS = ("Renewal", "Pilot", "Expansion", "Onboarding", "Licences", "Support plan", "Migration")
PERSONS_PER_COMPANY = 8
DEALS_PER_COMPANY = 12


def field_key(domain: str, name: str) -> str:
    """A 40-character hash key, as Pipedrive gives custom fields."""
    return hashlib.sha1(f"{domain}:{name}".encode()).hexdigest()  # noqa: S324 - an identifier, not security


def sandbox_is_empty() -> bool:
    return not SandboxCompany.objects.exists()


def sandbox_wipe() -> None:
    """Delete every sandbox row (children first)."""
    with transaction.atomic(using=SANDBOX_DB):
        for model in (
            WebhookDelivery,
            ChangeEvent,
            Webhook,
            AccessToken,
            RefreshToken,
            AuthorizationCode,
            Note,
            Deal,
            Person,
            Organization,
            Stage,
            Pipeline,
            FieldDefinition,
            SandboxUser,
            SandboxCompany,
        ):
            model.objects.all().delete()


def _steps(progress: Callable[[Iterable[T]], Iterable[T]], items: Iterable[T]) -> Iterable[T]:
    return progress(items)


def sandbox_seed(*, progress: Callable[[Iterable[CompanySeed]], Iterable[CompanySeed]] = iter) -> list[SandboxCompany]:
    """Seed the demo companies; call only on an empty sandbox (``sandbox_is_empty``)."""
    rng = random.Random(20260818)
    companies: list[SandboxCompany] = []
    for seed in _steps(progress, COMPANIES):
        companies.append(_seed_company(seed, rng))
    return companies


def _seed_company(seed: CompanySeed, rng: random.Random) -> SandboxCompany:
    with transaction.atomic(using=SANDBOX_DB):
        company = SandboxCompany.objects.create(
            name=seed.name, domain=seed.domain, burst_limit=seed.burst_limit, daily_budget=seed.daily_budget
        )
        users = [
            SandboxUser.objects.create(
                company=company, name=name, email=email, is_admin=is_admin, locale=locale, timezone_name=tz
            )
            for name, email, is_admin, locale, tz in seed.users
        ]
        seeded = ChangeEvent.Source.SEED
        pipeline = services.pipeline_create(company=company, actor=users[0], name="Sales pipeline", source=seeded)
        stages = [
            services.stage_create(
                pipeline=pipeline, actor=users[0], name=name, deal_probability=probability, source=seeded
            )
            for name, probability in STAGES
        ]
        source_options = [{"id": i, "label": label} for i, label in enumerate(("Web", "Referral", "Event"), start=1)]
        FieldDefinition.objects.create(
            company=company,
            entity=FieldDefinition.Entity.DEAL,
            key=field_key(seed.domain, "deal:lead_source"),
            name="Lead source",
            field_type="enum",
            options=source_options,
        )
        FieldDefinition.objects.create(
            company=company,
            entity=FieldDefinition.Entity.DEAL,
            key=field_key(seed.domain, "deal:contract_months"),
            name="Contract length (months)",
            field_type="double",  # Pipedrive's numeric custom field
        )
        FieldDefinition.objects.create(
            company=company,
            entity=FieldDefinition.Entity.PERSON,
            key=field_key(seed.domain, "person:tier"),
            name="Customer tier",
            field_type="enum",
            options=[{"id": 1, "label": "Gold"}, {"id": 2, "label": "Silver"}],
        )
    admin = users[0]
    source = ChangeEvent.Source.SEED
    orgs = [
        services.organization_create(
            company=company, actor=admin, name=name, address=f"{rng.randint(1, 99)} Main St", source=source
        )
        for name in rng.sample(ORGANIZATIONS, 3)
    ]
    persons = []
    for index in range(PERSONS_PER_COMPANY):
        name = f"{FIRST_NAMES[(index + len(seed.domain)) % len(FIRST_NAMES)]} {rng.choice(LAST_NAMES)}"
        persons.append(
            services.person_create(
                company=company,
                actor=rng.choice(users),
                data={
                    "name": name,
                    "emails": [f"{name.split()[0].lower()}{index}@{seed.domain}-customer.example"],
                    "phones": [f"+372 5{rng.randint(100000, 999999)}"],
                    "org_id": rng.choice(orgs).pk,
                    "job_title": rng.choice(("CEO", "Buyer", "CTO", "Office manager")),
                    "custom_fields": {field_key(seed.domain, "person:tier"): rng.choice((1, 2))},
                },
                source=source,
            )
        )
    for index in range(DEALS_PER_COMPANY):
        person = rng.choice(persons)
        services.deal_create(
            company=company,
            actor=rng.choice(users),
            data={
                "title": f"{person.org.name if person.org else person.name} {rng.choice(DEAL_WORDS)} #{index + 1}",
                "value": rng.randint(5, 120) * 100,
                "currency": "EUR",
                "person_id": person.pk,
                "org_id": person.org_id,
                "stage_id": rng.choice(stages).pk,
                "status": rng.choice(("open", "open", "open", "won", "lost")),
                "expected_close_date": (date(2026, 9, 1) + timedelta(days=rng.randint(0, 120))).isoformat(),
                "custom_fields": {
                    field_key(seed.domain, "deal:lead_source"): rng.choice((1, 2, 3)),
                    field_key(seed.domain, "deal:contract_months"): rng.choice((6, 12, 24)),
                },
            },
            source=source,
        )
    return company
