"""JSON panels: every response validates against the data structures shipped for Developer Hub
(Pipedrive's template format, resolved with ``json_panel_format``); errors use Pipedrive's error format."""

from __future__ import annotations

import base64

import pytest

from extensions.json_panel_format import error_response_problems, panel_data_schema, panel_response_problems

from .conftest import ADMIN, COMPANY, OTHER_COMPANY, OUTSIDER, REGULAR, make_token, panel_query

pytestmark = pytest.mark.django_db


def _get(client, resource: str, record_id: int, **extra):
    headers = extra.pop("headers", {})
    return client.get(
        f"/extensions/json-panels/{resource}/?{panel_query(resource=resource, record_id=record_id, **extra)}",
        headers=headers,
    )


def _valid(response, resource: str) -> dict:
    payload = response.json()
    if response.status_code < 300:
        assert panel_response_problems(panel_data_schema(resource), payload) == []
    else:
        assert response.status_code > 300
        assert error_response_problems(payload) == []
    return payload


def test_deal_json_panel(client, seeded_company) -> None:
    world = seeded_company()
    response = _get(client, "deal", world["deal"]["id"])

    assert response.status_code == 200
    deal = _valid(response, "deal")["data"][0]
    assert deal["id"] == world["deal"]["id"]
    assert deal["header"] == "Northwind renewal"
    assert deal["value"] == {"code": "EUR", "value": 12500.5}
    assert deal["pipeline"] == "Sales pipeline" and deal["stage"] == "Proposal made"
    assert deal["status"] == {"color": "blue", "label": "Open"}
    assert (
        deal["owner"] == f"Ann Admin {ADMIN}" and deal["person"] == "Mia Tamm" and deal["organization"] == "Northwind"
    )
    assert deal["expected_close_date"] == "2026-03-31"
    assert isinstance(deal["days_since_last_change"], int)


