"""The sandbox's extension host and the REAL vendored App Extensions SDK speak the same protocol.

Two loopback origins: ``host_site`` plays Pipedrive's page (the `_extension_host.html` include in
a minimal page), ``app_site`` plays the app (test-only panel pages that load the vendored
static/vendor/app-extensions-sdk/index.umd.js). The panels drive the SDK; the tests look at what
the host did and at what the SDK's promises and listeners received.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.template import engines

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "sandbox" / "templates" / "sandbox" / "_extension_host.html"
SDK_DIR = ROOT / "static" / "vendor" / "app-extensions-sdk"
EXTENSION_ID = "test-ext-7f3a"
INITIAL_TOKEN = "initial.jwt.token"

HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sandbox deal #42</title></head>
<body><main><h1>Deal #42 (sandbox)</h1>
{panel}
</main></body></html>"""

# Loads the real SDK and runs the brief's sequence; later steps are started by the tests.
PANEL_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Test panel</title>
<script src="/static/vendor/app-extensions-sdk/index.umd.js"></script></head>
<body><h1>Test panel</h1><p id="status">starting</p>
<script>
window.results = {events: []};
var Command = AppExtensionsSDK.Command, Event = AppExtensionsSDK.Event;
(async function () {
  try {
    var sdk = await new AppExtensionsSDK().initialize({size: {height: 300}});
    window.sdk = sdk;
    results.initialized = true;
    results.themeAtStart = sdk.userSettings.theme;
    [Event.USER_SETTINGS_CHANGE, Event.VISIBILITY, Event.CLOSE_CUSTOM_MODAL].forEach(function (name) {
      sdk.listen(name, function (response) { results.events.push([name, response]); });
    });
    await sdk.execute(Command.RESIZE, {height: 420});
    results.resized = true;
    await sdk.execute(Command.SHOW_SNACKBAR, {message: "Note saved from the test panel",
                                             link: {url: "https://app.example.test/notes/1", label: "Open"}});
    results.snackbar = true;
    results.token = (await sdk.execute(Command.GET_SIGNED_TOKEN)).token;
    document.getElementById("status").textContent = "waiting for confirmation";
    var answer = await sdk.execute(Command.SHOW_CONFIRMATION, {
      title: "Delete this note?", description: "The test panel asks the host.", okText: "Delete"});
    results.confirmed = answer.confirmed;
    document.getElementById("status").textContent = "done";
  } catch (err) {
    results.error = String(err && err.message || err);
  }
})();
</script></body></html>"""

# Initializes but listens for nothing: a theme change must reload it with the new theme.
PLAIN_PANEL_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><script src="/static/vendor/app-extensions-sdk/index.umd.js"></script></head>
<body><p>Plain panel</p><script>
window.results = {};
new AppExtensionsSDK().initialize().then(function (sdk) {
  results.initialized = true; results.theme = sdk.userSettings.theme;
});
</script></body></html>"""

# Loads the SDK and never calls initialize.
SILENT_PANEL_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><script src="/static/vendor/app-extensions-sdk/index.umd.js"></script></head>
<body><p>I never initialize.</p><script>window.sdk = new AppExtensionsSDK();</script></body></html>"""

# A custom modal: shows its `data` parameter and closes itself through the SDK.
MODAL_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><script src="/static/vendor/app-extensions-sdk/index.umd.js"></script></head>
<body><h2>Custom modal</h2><p id="data"></p><button id="done" type="button">Done</button><script>
var params = new URLSearchParams(location.search);
document.getElementById("data").textContent = "data=" + params.get("data");
new AppExtensionsSDK().initialize({size: {height: 260, width: 480}}).then(function (sdk) {
  window.sdk = sdk;
  document.body.setAttribute("data-ready", "yes");
  document.getElementById("done").onclick = function () { sdk.execute(AppExtensionsSDK.Command.CLOSE_MODAL); };
});
</script></body></html>"""


def render_host(**context: Any) -> str:
    """The include as the sandbox pages use it, rendered on its own (the sandbox app need not be installed)."""
    return engines["django"].from_string(TEMPLATE.read_text()).render(context)


def panel_src(app_site: Any, path: str, *, theme: str = "light") -> str:
    # Exactly Pipedrive's parameters (docs/pipedrive-platform.md §3).
    query = {
        "id": EXTENSION_ID,
        "userId": "11",
        "companyId": "22",
        "token": INITIAL_TOKEN,
        "resource": "deal",
        "view": "details",
        "selectedIds": "42",
        "theme": theme,
    }
    return f"{app_site.base_url}{path}?{urlencode(query)}"


