"""In the sandbox (as in ``make run``): the app's JSON panels and its settings surface, reached from
the sandbox's own pages in headless Chromium, with no hand-made token.

The app and the sandbox run on one live server (tests/sandbox/conftest.py ``live_sandbox``). Each
extension has its own JWT secret here, as Developer Hub allows, so every token the sandbox signs must
be the right extension's. Screenshots: test-artifacts/screenshots/sandbox-extensions-*.png.
"""

from __future__ import annotations

from typing import Any

import pytest

from pipedrive_app.installations.models import CompanySettings
from tests.browser.test_newcomer_flow import _consent_and_allow
from tests.sandbox.conftest import SANDBOX_DB, _sandbox_defaults, live_sandbox, sandbox_world  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=SANDBOX_DB)]

SECRETS = {
    "deal_panel": "deal-panel-secret-" + "d" * 32,
    "person_panel": "person-panel-secret-" + "p" * 32,
    "deal_json_panel": "deal-json-panel-secret-" + "j" * 32,
    "person_json_panel": "person-json-panel-secret-" + "k" * 32,
    "settings_page": "settings-page-secret-" + "s" * 32,
}


def _install(page: Any, live: Any, user: Any, screenshot: Any) -> None:
    page.goto(f"{live.oauth_url}/marketplace/")
    page.get_by_role("link", name="Install now").click()
    page.wait_for_url(f"{live.oauth_url}/oauth/authorize?**")
    _consent_and_allow(page, user, screenshot, "sandbox-extensions-0-consent")
    page.wait_for_url("**/oauth/installed/**")


def test_json_panel_and_settings_from_sandbox_pages(page, live_sandbox, sandbox_world, screenshot, settings) -> None:  # noqa: F811, E501
    from playwright.sync_api import expect

    from sandbox.models import Deal

    settings.PIPEDRIVE_EXTENSION_JWT_SECRETS = SECRETS
    company, admin, regular = sandbox_world.acme, sandbox_world.acme_admin, sandbox_world.acme_regular
    _install(page, live_sandbox, admin, screenshot)

    # 1. A deal page, from the company page: the custom panel and, below it, the JSON panel.
    deal = Deal.objects.filter(company=company, is_deleted=False).earliest("pk")
    assert deal.person, "the seed gives every deal a person"
    page.goto(f"{live_sandbox.oauth_url}/{company.domain}/?as={admin.pk}")
    page.get_by_role("link", name=deal.title, exact=True).first.click()
    page.wait_for_url(f"**/{company.domain}/deals/{deal.pk}/**")
    json_panel = page.locator('[data-json-panel="deal"]')
    expect(json_panel).to_have_attribute("data-state", "ready")
    obj = json_panel.locator(f'[data-object-id="{deal.pk}"]')
    expect(obj.locator("[data-object-header]")).to_have_text(deal.title)
    expect(obj.locator('[data-field="stage"] dd')).to_have_text(deal.stage.name)
    expect(obj.locator('[data-field="status"] .pd-label')).to_have_count(1)
    expect(obj.locator('[data-field="value"] dt')).to_have_text("Value")
    expect(json_panel.locator("[data-shared]")).to_have_count(0)
    host = page.locator("[data-pd-extension-host]")
    expect(host).to_have_attribute("data-state", "ready", timeout=10_000)  # the custom panel verified its own token
    expect(page.locator("[data-custom-fields]")).to_contain_text("Lead source")
    screenshot("sandbox-extensions-1-deal-json-panel")

    # 2. Acting as a user who never installed: the panel is shared, and shows the company's deal.
    page.select_option("form.row select[name=as]", str(regular.pk))
    page.wait_for_url(f"**/deals/{deal.pk}/?as={regular.pk}")
    expect(json_panel).to_have_attribute("data-state", "ready")
    expect(json_panel.locator("[data-shared]")).to_have_count(1)
    expect(json_panel.locator("[data-object-header]")).to_have_text(deal.title)
    screenshot("sandbox-extensions-2-shared-json-panel")

    # 3. The person's JSON panel, from the deal's person.
    page.goto(f"{live_sandbox.oauth_url}/{company.domain}/persons/{deal.person_id}/?as={admin.pk}")
    person_panel = page.locator('[data-json-panel="person"]')
    expect(person_panel).to_have_attribute("data-state", "ready")
    expect(person_panel.locator(f'[data-object-id="{deal.person_id}"] [data-object-header]')).to_have_text(
        deal.person.name
    )
    screenshot("sandbox-extensions-3-person-json-panel")

    # 4. The settings surface, from the installed-apps page; an admin saves a change through it.
    page.goto(f"{live_sandbox.oauth_url}/{company.domain}/apps/")
    page.locator(f"[data-link=app-settings-{admin.pk}]").click()
    page.wait_for_url(f"**/{company.domain}/apps/settings/?as={admin.pk}")
    expect(page.locator("[data-pd-extension-host]")).to_have_attribute("data-state", "ready", timeout=10_000)
    frame = page.frame_locator('iframe[data-pd-frame="panel"]')
    expect(frame.locator("body[data-sdk=ready]")).to_have_count(1)
    expect(frame.locator("h1")).to_contain_text("App settings for")
    frame.locator("input[name=history_retention_days]").fill("45")
    frame.get_by_role("button", name="Save settings").click()
    expect(frame.locator("form[data-action-form]")).to_have_attribute("data-state", "saved")
    assert CompanySettings.objects.get(company__pipedrive_company_id=company.pk).history_retention_days == 45
    screenshot("sandbox-extensions-4-app-settings")
    # The same surface in Pipedrive's dark theme (the host's toggle sends USER_SETTINGS_CHANGE).
    page.locator("[data-pd-theme-toggle]").click()
    frame_el = page.locator('iframe[data-pd-frame="panel"]').element_handle().content_frame()
    frame_el.wait_for_function("() => document.documentElement.getAttribute('data-theme') === 'dark'")
    screenshot("sandbox-extensions-5-app-settings-dark")
    assert page.blocked_requests == []
