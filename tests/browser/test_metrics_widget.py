"""The overview's live widget in headless Chromium: history lag and acknowledgement latency beside the
counts, with their sparklines. The widget's screenshot is saved in the test's tmp dir (and, like the
other dashboard screenshots, as test-artifacts/screenshots/dashboard-live-widget.png)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone

from pipedrive_app.installations.models import Company
from pipedrive_app.metrics import instruments
from pipedrive_app.webhooks.models import InboxEvent
from tests.browser.conftest import save_screenshot
from tests.dashboard.conftest import PASSWORD, make_event, make_user, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_overview_shows_live_lag_and_acknowledgement(page: Any, live_server: Any, tmp_path, settings) -> None:
    settings.METRICS_ENABLED = True
    cache.clear()
    operator, secret = make_user(email="ops-live@example.test", staff=True, with_totp=True)
    assert secret
    company = Company.objects.create(pipedrive_company_id=8300, name="Live Co", api_domain="https://x.invalid")
    make_event(company=company, status=InboxEvent.Status.PENDING, received_at=timezone.now() - timedelta(minutes=4))
    # What the receiver and the workers would have recorded in this (single) process.
    for seconds in (0.003, 0.004, 0.004, 0.006, 0.02):
        instruments.WEBHOOK_ACK_SECONDS.labels(outcome="acknowledged").observe(seconds)
    for seconds in (0.2, 0.3, 0.4, 0.6, 3.0):
        instruments.HISTORY_LAG_SECONDS.observe(seconds)

    base = live_server.url
    page.goto(f"{base}/dashboard/")
    page.fill("input[name=login]", operator.email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url("**/accounts/2fa/authenticate/")
    page.fill("input[name=code]", totp_code(secret))
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(f"{base}/dashboard/")

    widget = page.locator("#figures")
    assert widget.is_visible()
    lag, ack = page.locator("[data-live=lag]"), page.locator("[data-live=ack]")
    assert "History lag" in lag.inner_text() and "Acknowledgement" in ack.inner_text()
    assert page.locator("[data-oldest-pending]").inner_text() == "4 min"
    assert "ms" in ack.locator(".big").inner_text()  # milliseconds: well inside Pipedrive's 10 s
    # A picture of each: how the last minutes' observations spread over the histogram's buckets.
    assert page.locator("#figures svg.dist").count() == 2
    assert page.locator("[data-live=lag] svg.dist rect.bar.bad").count() >= 1  # the 3 s one
    # Beside the counts: in the overview's row of figures, with the events counted.
    assert "Events, last 24 h" in widget.inner_text()

    shot = tmp_path / "dashboard-live-widget.png"
    widget.screenshot(path=str(shot))
    assert shot.stat().st_size > 2000
    shutil.copy(shot, save_screenshot(page, "dashboard-live-overview").with_name("dashboard-live-widget.png"))
    assert page.blocked_requests == []
    cache.clear()
