"""A company where only regular users installed: Pipedrive sends this app no webhooks (they need an
admin's installation with the ``admin`` scope), so no change is recorded and nothing tells a cached
panel that its record changed. The panels say so, and read Pipedrive afresh on every view."""

from __future__ import annotations

import pytest

from .conftest import ADMIN, COMPANY, REGULAR, panel_query

pytestmark = pytest.mark.django_db


def _deal_page(client, deal_id: int, user_id: int):
    return client.get(f"/extensions/panels/deal/?{panel_query(resource='deal', record_id=deal_id, user_id=user_id)}")


def test_the_history_says_an_admin_must_install_before_changes_are_recorded(client, seeded_company) -> None:
    world = seeded_company(users=((REGULAR, False),))
    html = _deal_page(client, world["deal"]["id"], REGULAR).content.decode()
    assert "data-history-needs-admin" in html
    assert "Changes are recorded once an admin of your company installs the app." in html
    assert "data-history-empty" not in html  # not the misleading "No changes recorded yet"


def test_with_an_admin_installed_the_history_does_not_ask_for_one(client, seeded_company) -> None:
    world = seeded_company(users=((ADMIN, True), (REGULAR, False)))
    html = _deal_page(client, world["deal"]["id"], REGULAR).content.decode()
    assert "data-history-needs-admin" not in html and "data-history-empty" in html


def test_an_edit_in_pipedrive_shows_on_the_next_view_without_webhooks(client, seeded_company, pipedrive) -> None:
    world = seeded_company(users=((REGULAR, False),))
    deal = world["deal"]
    assert 'data-fact="title">Northwind renewal<' in _deal_page(client, deal["id"], REGULAR).content.decode()

    pipedrive._companies[COMPANY].deals[deal["id"]]["title"] = "Northwind renewal 2027"  # edited in Pipedrive
    before = len(pipedrive.requests_to(f"/api/v2/deals/{deal['id']}"))
    html = _deal_page(client, deal["id"], REGULAR).content.decode()

    assert 'data-fact="title">Northwind renewal 2027<' in html
    assert len(pipedrive.requests_to(f"/api/v2/deals/{deal['id']}")) == before + 1  # read again, not cached


def test_with_an_admin_installed_a_repeated_view_is_still_cached(client, seeded_company, pipedrive) -> None:
    world = seeded_company(users=((ADMIN, True),))
    deal = world["deal"]
    _deal_page(client, deal["id"], ADMIN)
    before = len(pipedrive.requests_to(f"/api/v2/deals/{deal['id']}"))
    _deal_page(client, deal["id"], ADMIN)
    assert len(pipedrive.requests_to(f"/api/v2/deals/{deal['id']}")) == before  # webhooks keep it fresh
