"""Every surface the app shows inside Pipedrive, checked with axe-core in light and dark themes.

axe-core is vendored under tests/browser/vendor/axe-core (``make vendor-axe``) and evaluated in the
page through the browser's DevTools protocol, so the panels' strict CSP (script-src 'self') stays on.
A serious or critical violation fails the test; every result is written to
test-artifacts/accessibility/<surface>-<theme>.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_panels import _install
from tests.sandbox.conftest import SANDBOX_DB, _sandbox_defaults, live_sandbox, sandbox_world  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=SANDBOX_DB)]

ROOT = Path(__file__).resolve().parents[2]
AXE = (ROOT / "tests" / "browser" / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
REPORTS = ROOT / "test-artifacts" / "accessibility"
BLOCKING = {"serious", "critical"}


def _axe(page: Any, name: str) -> list[dict[str, Any]]:
    """Run axe-core on the page; save the whole result; return the serious and critical violations."""
    page.evaluate(AXE)
    result = page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ['violations', 'passes']});
          return {violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.map(n => n.target.join(' '))})), passes: r.passes.length};
        }"""
    )
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{name}.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    assert result["passes"] > 10, "axe-core did not run its rules"
    return [v for v in result["violations"] if v["impact"] in BLOCKING]


def _panel_url(page: Any, live: Any, path: str, theme: str) -> str:
    page.goto(f"{live.url}{path}")
    src = page.locator('iframe[data-pd-frame="panel"]').get_attribute("src")
    return src.replace("theme=light", f"theme={theme}")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_panels_settings_and_states_have_no_serious_accessibility_violations(
    page,
    live_sandbox,
    sandbox_world,
    theme,  # noqa: F811
) -> None:
    from sandbox.models import Deal, Organization, Person

    admin, regular = sandbox_world.acme_admin, sandbox_world.acme_regular
    _install(live_sandbox, admin)
    deal = Deal.objects.filter(company=sandbox_world.acme, is_deleted=False, person__isnull=False).order_by("pk")[0]
    person = Person.objects.filter(company=sandbox_world.acme, is_deleted=False).order_by("pk")[0]
    org = Organization.objects.filter(company=sandbox_world.acme).order_by("pk")[0]
    surfaces = {
        "deal-panel": _panel_url(page, live_sandbox, f"/sandbox/acme/deals/{deal.pk}/?as={admin.pk}", theme),
        "person-panel": _panel_url(page, live_sandbox, f"/sandbox/acme/persons/{person.pk}/?as={admin.pk}", theme),
        "organization-panel": _panel_url(
            page, live_sandbox, f"/sandbox/acme/organizations/{org.pk}/?as={admin.pk}", theme
        ),
        "settings-page": _panel_url(page, live_sandbox, f"/sandbox/acme/apps/settings/?as={admin.pk}", theme),
        # A user of the company who has not installed: the install state.
        "state-not-installed": _panel_url(page, live_sandbox, f"/sandbox/acme/deals/{deal.pk}/?as={regular.pk}", theme),
    }
    found = {}
    for name, url in surfaces.items():
        page.goto(url)
        page.wait_for_selector("[data-panel]")
        found[name] = _axe(page, f"{name}-{theme}")
    assert found == {name: [] for name in surfaces}, json.dumps(found, indent=2)
