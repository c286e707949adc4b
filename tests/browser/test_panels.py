"""The real panels in headless Chromium, framed by the sandbox's deal and person pages.

The app and the sandbox run on one live server (tests/sandbox/conftest.py ``live_sandbox``); the
sandbox's pages embed the panels with Pipedrive's query parameters and a JWT, and its
``_extension_host.html`` speaks the App Extensions SDK protocol to the vendored SDK the panel loads.
The panel reads the record from the sandbox's REST API with the viewer's own installation.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests

from tests.sandbox.conftest import SANDBOX_DB, _sandbox_defaults, live_sandbox, sandbox_world  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=SANDBOX_DB)]


def _install(live: Any, user: Any) -> None:
    """The user installs the app: the app's install link, the sandbox's consent page, the callback."""
    browser = requests.Session()
    browser.trust_env = False
    consent_url = browser.get(f"{live.url}/oauth/install", allow_redirects=False, timeout=10).headers["Location"]
    page = browser.get(consent_url, timeout=10)
    csrf_field = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert csrf_field, page.text
    csrf = csrf_field.group(1)
    answer = browser.post(
        consent_url,
        data={"csrfmiddlewaretoken": csrf, "user_id": user.pk, "decision": "allow"},
        allow_redirects=False,
        timeout=10,
    )
    final = browser.get(answer.headers["Location"], timeout=30)
    assert final.status_code == 200, final.text[:300]


def _open_record(page: Any, url: str) -> tuple[Any, Any, float]:
    started = time.monotonic()
    page.goto(url)
    host = page.locator("[data-pd-extension-host]")
    page.wait_for_function(
        "() => document.querySelector('[data-pd-extension-host]').getAttribute('data-state') === 'ready'",
        timeout=10_000,
    )
    initialized_after = time.monotonic() - started
    frame = page.locator('iframe[data-pd-frame="panel"]').element_handle().content_frame()
    frame.wait_for_selector("body[data-sdk=ready]")
    return host, frame, initialized_after


def _wait_resized(page: Any, frame: Any) -> float:
    """The iframe follows the panel's content height (RESIZE): all of it visible, nothing to scroll."""
    page.wait_for_function(
        """() => {
          const frame = document.querySelector('iframe[data-pd-frame=panel]');
          const doc = frame.contentDocument;
          const content = doc.querySelector('[data-panel]').getBoundingClientRect().bottom + 8;
          return Math.abs(frame.getBoundingClientRect().height - Math.min(750, Math.ceil(content))) <= 2
                 && doc.documentElement.scrollHeight <= doc.documentElement.clientHeight + 1;
        }"""
    )
    return page.locator('iframe[data-pd-frame="panel"]').evaluate("el => el.getBoundingClientRect().height")


def _background(frame: Any) -> str:
    return frame.evaluate("() => getComputedStyle(document.body).backgroundColor")


def _add_note(page: Any, frame: Any, text: str) -> None:
    from playwright.sync_api import expect

    frame.fill("textarea[name=content]", text)
    frame.click("form[data-action-form] button[type=submit]")
    frame.wait_for_selector("form[data-action-form][data-state=saved]", timeout=10_000)
    snackbar = page.locator("[data-pd-snackbar]")
    expect(snackbar).to_contain_text("Note added.")
    assert frame.input_value("textarea[name=content]") == ""


