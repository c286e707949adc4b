"""Leads in the sandbox: the v1 API (UUID ids), its contract, the pages, and their webhook events."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from sandbox.models import ChangeEvent, Lead, Person, Pipeline

from .conftest import SANDBOX_DB
from .test_contract import assert_contract

pytestmark = pytest.mark.django_db(databases=SANDBOX_DB)


@pytest.fixture
def admin_token(grant, sandbox_world, settings) -> str:
    """An app registered with the leads scope (the default app scopes do not include it)."""
    settings.SANDBOX_APP_SCOPES = "base,deals:full,contacts:full,leads:full,users:read,admin"
    return grant(sandbox_world.acme_admin)["access_token"]


def test_lead_api_round_trip_validates_against_v1_yaml(api, sandbox_world, admin_token) -> None:
    person = Person.objects.filter(company=sandbox_world.acme).earliest("pk")
    body = {"title": "Inbound", "person_id": person.pk, "value": {"amount": 300, "currency": "EUR"}}
    created = api("POST", "acme", "/api/v1/leads", admin_token, body=body)
    assert created.status_code == 201, created.content
    assert_contract("POST", "/sandbox/acme/api/v1/leads", created, body=body)
    lead = created.json()["data"]
    uuid.UUID(lead["id"])
    assert lead["value"] == {"amount": 300, "currency": "EUR"} and lead["person_id"] == person.pk

    got = api("GET", "acme", f"/api/v1/leads/{lead['id']}", admin_token)
    assert_contract("GET", f"/sandbox/acme/api/v1/leads/{lead['id']}", got)
    patched = api("PATCH", "acme", f"/api/v1/leads/{lead['id']}", admin_token, body={"title": "Qualified"})
    assert patched.json()["data"]["title"] == "Qualified"
    assert_contract("PATCH", f"/sandbox/acme/api/v1/leads/{lead['id']}", patched, body={"title": "Qualified"})
    listed = api("GET", "acme", "/api/v1/leads", admin_token)
    assert_contract("GET", "/sandbox/acme/api/v1/leads", listed)
    assert [row["id"] for row in listed.json()["data"]] == [lead["id"]]
    deleted = api("DELETE", "acme", f"/api/v1/leads/{lead['id']}", admin_token)
    assert_contract("DELETE", f"/sandbox/acme/api/v1/leads/{lead['id']}", deleted)
    assert api("GET", "acme", f"/api/v1/leads/{lead['id']}", admin_token).status_code == 404
    events = ChangeEvent.objects.filter(entity="lead", entity_id=lead["id"]).order_by("pk")
    assert [e.action for e in events] == ["create", "change", "delete"]


def test_a_lead_needs_a_title_and_a_person_or_organization(api, sandbox_world, admin_token) -> None:
    assert api("POST", "acme", "/api/v1/leads", admin_token, body={"title": "Orphan"}).status_code == 400
    assert api("POST", "acme", "/api/v1/leads", admin_token, body={"person_id": 1}).status_code == 400
    assert api("GET", "acme", "/api/v1/leads/not-a-uuid", admin_token).status_code == 404
    assert not Lead.objects.exists()


def test_pages_add_leads_and_stages_with_events(client: Client, sandbox_world) -> None:
    person = Person.objects.filter(company=sandbox_world.acme).earliest("pk")
    pipeline = Pipeline.objects.get(company=sandbox_world.acme)
    client.post("/sandbox/acme/leads/", {"title": "From the page", "person_id": person.pk})
    client.post("/sandbox/acme/stages/", {"pipeline_id": pipeline.pk, "name": "Negotiation"})
    lead = Lead.objects.get(title="From the page")
    assert ChangeEvent.objects.filter(entity="lead", entity_id=str(lead.pk), action="create").exists()
    stage_event = ChangeEvent.objects.filter(entity="stage", action="create").latest("pk")
    assert (
        stage_event.data
        and stage_event.data["name"] == "Negotiation"
        and stage_event.data["pipeline_id"] == pipeline.pk
    )
    page = client.get("/sandbox/acme/").content.decode()
    assert "From the page" in page and "Add a stage" in page
