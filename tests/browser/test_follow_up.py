""" "Schedule a follow-up" through the sandbox's own pages in headless Chromium, in light and dark:

- from the deal panel: the button opens the custom modal (OPEN_MODAL custom_modal); focus lands in
  its form; it is submitted (Bearer from GET_SIGNED_TOKEN), shows a snackbar, closes itself
  (CLOSE_MODAL); the deal page lists the new activity and the panel reloads;
- keyboard: Escape inside the modal and the host's close button close it, creating nothing;
- from the record's actions menu: the link action (a new tab with the form as a page), the custom
  modal without an opener, and the JSON modal drawn from the app's schema.

Each surface is checked with axe-core (no serious or critical violation; reports in
test-artifacts/accessibility/) and photographed (test-artifacts/screenshots/follow-up-*.png).
Each extension has its own JWT secret, so every token the sandbox signs must be the right one's.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest

from tests.browser.conftest import save_screenshot
from tests.browser.test_accessibility import AXE, BLOCKING, REPORTS, _axe
from tests.browser.test_panels import _install
from tests.sandbox.conftest import SANDBOX_DB, _sandbox_defaults, live_sandbox, sandbox_world  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=SANDBOX_DB)]

SECRETS = {
    "deal_panel": "deal-panel-secret-" + "d" * 32,
    "person_panel": "person-panel-secret-" + "p" * 32,
    "follow_up_modal": "follow-up-modal-secret-" + "m" * 32,
    "follow_up_link": "follow-up-link-secret-" + "l" * 32,
    "follow_up_json_modal": "follow-up-json-modal-secret-" + "j" * 32,
}


def _deal_page(page: Any, live: Any, world: Any, theme: str) -> Any:
    from sandbox.models import Deal

    deal = Deal.objects.filter(company=world.acme, is_deleted=False, person__isnull=False).order_by("pk")[0]
    page.goto(f"{live.oauth_url}/acme/deals/{deal.pk}/?as={world.acme_admin.pk}")
    page.wait_for_function(
        "() => document.querySelector('[data-pd-extension-host]').getAttribute('data-state') === 'ready'",
        timeout=10_000,
    )
    if theme == "dark":
        page.locator("[data-pd-theme-toggle]").click()
        page.frame_locator('iframe[data-pd-frame="panel"]').locator("html[data-theme=dark]").wait_for()
    return deal


def _modal_frame(page: Any) -> Any:
    """The custom modal's iframe as a Frame (for axe and the focus checks), once its SDK is ready."""
    page.frame_locator('iframe[data-pd-frame="modal"]').locator("body[data-sdk=ready]").wait_for(timeout=10_000)
    return next(frame for frame in page.frames if "/extensions/modals/follow-up/" in frame.url)


def _axe_within(page: Any, selector: str, name: str) -> list[dict[str, Any]]:
    """axe-core on one part of the host page (the modal the sandbox draws), not the sandbox's page
    around it; the whole result is saved like test_accessibility's."""
    page.evaluate(AXE)
    result = page.evaluate(
        """async (selector) => {
          const r = await axe.run(document.querySelector(selector), {resultTypes: ['violations', 'passes']});
          return {violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.map(n => n.target.join(' '))})), passes: r.passes.length};
        }""",
        selector,
    )
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{name}.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    assert result["passes"] > 5, "axe-core did not run its rules"
    return [v for v in result["violations"] if v["impact"] in BLOCKING]


def _no_blocking(found: list[dict[str, Any]]) -> None:
    assert found == [], json.dumps(found, indent=2)


