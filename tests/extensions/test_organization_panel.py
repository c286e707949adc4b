"""The organization panel: address and owner, open deals with value and stage, people, history, notes."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache

from pipedrive_app.installations.models import Company

from .conftest import ADMIN, COMPANY, count_rounds, make_token, panel_query

pytestmark = pytest.mark.django_db


def _org_page(client, org_id: int, **extra):
    query = panel_query(resource="organization", record_id=org_id, **extra)
    return client.get(f"/extensions/panels/organization/?{query}")


def test_organization_panel_shows_facts_open_deals_and_people(client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    org_id = world["org"]["id"]
    before = len(pipedrive.requests)

    response = _org_page(client, org_id)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Northwind" in html and "Tartu mnt 1, Tallinn" in html
    assert f'data-open-deal="{world["deal"]["id"]}"' in html and "12,500.50 EUR" in html and "Proposal made" in html
    assert f'data-open-deal="{world["second_deal"]["id"]}"' not in html  # not this organization's deal
    assert f'data-person="{world["person"]["id"]}"' in html and "mia@northwind.example" in html
    assert "+372 5555 1234" in html
    assert 'placeholder="Write a note on this organization…"' in html
    # The organization, its open deals and its people at once; then the stage name.
    api = [(r.method, r.path, r.query) for r in pipedrive.requests[before:] if r.path.startswith("/api/")]
    assert ("GET", f"/api/v2/organizations/{org_id}", {}) in api
    lists = {path: query for method, path, query in api if path in ("/api/v2/deals", "/api/v2/persons")}
    assert lists["/api/v2/deals"]["org_id"] == str(org_id) and lists["/api/v2/deals"]["status"] == "open"
    assert lists["/api/v2/persons"]["org_id"] == str(org_id)


def test_a_later_view_of_the_organization_is_one_round_trip(client, seeded_company, pipedrive, monkeypatch) -> None:
    world = seeded_company()
    org_id = world["org"]["id"]
    assert _org_page(client, org_id).status_code == 200
    company = Company.objects.get(pipedrive_company_id=COMPANY)
    cache.delete(f"extensions:{company.pk}:{ADMIN}:organization:{org_id}")  # the panel cache expired
    rounds = count_rounds(monkeypatch, pipedrive)
    assert _org_page(client, org_id).status_code == 200
    assert len(rounds) == 1


def test_an_organization_that_does_not_exist_says_so(client, seeded_company) -> None:
    seeded_company()
    html = _org_page(client, 999_999).content.decode()
    assert 'data-state="not_found"' in html


def test_a_note_on_the_organization(client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    org_id = world["org"]["id"]
    token = make_token(user_id=ADMIN)
    response = client.post(
        "/extensions/actions/notes/",
        data=json.dumps(
            {
                "resource": "organization",
                "selectedIds": str(org_id),
                "userId": ADMIN,
                "companyId": COMPANY,
                "content": "Visited HQ",
            }
        ),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 201, response.content
    notes = [r for r in pipedrive.requests if r.method == "POST" and r.path == "/api/v1/notes"]
    assert notes and json.loads(notes[-1].body)["org_id"] == org_id
