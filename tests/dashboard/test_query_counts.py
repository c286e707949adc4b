"""Each list page runs the same number of queries for 5 rows as for 50."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from pipedrive_app.dashboard.services import audit_entry_create
from pipedrive_app.installations.models import Company, Installation, LifecycleEvent
from pipedrive_app.webhooks.models import InboxEvent

from .conftest import make_event

pytestmark = pytest.mark.django_db


def queries_for(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def grow(make_company: Callable[..., Company], operator: object, rows: int) -> None:
    for n in range(rows):
        company = make_company(
            installations=(Installation.Status.ACTIVE, Installation.Status.NEEDS_REAUTH),
            failing_subscription=n % 3 == 0,
        )
        make_event(company=company, status=InboxEvent.Status.DEAD if n % 2 else InboxEvent.Status.PROCESSED)
        LifecycleEvent.objects.create(
            kind="installed", source="oauth", pipedrive_company_id=company.pipedrive_company_id
        )
        audit_entry_create(
            operator=operator,
            action="refresh_tokens",
            target_type="company",
            target_id=str(n),
            target_label="x",
            result="accepted",
        )


@pytest.mark.parametrize(
    "url",
    [
        "/dashboard/",
        "/dashboard/companies/",
        "/dashboard/companies/?q=Company&health=healthy",
        "/dashboard/companies/?status=needs_reauth",
        "/dashboard/events/",
        "/dashboard/events/?status=dead&entity=person",
        "/dashboard/audit/",
    ],
)
def test_constant_queries(operator_client: Client, operator, make_company, settings, url: str) -> None:
    settings.DASHBOARD_PAGE_SIZE = 100  # every row on one page: the row count really changes
    grow(make_company, operator, 5)
    few = queries_for(operator_client, url)
    grow(make_company, operator, 45)
    many = queries_for(operator_client, url)
    assert few == many, f"{url}: {few} queries for 5 rows, {many} for 50"


def test_company_page_queries_do_not_grow_with_its_rows(operator_client: Client, operator, make_company) -> None:
    company = make_company(installations=(Installation.Status.ACTIVE,) * 2)
    for _ in range(3):
        make_event(company=company)
    few = queries_for(operator_client, f"/dashboard/companies/{company.pk}/")
    for n in range(30):
        Installation.objects.create(company=company, pipedrive_user_id=9000 + n, status="active")
        make_event(company=company, status=InboxEvent.Status.DEAD)
    many = queries_for(operator_client, f"/dashboard/companies/{company.pk}/")
    assert few == many
