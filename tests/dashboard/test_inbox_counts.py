"""Events per hour at a cost that does not grow with the inbox (dashboard/inbox_counts.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext

from pipedrive_app.dashboard.inbox_counts import (
    inbox_hours_count,
    open_events_per_hour,
    received_per_hour,
    settled_until,
)
from pipedrive_app.dashboard.models import InboxHourlyCount
from pipedrive_app.dashboard.selectors import CappedPaginator, event_list_page, overview_stats
from pipedrive_app.dashboard.tasks import count_inbox_hours
from pipedrive_app.installations.models import Company
from pipedrive_app.webhooks.models import InboxEvent

from .conftest import make_event

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
TEN = datetime(2026, 12, 1, 10, tzinfo=UTC)
NINE = TEN - timedelta(hours=1)
EIGHT = TEN - timedelta(hours=2)


@pytest.fixture
def company(make_company: Callable[..., Company]) -> Company:
    return make_company()


def _events(company: Company, at: datetime, n: int, status: str = InboxEvent.Status.PROCESSED) -> None:
    for i in range(n):
        make_event(company=company, status=status, received_at=at + timedelta(minutes=i))


def test_closed_hours_are_counted_once_and_the_open_hour_live(company: Company) -> None:
    _events(company, EIGHT, 3)
    _events(company, NINE, 2)
    _events(company, TEN, 4)

    assert inbox_hours_count(start=EIGHT, now=NOW) == 2  # 08:00 and 09:00 are over; 10:00 is not
    assert dict(InboxHourlyCount.objects.values_list("hour", "received")) == {EIGHT: 3, NINE: 2}
    assert inbox_hours_count(start=EIGHT, now=NOW) == 0  # nothing counted twice

    _events(company, TEN + timedelta(minutes=10), 1)  # the open hour moves on
    assert received_per_hour(start=EIGHT, now=NOW) == {EIGHT: 3, NINE: 2, TEN: 5}


def test_an_hour_is_counted_only_once_it_has_settled(company: Company) -> None:
    _events(company, NINE, 2)
    just_after = TEN + timedelta(seconds=30)  # a delivery stamped 09:59:59 may still be committing
    assert settled_until(now=just_after) == NINE
    assert inbox_hours_count(start=NINE, now=just_after) == 0
    assert received_per_hour(start=NINE, now=just_after) == {NINE: 2}


def test_counts_outlive_the_purge_of_processed_events(company: Company) -> None:
    _events(company, EIGHT, 3)
    inbox_hours_count(start=EIGHT, now=NOW)
    InboxEvent.objects.filter(received_at__lt=NINE).delete()
    assert received_per_hour(start=EIGHT, now=NOW)[EIGHT] == 3


def test_hours_not_counted_yet_are_counted_live_without_writing(company: Company) -> None:
    _events(company, EIGHT, 3)
    _events(company, NINE, 1)
    assert received_per_hour(start=EIGHT, now=NOW) == {EIGHT: 3, NINE: 1}
    assert not InboxHourlyCount.objects.exists()


def test_pending_and_dead_per_hour(company: Company) -> None:
    _events(company, EIGHT, 2, InboxEvent.Status.DEAD)
    _events(company, NINE, 1, InboxEvent.Status.PENDING)
    _events(company, NINE, 5)
    assert open_events_per_hour(start=EIGHT) == {(EIGHT, "dead"): 2, (NINE, "pending"): 1}


def test_overview_figures_add_up(company: Company) -> None:
    _events(company, EIGHT, 4)
    _events(company, EIGHT + timedelta(minutes=30), 2, InboxEvent.Status.DEAD)
    _events(company, TEN, 1, InboxEvent.Status.PENDING)
    _events(company, NOW - timedelta(days=2), 7)  # outside the last 24 hours
    inbox_hours_count(start=NOW - timedelta(days=3), now=NOW)
    events = overview_stats(now=NOW)["events"]
    assert events == {"received": 7, "processed": 4, "dead": 2, "pending": 1}


def test_the_beat_task_counts_settled_hours(company: Company) -> None:
    _events(company, datetime.now(UTC) - timedelta(hours=3), 2)
    assert count_inbox_hours() >= 190  # eight days of hours, each counted once
    assert InboxHourlyCount.objects.aggregate(total=Sum("received"))["total"] == 2
    assert count_inbox_hours() == 0


def test_overview_queries_do_not_depend_on_what_is_counted(company: Company, operator_client: Client) -> None:
    _events(company, datetime.now(UTC) - timedelta(hours=5), 3)
    with CaptureQueriesContext(connection) as before:
        assert operator_client.get("/dashboard/").status_code == 200
    count_inbox_hours()
    with CaptureQueriesContext(connection) as after:
        assert operator_client.get("/dashboard/").status_code == 200
    assert len(before) == len(after)


def test_the_inbox_counts_no_further_than_its_cap(company: Company, monkeypatch: pytest.MonkeyPatch, settings) -> None:
    monkeypatch.setattr(CappedPaginator, "cap", 3)
    settings.DASHBOARD_PAGE_SIZE = 2
    _events(company, NINE, 5)
    page = event_list_page()
    paginator = page.paginator
    assert isinstance(paginator, CappedPaginator) and paginator.is_capped
    assert paginator.count == 4  # cap + 1: "more than 3"
    newest = list(InboxEvent.objects.order_by("-pk").values_list("pk", flat=True)[:2])
    assert [event.pk for event in page.object_list] == newest  # the rows shown are exact
    assert page.has_next()


def test_the_inbox_page_says_more_than_the_cap(
    company: Company, operator_client: Client, monkeypatch: pytest.MonkeyPatch, settings
) -> None:
    monkeypatch.setattr(CappedPaginator, "cap", 3)
    settings.DASHBOARD_PAGE_SIZE = 2
    _events(company, NINE, 5)
    html = operator_client.get("/dashboard/events/").content.decode()
    assert "more than 3 rows" in html