def test_deal_panel_in_the_sandbox(page, live_sandbox, sandbox_world, screenshot) -> None:  # noqa: F811
    from sandbox.models import Deal, Note

    user = sandbox_world.acme_admin
    _install(live_sandbox, user)
    # A deal owned by a user who has not installed the app: the owner's name comes from the sandbox's
    # GET /api/v1/users/{id} (scope users:read), not from the app's own installations.
    deal = (
        Deal.objects.filter(
            company=sandbox_world.acme,
            is_deleted=False,
            person__isnull=False,
            org__isnull=False,
            owner=sandbox_world.acme_regular,
        )
        .select_related("pipeline", "stage", "org", "owner", "person")
        .earliest("pk")
    )

    host, frame, initialized_after = _open_record(
        page, f"{live_sandbox.url}/sandbox/acme/deals/{deal.pk}/?as={user.pk}"
    )

    assert initialized_after < 10
    assert deal.person and deal.org and deal.owner  # the query's conditions
    assert frame.inner_text("[data-fact=title]") == deal.title
    assert frame.inner_text("[data-fact=person]") == deal.person.name
    assert deal.currency in frame.inner_text("[data-fact=value]")
    # The seed's real names, read through the sandbox's REST API (no "Pipeline 1" / "Stage 3" fallbacks).
    assert frame.inner_text("[data-fact=pipeline]") == deal.pipeline.name == "Sales pipeline"
    assert frame.inner_text("[data-fact=stage]") == deal.stage.name
    assert frame.inner_text("[data-fact=organization]") == deal.org.name
    assert frame.inner_text("[data-fact=owner]") == deal.owner.name == "Rob Regular"
    height = _wait_resized(page, frame)
    assert height != 300
    assert frame.evaluate("() => document.documentElement.getAttribute('data-theme')") == "light"
    light = _background(frame)
    screenshot("panels-deal-light")

    _add_note(page, frame, "Called the customer from the panel")
    note = Note.objects.filter(deal=deal).latest("pk")
    assert note.content == "Called the customer from the panel" and note.user_id == user.pk

    # The host's theme toggle: the panel listens for USER_SETTINGS_CHANGE and turns dark in place.
    page.locator("[data-pd-theme-toggle]").click()
    frame.wait_for_function("() => document.documentElement.getAttribute('data-theme') === 'dark'")
    dark = _background(frame)
    assert dark != light
    red, green, blue = (int(part) for part in re.findall(r"\d+", dark)[:3])
    assert red + green + blue < 150, dark
    screenshot("panels-deal-dark")
    assert page.blocked_requests == []


def test_person_panel_in_the_sandbox(page, live_sandbox, sandbox_world, screenshot) -> None:  # noqa: F811
    from sandbox.models import Deal, Note, Person

    user = sandbox_world.acme_regular
    _install(live_sandbox, user)
    person = (
        Person.objects.filter(
            company=sandbox_world.acme,
            is_deleted=False,
            org__isnull=False,
            owner=sandbox_world.acme_admin,  # has not installed: named through GET /api/v1/users/{id}
            deals__status=Deal.Status.OPEN,
        )
        .select_related("org", "owner")
        .earliest("pk")
    )
    open_deals = Deal.objects.filter(person=person, status=Deal.Status.OPEN, is_deleted=False).select_related("stage")

    host, frame, initialized_after = _open_record(
        page, f"{live_sandbox.url}/sandbox/acme/persons/{person.pk}/?as={user.pk}"
    )

    assert initialized_after < 10
    assert person.org and person.owner  # the query's conditions
    assert frame.inner_text("[data-fact=name]") == person.name
    assert frame.inner_text("[data-fact=organization]") == person.org.name
    assert frame.inner_text("[data-fact=owner]") == person.owner.name == "Ann Admin"
    shown = {
        int(value)
        for value in frame.eval_on_selector_all("[data-open-deal]", "els => els.map(e => e.dataset.openDeal)")
    }
    assert shown == {deal.pk for deal in open_deals[:9]}
    for deal in open_deals[:9]:
        assert frame.inner_text(f"[data-open-deal='{deal.pk}'] .deal-stage") == deal.stage.name
    _wait_resized(page, frame)
    screenshot("panels-person-light")

    _add_note(page, frame, "Met at the expo")
    assert Note.objects.filter(person=person, content="Met at the expo", user=user).exists()

    page.locator("[data-pd-theme-toggle]").click()
    frame.wait_for_function("() => document.documentElement.getAttribute('data-theme') === 'dark'")
    screenshot("panels-person-dark")


def test_a_panel_opened_in_dark_theme_renders_dark(page, live_sandbox, sandbox_world) -> None:  # noqa: F811
    from sandbox.models import Deal

    user = sandbox_world.acme_admin
    _install(live_sandbox, user)
    deal = Deal.objects.filter(company=sandbox_world.acme, is_deleted=False).earliest("pk")
    page.goto(f"{live_sandbox.url}/sandbox/acme/deals/{deal.pk}/?as={user.pk}")
    # The host starts light; switching it reloads nothing for a listening panel, so use the panel URL
    # with theme=dark as Pipedrive would send it for a user in dark mode.
    src = page.locator('iframe[data-pd-frame="panel"]').get_attribute("src").replace("theme=light", "theme=dark")
    page.goto(src)
    assert page.evaluate("() => document.documentElement.getAttribute('data-theme')") == "dark"
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == "rgb(27, 31, 36)"