def test_person_json_panel(client, seeded_company) -> None:
    world = seeded_company()
    payload = _valid(_get(client, "person", world["person"]["id"]), "person")

    person, *deals = payload["data"]
    assert person == {
        "id": world["person"]["id"],
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


def test_at_most_ten_objects(client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    for n in range(15):
        pipedrive.add_deal(COMPANY, title=f"Extra {n}", person_id=world["person"]["id"], value=n)
    payload = _valid(_get(client, "person", world["person"]["id"]), "person")
    assert len(payload["data"]) == 10


def test_minimal_records_still_validate(client, seeded_company, pipedrive) -> None:
    seeded_company()
    bare_deal = pipedrive.add_deal(COMPANY, title="", value=None, currency=None, pipeline_id=None, stage_id=None)
    bare_person = pipedrive.add_person(COMPANY, name="")
    assert _valid(_get(client, "deal", bare_deal["id"]), "deal")["data"][0]["header"] == f"Deal {bare_deal['id']}"
    assert _valid(_get(client, "person", bare_person["id"]), "person")["data"][0]["open_deals"] == 0


def test_empty_when_the_record_is_gone(client, seeded_company) -> None:
    seeded_company()
    for resource in ("deal", "person"):
        response = _get(client, resource, 99999)
        assert response.status_code == 200
        assert _valid(response, resource) == {"data": []}


@pytest.mark.parametrize("resource", ["deal", "person"])
def test_error_responses_use_pipedrives_error_format(client, seeded_company, pipedrive, resource) -> None:
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


def test_shared_panel_shows_the_companys_data_to_a_viewer_who_never_installed(
    client, seeded_company, pipedrive
) -> None:
    """docs/company-wide-app-extensions: a shared JSON panel is seen by users who never installed the
    app, with the app's data for their company; it is read through an installed user's token."""
    world = seeded_company(users=((REGULAR, False), (ADMIN, True)))
    before = len(pipedrive.requests)

    response = _get(client, "deal", world["deal"]["id"], user_id=OUTSIDER, isShared="true")

    assert response.status_code == 200
    deal = _valid(response, "deal")["data"][0]
    assert deal["id"] == world["deal"]["id"] and deal["header"] == "Northwind renewal"
    calls = pipedrive.requests[before:]
    assert calls and {c.bearer_token for c in calls} == {world["installations"][ADMIN].access_token}  # the admin's


def test_shared_panel_without_any_working_installation_says_so(client, seeded_company) -> None:
    from pipedrive_app.installations.models import Installation

    world = seeded_company()
    Installation.objects.filter(pipedrive_user_id=ADMIN).update(status=Installation.Status.NEEDS_REAUTH)
    response = _get(client, "deal", world["deal"]["id"], user_id=OUTSIDER, isShared="true")
    assert response.status_code == 403 and _valid(response, "deal")["error"]["title"] == "App not connected"


def test_not_shared_panel_still_needs_the_viewers_own_installation(client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    before = len(pipedrive.requests)
    response = _get(client, "deal", world["deal"]["id"], user_id=OUTSIDER, isShared="false")
    assert response.status_code == 403 and _valid(response, "deal")["error"]["title"] == "Install the app first"
    assert len(pipedrive.requests) == before


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def basic_auth(settings):
    settings.EXTENSIONS_JSON_PANEL_HTTP_AUTH_USER = "pipedrive"
    settings.EXTENSIONS_JSON_PANEL_HTTP_AUTH_PASSWORD = "panel-password-0123456789"
    return _basic("pipedrive", "panel-password-0123456789")


def test_basic_auth_only_requests_are_accepted_when_configured(client, seeded_company, basic_auth) -> None:
    world = seeded_company()
    query = panel_query(resource="deal", record_id=world["deal"]["id"], token="")
    response = client.get(f"/extensions/json-panels/deal/?{query}", headers=basic_auth)
    assert response.status_code == 200
    assert _valid(response, "deal")["data"][0]["header"] == "Northwind renewal"
    # both credentials at once (Developer Hub allows configuring both)
    both = _get(client, "deal", world["deal"]["id"], headers=basic_auth)
    assert both.status_code == 200


def test_basic_auth_is_checked(client, seeded_company, basic_auth) -> None:
    world = seeded_company()
    no_token = panel_query(resource="deal", record_id=world["deal"]["id"], token="")
    wrong = client.get(f"/extensions/json-panels/deal/?{no_token}", headers=_basic("pipedrive", "wrong"))
    assert wrong.status_code == 401 and _valid(wrong, "deal")
    # a right password does not make a bad token good, nor a good token a wrong password
    bad_token = _get(client, "deal", world["deal"]["id"], token=make_token(secret="x" * 40), headers=basic_auth)
    assert bad_token.status_code == 401
    good_token = _get(client, "deal", world["deal"]["id"], headers=_basic("pipedrive", "wrong"))
    assert good_token.status_code == 401
    # Basic only: the query must name the user and company
    anonymous = client.get(
        f"/extensions/json-panels/deal/?resource=deal&selectedIds={world['deal']['id']}", headers=basic_auth
    )
    assert anonymous.status_code == 400 and _valid(anonymous, "deal")


def test_basic_credentials_are_refused_when_none_are_configured(client, seeded_company) -> None:
    world = seeded_company()
    no_token = panel_query(resource="deal", record_id=world["deal"]["id"], token="")
    response = client.get(f"/extensions/json-panels/deal/?{no_token}", headers=_basic("anyone", "anything"))
    assert response.status_code == 401


def test_is_shared_with_an_installed_viewer_uses_the_viewers_installation(client, seeded_company) -> None:
    world = seeded_company()
    response = _get(client, "deal", world["deal"]["id"], isShared="true")
    assert response.status_code == 200 and _valid(response, "deal")["data"][0]["header"] == "Northwind renewal"


def test_company_a_cannot_read_company_b_through_the_json_panel(client, seeded_company, pipedrive) -> None:
    seeded_company()
    seeded_company(OTHER_COMPANY, users=((ADMIN + 100, True),))
    pipedrive.add_deal(OTHER_COMPANY, id=999, title="B only")
    response = _get(client, "deal", 999)
    assert _valid(response, "deal") == {"data": []}


def test_organization_json_panel(client, seeded_company) -> None:
    world = seeded_company()
    payload = _valid(_get(client, "organization", world["org"]["id"]), "organization")

    organization, *deals = payload["data"]
    assert organization == {
        "id": world["org"]["id"],
        "header": "Northwind",
        "address": "Tartu mnt 1, Tallinn",
        "owner": f"Ann Admin {ADMIN}",
        "open_deals": 1,
        "people": 1,
    }
    assert deals == [
        {
            "id": world["deal"]["id"],
            "header": "Northwind renewal",
            "deal_value": {"code": "EUR", "value": 12500.5},
            "stage": "Proposal made",
        }
    ]