def token_endpoint(host_site: Any) -> tuple[str, list[str]]:
    issued: list[str] = []

    def fresh_token() -> dict[str, str]:
        issued.append(f"fresh.jwt.{len(issued) + 1}")
        return {"token": issued[-1]}

    return host_site.add_json("/sandbox/signed-token", fresh_token), issued


def open_host(page: Any, host_site: Any, app_site: Any, panel_path: str, **extra: Any) -> tuple[Any, list[str]]:
    token_url, issued = token_endpoint(host_site)
    html = render_host(
        iframe_src=panel_src(app_site, panel_path),
        signed_token_url=token_url,
        resource="deal",
        record_id=42,
        panel_title="Test app",
        **extra,
    )
    page.goto(host_site.add_page("/deal/42", HOST_PAGE.format(panel=html)))
    return page.locator('iframe[data-pd-frame="panel"]'), issued


def panel_frame(page: Any) -> Any:
    return page.locator('iframe[data-pd-frame="panel"]').element_handle().content_frame()


def wait_result(frame: Any, expression: str) -> Any:
    """Wait until ``expression`` (about ``results``) has a value in the panel, and return it."""
    frame.wait_for_function(
        f"() => window.results && ({expression}) !== undefined && ({expression}) !== null", polling=100
    )
    return frame.evaluate(f"() => {expression}")


def wait_true(frame: Any, expression: str) -> None:
    # polling, not requestAnimationFrame: a collapsed (display:none) panel paints no frames
    frame.wait_for_function(f"() => window.results && ({expression})", polling=100)


def frame_height(iframe: Any) -> float:
    return iframe.evaluate("el => el.getBoundingClientRect().height")