def test_a_user_who_has_not_installed_sees_the_install_state(page, live_sandbox, sandbox_world) -> None:  # noqa: F811
    from sandbox.models import Deal

    _install(live_sandbox, sandbox_world.acme_admin)
    deal = Deal.objects.filter(company=sandbox_world.acme, is_deleted=False).earliest("pk")
    host, frame, _ = _open_record(
        page, f"{live_sandbox.url}/sandbox/acme/deals/{deal.pk}/?as={sandbox_world.acme_regular.pk}"
    )
    assert "Install the app to see this panel" in frame.inner_text("[data-state-message]")
    link = frame.locator("a.button")
    assert link.get_attribute("target") == "_blank" and link.get_attribute("href").endswith("/oauth/install")


@pytest.mark.parametrize(
    ("locale", "value_label", "history_title"),
    [
        ("de_DE", "Wert", "Änderungsverlauf"),
        ("es_ES", "Valor", "Historial de cambios"),
        ("fr_FR", "Valeur", "Historique des modifications"),
        ("pt_BR", "Valor", "Histórico de alterações"),
    ],
)
def test_the_deal_panel_in_the_viewers_language(
    page,
    live_sandbox,
    sandbox_world,
    screenshot,
    locale,
    value_label,
    history_title,  # noqa: F811
) -> None:
    from pipedrive_app.installations.models import Installation
    from sandbox.models import Deal

    user = sandbox_world.acme_admin
    _install(live_sandbox, user)
    # The viewer's Pipedrive language, as the app read it from users/me at install.
    Installation.objects.filter(pipedrive_user_id=user.pk).update(locale=locale)
    deal = Deal.objects.filter(company=sandbox_world.acme, is_deleted=False, value__gt=1000).earliest("pk")

    _host, frame, _ = _open_record(page, f"{live_sandbox.url}/sandbox/acme/deals/{deal.pk}/?as={user.pk}")

    labels = frame.eval_on_selector_all("dl.fact-list dt", "els => els.map(e => e.textContent)")
    assert labels[0] == value_label, labels
    assert frame.text_content("section.history h2") == history_title
    assert frame.evaluate("() => document.documentElement.lang").lower() == locale.lower().replace("_", "-")
    assert "," in frame.inner_text("[data-fact=value]")  # decimal comma in all four
    _wait_resized(page, frame)
    screenshot(f"panels-deal-{locale}")


def test_organization_panel_in_the_sandbox(page, live_sandbox, sandbox_world, screenshot) -> None:
    from sandbox.models import Deal, Note, Organization, Person

    user = sandbox_world.acme_admin
    _install(live_sandbox, user)
    org = (
        Organization.objects.filter(company=sandbox_world.acme, is_deleted=False, persons__isnull=False)
        .distinct()
        .earliest("pk")
    )
    people = Person.objects.filter(org=org, is_deleted=False)
    open_deals = Deal.objects.filter(org=org, status=Deal.Status.OPEN, is_deleted=False)

    # Reached as a user would: from the company page, through a person's organization link.
    page.goto(f"{live_sandbox.url}/sandbox/acme/?as={user.pk}")
    href = page.locator(f"[data-link=organization-{org.pk}]").first.get_attribute("href")
    assert href == f"/sandbox/acme/organizations/{org.pk}/?as={user.pk}"
    _host, frame, initialized_after = _open_record(page, f"{live_sandbox.url}{href}")
    assert initialized_after < 10

    assert frame.inner_text("[data-fact=name]") == org.name
    shown_people = {
        int(v) for v in frame.eval_on_selector_all("[data-person]", "els => els.map(e => e.dataset.person)")
    }
    assert shown_people == {p.pk for p in people[:9]}
    shown_deals = {
        int(v) for v in frame.eval_on_selector_all("[data-open-deal]", "els => els.map(e => e.dataset.openDeal)")
    }
    assert shown_deals == {d.pk for d in open_deals[:9]}
    # Taller than a panel may grow (750 px, Pipedrive's limit): the iframe stops there and scrolls.
    page.wait_for_function(
        "() => document.querySelector('iframe[data-pd-frame=panel]').getBoundingClientRect().height >= 749"
    )
    screenshot("panels-organization-light")

    _add_note(page, frame, "Visited their office")
    assert Note.objects.filter(org=org, content="Visited their office", user=user).exists()

    page.locator("[data-pd-theme-toggle]").click()
    frame.wait_for_function("() => document.documentElement.getAttribute('data-theme') === 'dark'")
    screenshot("panels-organization-dark")
