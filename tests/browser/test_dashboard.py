"""The operators' dashboard in headless Chromium: sign in with e-mail, password and a TOTP code,
then the overview, a company, the inbox, an event and its replay. Screenshots of each step go to
test-artifacts/screenshots/dashboard-*.png."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from pipedrive_app.installations.models import Company, CompanySettings, Installation, LifecycleEvent
from pipedrive_app.webhooks.models import CompanyWebhookState, InboxEvent, Subscription
from tests.browser.conftest import save_screenshot
from tests.dashboard.conftest import PASSWORD, make_event, make_user, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _world() -> tuple[Any, Company, InboxEvent]:
    operator, secret = make_user(email="ops@example.test", staff=True, with_totp=True)
    operator.totp_secret = secret
    now = timezone.now()
    acme = None
    for n, name in enumerate(("Acme Rockets", "Globex", "Initech", "Umbrella")):
        company = Company.objects.create(
            pipedrive_company_id=8100 + n,
            name=name,
            domain=name.lower().split()[0],
            api_domain=f"https://{name.lower().split()[0]}.pipedrive.invalid",
            installed_at=now - timedelta(days=20 - n),
        )
        CompanySettings.objects.create(company=company, tracked_entities=["deal", "person"])
        for i, status in enumerate(("active", "needs_reauth" if n == 1 else "active")):
            Installation.objects.create(
                company=company,
                pipedrive_user_id=100 + i,
                name=f"User {i + 1}",
                is_admin=i == 0,
                scopes=["base", "deals:full", "admin"],
                status=status,
                access_token_expires_at=now + timedelta(minutes=40),
                last_refresh_at=now - timedelta(minutes=20),
            )
            LifecycleEvent.objects.create(
                kind="installed",
                source="oauth",
                pipedrive_company_id=company.pipedrive_company_id,
                pipedrive_user_id=100 + i,
                occurred_at=now - timedelta(days=20 - n * 3),
            )
        CompanyWebhookState.objects.create(
            company=company,
            url_key=f"k{n}",
            http_auth_user="u",
            http_auth_password="p",
            status="available",
            last_reconciled_at=now,
        )
        for obj in ("deal", "person"):
            failing = n == 2 and obj == "person"
            Subscription.objects.create(
                company=company,
                event_object=obj,
                version="2.0",
                name=f"{obj} events",
                subscription_url="https://app.invalid/webhooks/pipedrive/k/",
                pipedrive_webhook_id=n * 10 + len(obj),
                last_http_status=410 if failing else 200,
                last_delivery_time=now - timedelta(minutes=5),
                remove_reason="Endpoint answered 410" if failing else "",
                is_active=not failing,
            )
        for h in range(0, 160, 7):
            make_event(company=company, entity="deal", action="change", received_at=now - timedelta(hours=h, minutes=n))
        if name == "Acme Rockets":
            acme = company
    LifecycleEvent.objects.create(
        kind="user_uninstalled", source="pipedrive", pipedrive_company_id=9999, occurred_at=now - timedelta(days=2)
    )
    LifecycleEvent.objects.create(
        kind="company_uninstalled", source="pipedrive", pipedrive_company_id=9999, occurred_at=now - timedelta(days=2)
    )
    assert acme is not None
    dead = make_event(company=acme, status=InboxEvent.Status.DEAD, entity="person", action="change")
    return operator, acme, dead


def test_operator_signs_in_with_totp_and_replays_an_event(page: Any, live_server: Any) -> None:
    operator, acme, dead = _world()
    base = live_server.url

    page.goto(f"{base}/dashboard/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=login]", operator.email)
    page.fill("input[name=password]", PASSWORD)
    save_screenshot(page, "dashboard-1-sign-in")
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url("**/accounts/2fa/authenticate/")
    page.fill("input[name=code]", totp_code(operator.totp_secret))
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(f"{base}/dashboard/")

    assert page.locator("h1").inner_text() == "Overview"
    assert page.locator("svg.chart").count() == 2
    save_screenshot(page, "dashboard-2-overview")

    page.click("nav >> text=Companies")
    page.fill("input[name=q]", "acme")
    page.locator("form.filters button").click()
    page.click("text=Acme Rockets")
    page.wait_for_url(f"{base}/dashboard/companies/{acme.pk}/")
    assert "User 1" in page.content() and "Replay dead events (1)" in page.content()
    save_screenshot(page, "dashboard-3-company")

    page.click("nav >> text=Event inbox")
    page.select_option("select[name=status]", "dead")
    page.locator("form.filters button").click()
    assert page.locator("table.grid tbody tr").count() == 1
    save_screenshot(page, "dashboard-4-inbox")

    page.click(f"table.grid tbody a[href='/dashboard/events/{dead.pk}/']")
    page.wait_for_url(f"{base}/dashboard/events/{dead.pk}/")
    payload = page.locator("pre.payload").inner_text()
    assert "masked" in payload and "jane@example.test" not in payload and "Jane" not in payload
    save_screenshot(page, "dashboard-5-event")

    page.click("text=Replay this event")
    page.wait_for_url(f"{base}/dashboard/events/{dead.pk}/")
    assert "Replay: done" in page.locator(".messages").inner_text()
    dead.refresh_from_db()
    # Replayed: a fresh set of attempts, the first of which processed it.
    assert (dead.status, dead.attempts) == (InboxEvent.Status.PROCESSED, 1)
    save_screenshot(page, "dashboard-6-event-replayed")

    page.click("nav >> text=Audit log")
    assert "Replay event" in page.locator("table.grid").inner_text()
    save_screenshot(page, "dashboard-7-audit")
    assert page.blocked_requests == []
