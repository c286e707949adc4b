"""JSON panels: every response shape validates against the schemas shipped for Developer Hub."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from extensions.json_panels import json_panel_schema

from .conftest import ADMIN, COMPANY, OTHER_COMPANY, OUTSIDER, make_token, panel_query

pytestmark = pytest.mark.django_db

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "extensions" / "json_panel_schemas"


def _get(client, resource: str, record_id: int, **extra):  # type: ignore[no-untyped-def]
    return client.get(
        f"/extensions/json-panels/{resource}/?{panel_query(resource=resource, record_id=record_id, **extra)}"
    )


def _valid(response, resource: str) -> dict:  # type: ignore[no-untyped-def]
    payload = response.json()
    schema = json_panel_schema(resource) if response.status_code < 300 else json_panel_schema("error")
    jsonschema.validate(payload, schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    if response.status_code >= 300:
        assert response.status_code > 300
    return payload


def test_shipped_schemas_are_valid_json_schemas_within_pipedrives_limits() -> None:
    for name in ("deal", "person", "error"):
        schema = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
        jsonschema.Draft7Validator.check_schema(schema)
    for name in ("deal", "person"):
        schema = json_panel_schema(name)
        item = schema["properties"]["data"]["items"]
        assert schema["properties"]["data"]["maxItems"] == 10
        assert item["additionalProperties"] is False and schema["additionalProperties"] is False
        assert len(set(item["properties"]) - {"id", "header"}) <= 20


def test_deal_json_panel(client, seeded_company) -> None:  # type: ignore[no-untyped-def]
    world = seeded_company()
    response = _get(client, "deal", world["deal"]["id"])

    assert response.status_code == 200
    deal = _valid(response, "deal")["data"][0]
    assert deal["id"] == f"deal:{world['deal']['id']}"
    assert deal["header"] == "Northwind renewal"
    assert deal["value"] == {"code": "EUR", "value": 12500.5}
    assert deal["pipeline"] == "Sales pipeline" and deal["stage"] == "Proposal made"
    assert deal["status"] == {"color": "blue", "label": "Open"}
    assert (
        deal["owner"] == f"Ann Admin {ADMIN}" and deal["person"] == "Mia Tamm" and deal["organization"] == "Northwind"
    )
    assert deal["expected_close_date"] == "2026-03-31"
    assert isinstance(deal["days_since_last_change"], int)


def test_person_json_panel(client, seeded_company) -> None:  # type: ignore[no-untyped-def]
    world = seeded_company()
    payload = _valid(_get(client, "person", world["person"]["id"]), "person")

    person, *deals = payload["data"]
    assert person == {
        "id": f"person:{world['person']['id']}",
        "header": "Mia Tamm",
        "email": "mia@northwind.example",
        "phone": "+372 5555 1234",
        "organization": "Northwind",
        "owner": f"Ann Admin {ADMIN}",
        "open_deals": 2,
    }
    assert {d["header"]: (d["deal_value"], d["stage"]) for d in deals} == {
        "Northwind renewal": ({"code": "EUR", "value": 12500.5}, "Proposal made"),
        "Northwind pilot": ({"code": "USD", "value": 900}, "Qualified"),
    }


def test_at_most_ten_objects(client, seeded_company, pipedrive) -> None:  # type: ignore[no-untyped-def]
    world = seeded_company()
    for n in range(15):
        pipedrive.add_deal(COMPANY, title=f"Extra {n}", person_id=world["person"]["id"], value=n)
    payload = _valid(_get(client, "person", world["person"]["id"]), "person")
    assert len(payload["data"]) == 10


def test_minimal_records_still_validate(client, seeded_company, pipedrive) -> None:  # type: ignore[no-untyped-def]
    seeded_company()
    bare_deal = pipedrive.add_deal(COMPANY, title="", value=None, currency=None, pipeline_id=None, stage_id=None)
    bare_person = pipedrive.add_person(COMPANY, name="")
    assert _valid(_get(client, "deal", bare_deal["id"]), "deal")["data"][0]["header"] == f"Deal {bare_deal['id']}"
    assert _valid(_get(client, "person", bare_person["id"]), "person")["data"][0]["open_deals"] == 0


def test_empty_when_the_record_is_gone(client, seeded_company) -> None:  # type: ignore[no-untyped-def]
    seeded_company()
    for resource in ("deal", "person"):
        response = _get(client, resource, 99999)
        assert response.status_code == 200
        assert _valid(response, resource) == {"data": []}


@pytest.mark.parametrize("resource", ["deal", "person"])
def test_error_responses_use_pipedrives_error_format(client, seeded_company, pipedrive, resource) -> None:  # type: ignore[no-untyped-def]
    world = seeded_company()
    record_id = world[resource]["id"]
    path = f"/api/v2/{resource}s/{record_id}"

    pipedrive.rate_limit_next(path, times=2, retry_after=1, reset=None)
    limited = _get(client, resource, record_id)
    assert limited.status_code == 429 and _valid(limited, resource)["error"]["title"] == "Pipedrive is busy"

    pipedrive.fail_next(path, status=503, times=10)
    down = _get(client, resource, record_id)
    assert down.status_code == 503 and _valid(down, resource)["error"]["title"] == "Pipedrive could not be reached"

    from pipedrive_app.installations.models import Installation

    Installation.objects.filter(pipedrive_user_id=ADMIN).update(status=Installation.Status.NEEDS_REAUTH)
    reauth = _get(client, resource, record_id)
    assert reauth.status_code == 401 and _valid(reauth, resource)["error"]["title"] == "Reconnect the app"

    refused = _get(client, resource, record_id, token=make_token(expires_in=-100))
    assert refused.status_code == 401 and _valid(refused, resource)

    mismatch = _get(client, resource, record_id, token=make_token(), companyId=OTHER_COMPANY)
    assert mismatch.status_code == 403 and _valid(mismatch, resource)


def test_is_shared_viewer_gets_an_install_message_not_someone_elses_data(client, seeded_company, pipedrive) -> None:  # type: ignore[no-untyped-def]
    world = seeded_company()
    before = len(pipedrive.requests)

    response = _get(client, "deal", world["deal"]["id"], user_id=OUTSIDER, isShared="true")

    assert response.status_code == 403
    error = _valid(response, "deal")["error"]
    assert error["title"] == "Install the app to see this panel" and "your own permissions" in error["subtitle"]
    assert len(pipedrive.requests) == before  # the admin's installation was not used


def test_is_shared_with_an_installed_viewer_uses_the_viewers_installation(client, seeded_company) -> None:  # type: ignore[no-untyped-def]
    world = seeded_company()
    response = _get(client, "deal", world["deal"]["id"], isShared="true")
    assert response.status_code == 200 and _valid(response, "deal")["data"][0]["header"] == "Northwind renewal"


def test_company_a_cannot_read_company_b_through_the_json_panel(client, seeded_company, pipedrive) -> None:  # type: ignore[no-untyped-def]
    seeded_company()
    seeded_company(OTHER_COMPANY, users=((ADMIN + 100, True),))
    pipedrive.add_deal(OTHER_COMPANY, id=999, title="B only")
    response = _get(client, "deal", 999)
    assert _valid(response, "deal") == {"data": []}