def _future(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_follow_up_from_the_deal_panel(page, live_sandbox, sandbox_world, screenshot, settings, theme) -> None:  # noqa: F811
    from playwright.sync_api import expect

    from sandbox.models import Activity

    settings.PIPEDRIVE_EXTENSION_JWT_SECRETS = SECRETS
    _install(live_sandbox, sandbox_world.acme_admin)
    deal = _deal_page(page, live_sandbox, sandbox_world, theme)
    panel = page.frame_locator('iframe[data-pd-frame="panel"]')

    opener = panel.get_by_role("button", name="Schedule a follow-up")
    opener.click()
    dialog = page.locator('[data-pd-modal="custom_modal"]')
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("role", "dialog")
    frame = _modal_frame(page)
    # Focus lands in the modal: the host focuses the iframe, the form its first field.
    page.wait_for_function("document.activeElement.getAttribute('data-pd-frame') === 'modal'")
    frame.wait_for_function("document.activeElement && document.activeElement.name === 'subject'")
    assert frame.evaluate("document.documentElement.getAttribute('data-theme')") == theme
    modal = page.frame_locator('iframe[data-pd-frame="modal"]')
    expect(modal.locator("[data-follow-up-for]")).to_have_text(f"For “{deal.title}”")
    screenshot(f"follow-up-1-custom-modal-{theme}")
    _no_blocking(_axe(frame, f"follow-up-custom-modal-{theme}"))
    _no_blocking(_axe_within(page, ".pd-ext-overlay", f"follow-up-custom-modal-host-{theme}"))

    # A bad field is named in the modal, and nothing is created.
    modal.locator("[name=subject]").fill("Call Mia about the renewal")
    modal.locator("[name=due_date]").fill("2000-01-01")
    modal.get_by_role("button", name="Schedule").click()
    expect(modal.locator('[data-field-error="due_date"]')).to_have_text("A follow-up cannot be due in the past.")
    assert frame.evaluate("document.activeElement.name") == "due_date"
    assert not Activity.objects.exists()
    screenshot(f"follow-up-2-custom-modal-error-{theme}")

    modal.locator("[name=type]").select_option("meeting")
    modal.locator("[name=due_date]").fill(_future(7))
    modal.locator("[name=due_time]").fill("10:15")
    modal.locator("[name=note]").fill("Bring the new price list")
    modal.get_by_role("button", name="Schedule").click()

    expect(dialog).to_have_count(0)  # CLOSE_MODAL after success
    expect(page.locator("[data-pd-snackbar]").last).to_contain_text("Follow-up scheduled for")
    activity = Activity.objects.get()
    assert (activity.deal_id, activity.type, activity.subject) == (deal.pk, "meeting", "Call Mia about the renewal")
    assert activity.creator_id == sandbox_world.acme_admin.pk
    # The record page shows the result, and the panel reloaded itself (fresh token) after the close.
    expect(page.locator(f'[data-pd-activity="{activity.pk}"]')).to_contain_text("Call Mia about the renewal")
    expect(page.locator("[data-pd-extension-host]")).to_have_attribute("data-state", "ready", timeout=10_000)
    expect(panel.locator("body[data-sdk=ready]")).to_have_count(1)
    expect(panel.get_by_role("button", name="Schedule a follow-up")).to_be_visible()
    screenshot(f"follow-up-3-done-{theme}")
    assert page.blocked_requests == []


def test_keyboard_escape_and_close_button_close_the_modal(page, live_sandbox, sandbox_world, settings) -> None:  # noqa: F811
    from playwright.sync_api import expect

    from sandbox.models import Activity

    settings.PIPEDRIVE_EXTENSION_JWT_SECRETS = SECRETS
    _install(live_sandbox, sandbox_world.acme_admin)
    _deal_page(page, live_sandbox, sandbox_world, "light")
    panel = page.frame_locator('iframe[data-pd-frame="panel"]')
    dialog = page.locator('[data-pd-modal="custom_modal"]')

    # Keyboard only: focus the panel's button, Enter opens, typing goes to the subject, Escape closes.
    panel.get_by_role("button", name="Schedule a follow-up").focus()
    page.keyboard.press("Enter")
    _modal_frame(page)
    page.keyboard.type("Typed without a mouse")
    modal = page.frame_locator('iframe[data-pd-frame="modal"]')
    expect(modal.locator("[name=subject]")).to_have_value("Typed without a mouse")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)

    # The host's own close button (the × in the modal's header).
    expect(panel.locator("body[data-sdk=ready]")).to_have_count(1, timeout=10_000)
    panel.get_by_role("button", name="Schedule a follow-up").click()
    _modal_frame(page)
    page.locator("[data-pd-modal-close]").click()
    expect(dialog).to_have_count(0)
    # Cancel inside the form: CLOSE_MODAL.
    expect(panel.locator("body[data-sdk=ready]")).to_have_count(1, timeout=10_000)
    panel.get_by_role("button", name="Schedule a follow-up").click()
    _modal_frame(page)
    modal.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert not Activity.objects.exists()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_actions_menu_link_action_and_json_modal(
    page, live_sandbox, sandbox_world, screenshot, settings, theme
) -> None:  # noqa: F811, E501
    from playwright.sync_api import expect

    from sandbox.models import Activity

    settings.PIPEDRIVE_EXTENSION_JWT_SECRETS = SECRETS
    _install(live_sandbox, sandbox_world.acme_admin)
    deal = _deal_page(page, live_sandbox, sandbox_world, theme)
    toggle = page.get_by_role("button", name="Actions")

    # 1. The link action: a new tab, sent on to the app's page with a signed token.
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    screenshot(f"follow-up-4-actions-menu-{theme}")
    with page.context.expect_page() as new_tab:
        page.get_by_role("link", name="Schedule a follow-up (new tab)").click()
    tab = new_tab.value
    tab.wait_for_url("**/extensions/links/follow-up/?**")
    if theme == "dark":
        tab.goto(tab.url + "&theme=dark")  # Pipedrive's link carries no theme; shown dark for the record
    expect(tab.locator("h1")).to_have_text("Schedule a follow-up")
    assert tab.evaluate("document.activeElement.name") == "subject"
    _no_blocking(_axe(tab, f"follow-up-link-page-{theme}"))
    tab.locator("[name=subject]").fill("Send the offer")
    tab.locator("[name=type]").select_option("email")
    tab.locator("[name=due_date]").fill(_future(3))
    tab.get_by_role("button", name="Schedule").click()
    expect(tab.locator("[data-follow-up-done]")).to_contain_text("Follow-up scheduled for")
    save_screenshot(tab, f"follow-up-5-link-page-done-{theme}")
    tab.close()
    link_activity = Activity.objects.get(subject="Send the offer")
    assert (link_activity.deal_id, link_activity.type) == (deal.pk, "email")

    # 2. The custom modal from the menu (no opener): same modal, the page refreshes its activities.
    toggle.click()
    page.get_by_role("button", name="Schedule a follow-up", exact=True).click()
    _modal_frame(page)
    modal = page.frame_locator('iframe[data-pd-frame="modal"]')
    modal.locator("[name=subject]").fill("From the menu")
    modal.get_by_role("button", name="Schedule").click()
    expect(page.locator('[data-pd-modal="custom_modal"]')).to_have_count(0)
    expect(page.locator("[data-pd-activities]")).to_contain_text("From the menu")

    # 3. The JSON modal, drawn by the sandbox from the app's schema.
    toggle.click()
    page.get_by_role("button", name="Quick follow-up").click()
    json_modal = page.locator('[data-pd-modal="json_modal"]')
    expect(json_modal).to_be_visible()
    expect(json_modal.locator("h2")).to_have_text("Quick follow-up")  # the action's registered name
    expect(json_modal.locator("[name=follow_up_type]")).to_have_value("call")  # the app's initial data
    assert page.evaluate("document.activeElement.name") == "follow_up_subject"
    screenshot(f"follow-up-6-json-modal-{theme}")
    _no_blocking(_axe_within(page, ".pd-ext-overlay", f"follow-up-json-modal-{theme}"))
    json_modal.get_by_role("button", name="Schedule").click()
    expect(json_modal.locator("[data-pd-json-error]")).to_contain_text("Enter a subject.")  # the app's 400
    json_modal.locator("[name=follow_up_subject]").fill("Quick call")
    json_modal.locator("[name=follow_up_due_date]").fill(_future(1))
    json_modal.get_by_role("button", name="Schedule").click()
    expect(json_modal).to_have_count(0)
    expect(page.locator("[data-pd-snackbar]").last).to_contain_text("Follow-up scheduled")
    expect(page.locator("[data-pd-activities]")).to_contain_text("Quick call")
    screenshot(f"follow-up-7-json-modal-done-{theme}")
    subjects = sorted(Activity.objects.values_list("subject", flat=True))
    assert subjects == ["From the menu", "Quick call", "Send the offer"]
    # Escape closes the menu and returns focus to its button.
    toggle.click()
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    assert page.evaluate("document.activeElement.getAttribute('data-pd-actions-toggle')") == ""
    assert page.blocked_requests == []