@pytest.mark.browser
def test_host_and_real_sdk_speak_the_same_protocol(page: Any, host_site: Any, app_site: Any, screenshot: Any) -> None:
    from playwright.sync_api import expect

    app_site.add_page("/panel", PANEL_PAGE)
    app_site.add_page("/modal", MODAL_PAGE)
    iframe, issued = open_host(page, host_site, app_site, "/panel", custom_modal_url=f"{app_site.base_url}/modal")
    frame = panel_frame(page)

    # initialize answered (height 300 applied), then RESIZE to 420.
    assert wait_result(frame, "results.resized") is True
    expect(iframe).to_be_visible()
    page.wait_for_function("() => document.querySelector('iframe[data-pd-frame=panel]').offsetHeight === 420")
    assert page.locator("[data-pd-extension-host]").get_attribute("data-state") == "ready"

    # SHOW_SNACKBAR: a visible toast on the host page, with the link.
    snackbar = page.locator("[data-pd-snackbar]")
    expect(snackbar).to_be_visible()
    expect(snackbar).to_contain_text("Note saved from the test panel")
    expect(snackbar.get_by_role("link", name="Open")).to_have_attribute("href", "https://app.example.test/notes/1")

    # GET_SIGNED_TOKEN: fetched from signed_token_url and delivered as {token}.
    assert wait_result(frame, "results.token") == issued[0] == "fresh.jwt.1"

    # SHOW_CONFIRMATION: a host dialog; confirming answers {confirmed: true}.
    dialog = page.locator("[data-pd-confirmation]")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete this note?")
    expect(dialog).to_contain_text("The test panel asks the host.")
    screenshot("extensions_host-1-panel-snackbar-confirmation")
    dialog.locator("[data-pd-confirm-ok]").click()
    assert wait_result(frame, "results.confirmed") is True
    expect(dialog).to_have_count(0)
    assert frame.evaluate("results.error") is None

    # ...and cancelling (or Escape) answers {confirmed: false}.
    frame.evaluate("""() => { sdk.execute(Command.SHOW_CONFIRMATION, {title: "Really?"})
                               .then(r => results.second = r.confirmed); }""")
    page.locator("[data-pd-confirm-cancel]").click()
    assert wait_result(frame, "results.second") is False

    # RESIZE clamps a panel to 100-750 px.
    frame.evaluate("() => sdk.execute(Command.RESIZE, {height: 5000})")
    assert frame_height(iframe) == 750
    frame.evaluate("() => sdk.execute(Command.RESIZE, {height: 10})")
    assert frame_height(iframe) == 100
    frame.evaluate("() => sdk.execute(Command.RESIZE, {height: 420})")
    assert frame_height(iframe) == 420

    # GET_METADATA answers the host window's size; floating-window commands fail for a panel.
    metadata = frame.evaluate("() => sdk.execute(AppExtensionsSDK.Command.GET_METADATA)")
    assert metadata == {"windowHeight": 900, "windowWidth": 1280}
    error = frame.evaluate("() => sdk.execute(Command.SHOW_FLOATING_WINDOW, {}).then(() => 'ok', e => e.message)")
    assert "floating window" in error

    # REDIRECT_TO: shown, not followed.
    frame.evaluate("() => sdk.execute(Command.REDIRECT_TO, {view: AppExtensionsSDK.View.DEALS, id: 7})")
    expect(page.locator("[data-pd-redirect-notice]")).to_contain_text("view=deals, id=7")
    assert urlsplit(page.url).path == "/deal/42"

    # A message with another identifier is refused.
    refused = frame.evaluate(
        "() => new AppExtensionsSDK({identifier: 'someone-else'}).initialize().then(() => 'ok', e => e.message)"
    )
    assert refused == "Unknown custom UI identifier"

    # OPEN_MODAL custom_modal: a host modal whose iframe gets `data`; CLOSE_MODAL from inside it
    # resolves the panel's OPEN_MODAL and the panel hears CLOSE_CUSTOM_MODAL.
    frame.evaluate("""() => { sdk.execute(Command.OPEN_MODAL, {type: AppExtensionsSDK.Modal.CUSTOM_MODAL,
                              action_id: "Edit note", data: {item: "xyz"}}).then(r => results.modal = r); }""")
    modal_iframe = page.locator('iframe[data-pd-frame="modal"]')
    expect(modal_iframe).to_be_visible()
    modal = modal_iframe.element_handle().content_frame()
    modal.wait_for_selector("body[data-ready=yes]")
    assert modal.inner_text("#data") == 'data={"item":"xyz"}'
    modal_query = parse_qs(urlsplit(modal.url).query)
    assert modal_query["selectedIds"] == ["42"] and modal_query["resource"] == ["deal"]
    assert modal_query["token"] == [issued[-1]] and modal_query["id"][0] != EXTENSION_ID
    assert modal_iframe.evaluate("el => [el.offsetWidth, el.offsetHeight]") == [480, 260]
    screenshot("extensions_host-2-custom-modal")
    modal.click("#done")
    assert wait_result(frame, "results.modal") == {"status": "closed"}
    expect(modal_iframe).to_have_count(0)
    assert ["close_custom_modal", {}] in frame.evaluate("results.events")

    # A Pipedrive "new deal" modal: the sandbox lets the user submit it with a made-up id.
    frame.evaluate("""() => { sdk.execute(Command.OPEN_MODAL, {type: "deal", prefill: {title: "Big deal"}})
                               .then(r => results.dealModal = r); }""")
    expect(page.locator('[data-pd-modal="deal"]')).to_contain_text("Big deal")
    page.locator("[data-pd-modal-submit]").click()
    deal_modal = wait_result(frame, "results.dealModal")
    assert deal_modal["status"] == "submitted" and isinstance(deal_modal["id"], int)

    # Theme toggle: a panel that listens gets USER_SETTINGS_CHANGE (no reload).
    page.locator("[data-pd-theme-toggle]").click()
    wait_true(frame, "results.events.some(e => e[0] === 'user_settings_change')")
    events = frame.evaluate("results.events")
    assert ["user_settings_change", {"data": {"theme": "dark"}}] in events
    assert page.locator("[data-pd-extension-host]").get_attribute("data-theme") == "dark"
    assert frame.evaluate("results.confirmed") is True  # same document: not reloaded
    # The SDK (0.15.1) stores the whole posted object as userSettings (docs/app-extensions-sdk-protocol.md).
    assert frame.evaluate("sdk.userSettings") == {"data": {"theme": "dark"}}

    # Collapsing the panel sends VISIBILITY.
    page.locator("[data-pd-collapse-toggle]").click()
    wait_true(frame, "results.events.some(e => e[0] === 'visibility')")
    assert ["visibility", {"data": {"is_visible": False}}] in frame.evaluate("results.events")
    page.locator("[data-pd-collapse-toggle]").click()
    wait_true(frame, "results.events.filter(e => e[0] === 'visibility').length === 2")
    assert frame.evaluate("results.events.filter(e => e[0] === 'visibility')")[1][1] == {"data": {"is_visible": True}}

    # The host's log shows the traffic but never a token.
    page.locator(".pd-ext-log summary").click()
    log = page.locator("[data-pd-log]").inner_text()
    assert "command: resize" in log and "answer: get_signed_token" in log and "event: visibility" in log
    assert "fresh.jwt" not in log and INITIAL_TOKEN not in log
    screenshot("extensions_host-3-dark-theme-log")
    assert page.blocked_requests == []


