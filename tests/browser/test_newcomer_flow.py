"""A newcomer's whole path, clicked through in headless Chromium: the landing page's steps, in order.

The app and the sandbox run on one live server (tests/sandbox/conftest.py ``live_sandbox``): the
sandbox's Marketplace and consent page, the app's install flow and success page, the landing page's
list of installations, a sandbox deal page framing the app's panel, and the sandbox's Uninstall
button (Pipedrive's DELETE callback back to the app). A screenshot is saved at each step in
test-artifacts/screenshots/newcomer-*.png.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from pipedrive_app.installations.models import Company, Installation
from tests.sandbox.conftest import SANDBOX_DB, _sandbox_defaults, live_sandbox, sandbox_world  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=SANDBOX_DB)]


def _wait_until(condition: Callable[[], bool], *, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _installed(user: Any) -> Installation | None:
    return (
        Installation.objects.select_related("company")
        .filter(company__pipedrive_company_id=user.company_id, pipedrive_user_id=user.pk)
        .first()
    )


def _consent_and_allow(page: Any, user: Any, screenshot: Callable[[str], Any], name: str) -> None:
    """On the sandbox's consent page: pick the company's user, then Allow."""
    from playwright.sync_api import expect

    expect(page.locator("h1")).to_contain_text("Allow Record history to access your Pipedrive account?")
    page.select_option("select#user_id", str(user.pk))
    screenshot(name)
    page.get_by_role("button", name="Allow and install").click()
    page.wait_for_url("**/oauth/installed/**")


def test_the_newcomers_path_from_landing_to_uninstall(page, live_sandbox, sandbox_world, screenshot) -> None:  # noqa: F811
    from playwright.sync_api import expect

    from sandbox.models import Deal

    base = live_sandbox.url
    user = sandbox_world.acme_admin
    company = sandbox_world.acme

    # 1. The landing page: the steps, and nobody installed yet.
    page.goto(f"{base}/")
    steps = page.locator("[data-steps] > li h2")
    expect(steps).to_have_count(5)
    assert steps.nth(0).inner_text().startswith("Install the app from the Marketplace")
    expect(page.locator("[data-no-installs]")).to_be_visible()
    screenshot("newcomer-1-landing")

    # 2. The sandbox Marketplace, from step 1's link.
    page.locator("[data-link=marketplace]").click()
    page.wait_for_url(f"{live_sandbox.oauth_url}/marketplace/")
    expect(page.locator("h1")).to_have_text("Marketplace")
    # The app is named, and a user sees one way to install it (the other is a developer option).
    expect(page.locator("[data-app-name]")).to_have_text("Record history")
    expect(page.locator("a.button:visible")).to_have_count(1)
    expect(page.locator("[data-install]")).to_have_text("Install now")
    screenshot("newcomer-2-marketplace")

    # 3. Install: the app's /oauth/install makes a state and sends the browser to the consent page.
    page.get_by_role("link", name="Install now").click()
    page.wait_for_url(f"{live_sandbox.oauth_url}/oauth/authorize?**")
    assert "state=" in page.url
    _consent_and_allow(page, user, screenshot, "newcomer-3-consent")

    # 4. The app's success page says what was installed.
    facts = page.locator("dl.facts")
    expect(page.locator("h1")).to_have_text("The app is installed")
    expect(facts).to_contain_text(company.name)
    expect(facts).to_contain_text(f"{user.name} (admin)")
    expect(facts).to_contain_text("users:read")
    screenshot("newcomer-4-installed")
    installation = _installed(user)
    assert installation is not None and installation.status == Installation.Status.ACTIVE

    # 5. Back on the landing page, the installation is listed.
    page.goto(f"{base}/")
    row = page.locator(f"[data-company='{company.pk}'] [data-installation='{user.pk}']")
    expect(row).to_contain_text(user.name)
    expect(row).to_contain_text("admin")
    expect(row).to_contain_text("Active")
    expect(page.locator("[data-no-installs]")).to_have_count(0)
    screenshot("newcomer-5-landing-installed")

    # 5b. The admin's install made the app's webhooks; the sandbox's webhooks page lists them with their
    # long URLs and still fits a 1366 px laptop screen (no sideways scrolling).
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{live_sandbox.oauth_url}/webhooks/")
    expect(page.locator("table").first).to_contain_text("/webhooks/pipedrive/")
    expect(page.locator("th", has_text="When (UTC)")).to_have_count(1)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the webhooks page is {overflow} px wider than a 1366 px window"
    screenshot("newcomer-5b-sandbox-webhooks-1366")
    page.goto(f"{base}/")

    # 6. Step 3's link opens the company in the sandbox; a deal page frames the app's panel.
    page.locator(f"[data-link=company-{company.domain}]").click()
    page.wait_for_url(f"{live_sandbox.oauth_url}/{company.domain}/**")
    deal = Deal.objects.filter(company=company, is_deleted=False).earliest("pk")
    page.get_by_role("link", name=deal.title, exact=True).first.click()
    page.wait_for_url(f"**/{company.domain}/deals/{deal.pk}/**")
    host = page.locator("[data-pd-extension-host]")
    expect(host).to_have_attribute("data-state", "ready", timeout=10_000)  # initialized within Pipedrive's 10 s
    frame = page.frame_locator('iframe[data-pd-frame="panel"]')
    expect(frame.locator("body[data-sdk=ready]")).to_have_count(1)
    expect(frame.locator("[data-fact=title]")).to_have_text(deal.title)
    expect(frame.locator("[data-fact=stage]")).to_have_text(deal.stage.name)
    screenshot("newcomer-6-deal-panel")

    # 7. Uninstall from the sandbox's installed-apps page (step 4's link on the landing page).
    page.goto(f"{base}/")
    page.locator(f"[data-link=apps-{company.domain}]").click()
    page.wait_for_url(f"{live_sandbox.oauth_url}/{company.domain}/apps/")
    expect(page.locator("table")).to_contain_text(user.name)
    screenshot("newcomer-7-installed-apps")
    page.get_by_text("Uninstall…").click()  # asks first
    expect(page.get_by_text(f"Uninstall Record history for {user.name}?")).to_be_visible()
    page.get_by_role("button", name="Uninstall", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("App uninstalled")
    screenshot("newcomer-8-uninstalled")

    # 8. The landing page shows the installation gone, and the database agrees.
    assert _wait_until(lambda: not Company.objects.filter(pipedrive_company_id=company.pk).exists())
    page.goto(f"{base}/")
    expect(page.locator("[data-no-installs]")).to_be_visible()
    expect(page.locator(f"[data-company='{company.pk}']")).to_have_count(0)
    screenshot("newcomer-9-landing-uninstalled")
    assert _installed(user) is None
    assert page.blocked_requests == []


def test_install_without_an_installation_url(page, live_sandbox, sandbox_world, screenshot) -> None:  # noqa: F811
    """The Marketplace's other button: straight to consent, no state; the callback still installs."""
    from playwright.sync_api import expect

    user = sandbox_world.globex_regular
    page.goto(f"{live_sandbox.url}/")
    page.locator("[data-link=marketplace]").click()
    page.get_by_text("Developer options").click()
    page.get_by_role("link", name="Install without an Installation URL").click()
    page.wait_for_url(f"{live_sandbox.oauth_url}/oauth/authorize?**")
    assert "state=" not in page.url
    _consent_and_allow(page, user, screenshot, "newcomer-nostate-1-consent")

    expect(page.locator("h1")).to_have_text("The app is installed")
    expect(page.locator("dl.facts")).to_contain_text(sandbox_world.globex.name)
    expect(page.locator("dl.facts")).to_contain_text(user.name)
    screenshot("newcomer-nostate-2-installed")
    installation = _installed(user)
    assert installation is not None and installation.status == Installation.Status.ACTIVE
    assert not installation.is_admin and "admin" not in installation.scopes

    page.goto(f"{live_sandbox.url}/")
    row = page.locator(f"[data-company='{sandbox_world.globex.pk}'] [data-installation='{user.pk}']")
    expect(row).to_contain_text("regular user")
    screenshot("newcomer-nostate-3-landing")
    assert page.blocked_requests == []
