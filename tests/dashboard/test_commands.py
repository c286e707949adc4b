from __future__ import annotations

import pytest
from django.core.management import call_command

from pipedrive_app.installations.models import Company, Installation
from pipedrive_app.webhooks.models import CompanyWebhookState, InboxEvent, Subscription

pytestmark = pytest.mark.django_db


def test_seed_then_bench(capsys: pytest.CaptureFixture[str], settings) -> None:
    settings.DASHBOARD_PAGE_SIZE = 10
    call_command("seed_dashboard", "--companies", "60", "--events-per-company", "3", verbosity=0)
    assert Company.objects.count() == 60
    assert Installation.objects.count() >= 60
    assert CompanyWebhookState.objects.count() == 60 and Subscription.objects.count() == 120
    assert InboxEvent.objects.count() == 180
    call_command("seed_dashboard", "--companies", "5", "--events-per-company", "0", verbosity=0)
    assert Company.objects.count() == 65  # appended after the existing seed ids
    call_command("seed_dashboard", "--companies", "10", "--reset", verbosity=0)
    assert Company.objects.count() == 10
    capsys.readouterr()
    call_command("bench_dashboard", "--runs", "2")
    out = capsys.readouterr().out
    assert "median ms" in out and "companies p1" in out and "inbox p1" in out and "overview" in out
