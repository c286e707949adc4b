"""The app's custom floating window, hosted by the sandbox's page chrome, in headless Chromium.

Everything goes through the sandbox's own pages: the admin installs the app, opens one of their deals;
the top bar's launcher (Pipedrive's apps dock) shows and hides the window; a teammate edits the deal on
the sandbox's deal page in another browser, the sandbox delivers the webhook, the app records the change,
and the hidden window puts the count on the launcher's badge (SET_NOTIFICATION). Shown again, the
window lists the change and clears the badge. The real SDK runs in the iframe; the host protocol is
sandbox/static/sandbox/extensions_host.js. Screenshots: test-artifacts/screenshots/floating-window-*.png;
axe-core results: test-artifacts/accessibility/floating-window-*.json.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.test_accessibility import _axe
from tests.browser.test_panels import _install
from tests.sandbox.conftest import SANDBOX_DB, _sandbox_defaults, live_sandbox, sandbox_world  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=SANDBOX_DB)]


def _floating_frame(page: Any) -> Any:
    return page.locator('iframe[data-pd-frame="floating"]').element_handle().content_frame()


def _admins_deal(company: Any, admin: Any) -> Any:
    from sandbox.models import Deal

    deal = Deal.objects.filter(company=company, is_deleted=False).earliest("pk")
    Deal.objects.filter(pk=deal.pk).update(owner=admin)  # the admin owns it (the seed picks owners at random)
    return deal


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_floating_window_shown_notified_and_hidden_from_the_sandbox_chrome(
    page,
    browser,
    live_sandbox,  # noqa: F811
    sandbox_world,  # noqa: F811
    screenshot,
    settings,
    theme,
) -> None:
    from playwright.sync_api import expect

    settings.EXTENSIONS_FLOATING_POLL_SECONDS = 0.5
    settings.EXTENSIONS_FLOATING_HIDDEN_POLL_SECONDS = 0.5
    settings.PIPEDRIVE_EXTENSION_JWT_SECRETS = {"floating_window": "floating-window-secret-" + "f" * 32}
    company, admin, regular = sandbox_world.acme, sandbox_world.acme_admin, sandbox_world.acme_regular
    _install(live_sandbox, admin)
    deal = _admins_deal(company, admin)
    shot = f"floating-window-{theme}"

    # 1. The admin's deal page: the launcher in the top bar; the window loaded, initialized, hidden.
    page.goto(f"{live_sandbox.oauth_url}/{company.domain}/deals/{deal.pk}/?as={admin.pk}")
    dock = page.locator("[data-pd-floating-host]")
    launcher = page.locator("[data-pd-floating-launcher]")
    window = page.locator("[data-pd-floating-window]")
    badge = page.locator("[data-pd-floating-badge]")
    expect(window).to_have_attribute("data-state", "ready", timeout=10_000)
    expect(window).to_be_hidden()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    frame = _floating_frame(page)
    frame.wait_for_selector("body[data-sdk=ready][data-visible=no]", state="attached")
    if theme == "dark":  # Pipedrive's theme is one setting: the panel host's toggle reaches the window too
        page.locator("[data-pd-extension-host] [data-pd-theme-toggle]").click()
        expect(window).to_have_attribute("data-theme", "dark")
        frame.wait_for_selector("html[data-theme=dark]", state="attached")
    screenshot(f"{shot}-1-hidden")

    # 2. Shown by the user from the launcher: VISIBILITY {is_visible: true, context: {invoker: "user"}}.
    launcher.click()
    expect(window).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    frame.wait_for_selector("body[data-visible=yes][data-invoker=user]", state="attached")
    frame.wait_for_selector("[data-floating][data-state=empty]")
    size = page.locator('iframe[data-pd-frame="floating"]').bounding_box()
    assert (round(size["width"]), round(size["height"])) == (360, 420)  # the app's initialize size, in limits
    assert "No changes on your records yet" in frame.text_content("[data-feed-status]")
    screenshot(f"{shot}-2-shown-empty")

    # 3. Hidden by the user (the window's close button); the app switches to counting for the badge.
    page.locator("[data-pd-floating-close]").click()
    expect(window).to_be_hidden()
    frame.wait_for_selector("body[data-visible=no]", state="attached")
    expect(launcher).to_be_focused()

    # 4. A teammate edits the admin's deal on the sandbox's deal page (another browser): the sandbox
    #    sends the webhook, the app records the change, and the hidden window sets the dock's badge.
    other = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        teammate = other.new_page()
        teammate.goto(f"{live_sandbox.oauth_url}/{company.domain}/deals/{deal.pk}/?as={regular.pk}")
        teammate.fill("input[name=value]", "4321")
        teammate.get_by_role("button", name="Save (sends webhooks)").click()
        teammate.wait_for_url(f"**/deals/{deal.pk}/?as={regular.pk}")
    finally:
        other.close()
    expect(badge).to_be_visible(timeout=20_000)
    expect(badge).to_have_text("1")
    expect(dock).to_have_attribute("data-notification", "1")
    expect(window).to_be_hidden()
    assert frame.locator("[data-feed-item]").count() == 0  # hidden: nothing rendered meanwhile
    screenshot(f"{shot}-3-notified")

    # 5. Shown again: the change is listed (the viewer's formats), the badge is cleared.
    launcher.click()
    item = frame.locator("[data-feed-item]").first
    item.wait_for()
    expect(badge).to_be_hidden()
    expect(dock).to_have_attribute("data-notification", "0")
    assert item.get_attribute("data-entity") == "deal"
    assert "Value" in item.text_content() and "4321" in item.text_content()
    assert frame.locator(f'[data-open="deals:{deal.pk}"]').first.text_content() == deal.title
    assert "1 new change" in frame.text_content("[data-feed-status]") or "Up to date" in frame.text_content(
        "[data-feed-status]"
    )
    violations = _axe(frame, f"floating-window-{theme}")
    assert violations == [], violations
    screenshot(f"{shot}-4-shown-with-change")

    # 6. Keyboard: the record opens with Enter (REDIRECT_TO), and the app hides its own window
    #    (HIDE_FLOATING_WINDOW, invoker "command"); Escape in the window hides it; the launcher reopens it.
    frame.locator(f'[data-open="deals:{deal.pk}"]').first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("[data-pd-redirect-notice]")).to_contain_text(f"view=deals, id={deal.pk}")
    expect(window).to_be_hidden()
    frame.wait_for_selector("body[data-visible=no][data-invoker=command]", state="attached")
    launcher.focus()
    page.keyboard.press("Enter")
    expect(window).to_be_visible()
    page.locator("[data-pd-floating-handle]").focus()
    before = window.bounding_box()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowUp")
    after = window.bounding_box()
    assert (round(before["x"] - after["x"]), round(before["y"] - after["y"])) == (10, 10)
    page.keyboard.press("Escape")
    expect(window).to_be_hidden()
    expect(launcher).to_be_focused()

    # 7. Another extension of the app (the deal panel) shows the window with a context.
    panel = page.locator('iframe[data-pd-frame="panel"]').element_handle().content_frame()
    panel.wait_for_selector("body[data-sdk=ready]")
    panel.evaluate(
        """() => new AppExtensionsSDK().initialize().then(sdk => sdk.execute(
               AppExtensionsSDK.Command.SHOW_FLOATING_WINDOW, {context: {from: 'deal panel'}}))"""
    )
    expect(window).to_be_visible()
    frame.wait_for_selector("body[data-visible=yes][data-invoker=command]", state="attached")
    log = page.locator("[data-pd-floating-window] [data-pd-log]").text_content()
    assert '"from":"deal panel"' in log and '"invoker":"command"' in log
    assert "eyJ" not in log  # no JWT in the host's log (GET_SIGNED_TOKEN answers are redacted)
    screenshot(f"{shot}-5-shown-by-panel")


def test_floating_window_commands_keep_pipedrives_limits(page, live_sandbox, sandbox_world) -> None:  # noqa: F811
    """RESIZE within 70-700 x 200-800 px; SET_NOTIFICATION takes a whole number (0 or none clears);
    SET_FOCUS_MODE needs a visible window and hides its close button."""
    from playwright.sync_api import expect

    company, admin = sandbox_world.acme, sandbox_world.acme_admin
    _install(live_sandbox, admin)
    page.goto(f"{live_sandbox.oauth_url}/{company.domain}/?as={admin.pk}")  # the company page has the dock too
    window = page.locator("[data-pd-floating-window]")
    expect(window).to_have_attribute("data-state", "ready", timeout=10_000)
    frame = _floating_frame(page)
    frame.wait_for_selector("body[data-sdk=ready]", state="attached")
    run = """async ([command, args]) => {
        const sdk = await new AppExtensionsSDK().initialize({size: {height: 420, width: 360}});
        return sdk.execute(AppExtensionsSDK.Command[command], args).then(() => 'ok', e => 'error: ' + e.message);
    }"""
    iframe = page.locator('iframe[data-pd-frame="floating"]')

    assert frame.evaluate(run, ["SET_FOCUS_MODE", True]).startswith("error")  # hidden: refused
    assert frame.evaluate(run, ["SHOW_FLOATING_WINDOW", {}]) == "ok"
    expect(window).to_be_visible()
    assert frame.evaluate(run, ["RESIZE", {"height": 5000, "width": 5000}]) == "ok"
    assert iframe.evaluate("el => [el.offsetWidth, el.offsetHeight]") == [800, 700]
    assert frame.evaluate(run, ["RESIZE", {"height": 10, "width": 10}]) == "ok"
    assert iframe.evaluate("el => [el.offsetWidth, el.offsetHeight]") == [200, 70]
    assert frame.evaluate(run, ["SET_FOCUS_MODE", True]) == "ok"
    expect(page.locator("[data-pd-floating-close]")).to_be_hidden()
    assert frame.evaluate(run, ["SET_FOCUS_MODE", False]) == "ok"
    expect(page.locator("[data-pd-floating-close]")).to_be_visible()
    badge = page.locator("[data-pd-floating-badge]")
    assert frame.evaluate(run, ["SET_NOTIFICATION", {"number": 3}]) == "ok"
    expect(badge).to_have_text("3")
    assert frame.evaluate(run, ["SET_NOTIFICATION", {"number": -1}]).startswith("error")
    assert frame.evaluate(run, ["SET_NOTIFICATION", {"number": "7"}]).startswith("error")
    expect(badge).to_have_text("3")
    assert frame.evaluate(run, ["SET_NOTIFICATION", {}]) == "ok"
    expect(badge).to_be_hidden()
    assert frame.evaluate(run, ["HIDE_FLOATING_WINDOW", {"context": "not an object"}]).startswith("error")
    assert frame.evaluate(run, ["HIDE_FLOATING_WINDOW", {}]) == "ok"
    expect(window).to_be_hidden()
