"""The person panel: contact facts, open deals with value and stage."""

from __future__ import annotations

import pytest

from .conftest import ADMIN, COMPANY, OUTSIDER, count_rounds, panel_query

pytestmark = pytest.mark.django_db


def _person_page(client, person_id: int, **extra):
    return client.get(f"/extensions/panels/person/?{panel_query(resource='person', record_id=person_id, **extra)}")


def test_person_panel_shows_contacts_organization_and_open_deals(client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    before = len(pipedrive.requests)

    response = _person_page(client, world["person"]["id"])

    assert response.status_code == 200
    html = response.content.decode()
    assert "Mia Tamm" in html
    assert 'href="mailto:mia@northwind.example"' in html and "mia.private@example.org" in html
    assert "+372 5555 1234" in html
    assert "Northwind" in html and f"Ann Admin {ADMIN}" in html
    assert (
        f'data-open-deal="{world["deal"]["id"]}"' in html and f'data-open-deal="{world["second_deal"]["id"]}"' in html
    )
    assert "Northwind renewal" in html and "12,500.50 EUR" in html and "Proposal made" in html
    assert "Northwind pilot" in html and "900.00 USD" in html and "Qualified" in html
    assert "Old win" not in html  # won deals are not open
    calls = [(r.path, r.query) for r in pipedrive.requests[before:] if r.path.startswith("/api/")]
    listing = next(query for path, query in calls if path == "/api/v2/deals")
    assert listing["person_id"] == str(world["person"]["id"]) and listing["status"] == "open"


def test_person_without_deals_or_organization(client, seeded_company, pipedrive) -> None:
    seeded_company()
    lonely = pipedrive.add_person(COMPANY, name="Liam Berg")

    html = _person_page(client, lonely["id"]).content.decode()

    assert "Liam Berg" in html and "No open deals." in html


def test_person_panel_states(client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    person_id = world["person"]["id"]

    assert "Install the app" in _person_page(client, person_id, user_id=OUTSIDER).content.decode()
    pipedrive.rate_limit_next(f"/api/v2/persons/{person_id}", times=2, retry_after=1, reset=None)
    assert "Pipedrive is busy" in _person_page(client, person_id).content.decode()
    pipedrive.fail_next(f"/api/v2/persons/{person_id}", status=500, times=10)
    assert "Pipedrive could not be reached" in _person_page(client, person_id).content.decode()


def test_the_deal_panel_url_refuses_a_person(client, seeded_company) -> None:
    world = seeded_company()
    response = client.get(f"/extensions/panels/deal/?{panel_query(resource='person', record_id=world['person']['id'])}")
    assert response.status_code == 400


def test_a_later_view_reads_the_person_deals_and_organization_in_one_round_trip(
    client, seeded_company, pipedrive, monkeypatch
) -> None:
    from django.core.cache import cache

    from pipedrive_app.installations.models import Company

    world = seeded_company()
    person_id, org_id = world["person"]["id"], world["org"]["id"]
    assert _person_page(client, person_id).status_code == 200  # first view: names its organization and stages
    company = Company.objects.get(pipedrive_company_id=COMPANY)
    cache.delete(f"extensions:{company.pk}:{ADMIN}:person:{person_id}")  # the panel cache expired
    rounds = count_rounds(monkeypatch, pipedrive)

    response = _person_page(client, person_id)

    assert response.status_code == 200 and "Northwind" in response.content.decode()
    assert len(rounds) == 1, rounds
    assert f"GET /api/v2/persons/{person_id}" in rounds[0] and f"GET /api/v2/organizations/{org_id}" in rounds[0]