@pytest.mark.browser
def test_theme_toggle_reloads_a_panel_that_does_not_listen(page: Any, host_site: Any, app_site: Any) -> None:
    app_site.add_page("/plain", PLAIN_PANEL_PAGE)
    iframe, issued = open_host(page, host_site, app_site, "/plain")
    assert wait_result(panel_frame(page), "results.initialized") is True
    assert frame_height(iframe) == 300  # initialize without a size: the sandbox default

    page.locator("[data-pd-theme-toggle]").click()
    page.wait_for_function("() => /[?&]theme=dark/.test(document.querySelector('iframe[data-pd-frame=panel]').src)")
    frame = panel_frame(page)
    # Same Frame object, new document: wait for the navigation to commit before reading `results`.
    frame.wait_for_url(re.compile(r"[?&]theme=dark"))
    wait_true(frame, "results.initialized && results.theme === 'dark'")
    query = parse_qs(urlsplit(iframe.get_attribute("src")).query)
    assert query["theme"] == ["dark"] and query["token"] == [issued[-1]] and query["id"] == [EXTENSION_ID]


@pytest.mark.browser
def test_a_panel_that_never_initializes_is_hidden_with_a_notice(
    page: Any, host_site: Any, app_site: Any, screenshot: Any
) -> None:
    from playwright.sync_api import expect

    app_site.add_page("/silent", SILENT_PANEL_PAGE)
    iframe, _ = open_host(page, host_site, app_site, "/silent", init_timeout_ms=2500)
    notice = page.locator("[data-pd-timeout-notice]")

    # Not yet: the frame loads (invisible, under "Loading app...") and has time left.
    page.wait_for_timeout(800)
    assert app_site.requests and any(r.startswith("/silent?") for r in app_site.requests)
    expect(notice).to_be_hidden()
    expect(page.locator("[data-pd-loading]")).to_be_visible()

    expect(notice).to_be_visible(timeout=5_000)
    expect(notice).to_contain_text("The app did not respond")
    expect(iframe).to_be_hidden()
    assert page.locator("[data-pd-extension-host]").get_attribute("data-state") == "timeout"
    screenshot("extensions_host-4-did-not-respond")

    # Too late: an initialize after the deadline is refused.
    late = panel_frame(page).evaluate("() => sdk.initialize().then(() => 'ok', e => e.message)")
    assert "did not initialize in time" in late


def test_template_renders_pipedrive_params_and_the_ten_second_default() -> None:
    html = render_host(
        iframe_src="https://app.example.test/extensions/panels/deal/?id=x&userId=1&companyId=2&token=t"
        "&resource=deal&view=details&selectedIds=5&theme=light",
        signed_token_url="/sandbox/extensions/token?record=5",
    )
    assert 'data-init-timeout-ms="10000"' in html
    iframe = re.search(r'<iframe[^>]* src="([^"]+)"', html)
    assert iframe, html
    src = iframe.group(1).replace("&amp;", "&")
    assert set(parse_qs(urlsplit(src).query)) == {
        "id",
        "userId",
        "companyId",
        "token",
        "resource",
        "view",
        "selectedIds",
        "theme",
    }
    assert 'data-signed-token-url="/sandbox/extensions/token?record=5"' in html
    assert "/static/sandbox/extensions_host.js" in html and "/static/sandbox/extensions_host.css" in html


def test_vendored_sdk_matches_its_version_file() -> None:
    version = dict(line.split(": ", 1) for line in (SDK_DIR / "VERSION").read_text().splitlines() if ": " in line)
    digest = hashlib.sha256((SDK_DIR / "index.umd.js").read_bytes()).hexdigest()
    assert version["package"] == "@pipedrive/app-extensions-sdk"
    assert re.fullmatch(r"\d+\.\d+\.\d+", version["version"])
    assert version["sha256"].split()[0] == digest
    assert (SDK_DIR / "LICENSE.md").is_file()
