from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from pipedrive_app.installations.models import Company, Installation, LifecycleEvent
from pipedrive_app.installations.services import company_uninstall_by_vendor, installation_uninstall_by_vendor
from pipedrive_app.pipedrive.errors import PipedriveUnavailable

pytestmark = pytest.mark.django_db


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _notify(client: Client, pipedrive, body: object, *, auth: str | None = None, raw: bytes | None = None):
    headers: dict[str, Any] = {}
    if auth is None:
        auth = _basic(pipedrive.client_id, pipedrive.client_secret)
    if auth:
        headers["HTTP_AUTHORIZATION"] = auth
    data = raw if raw is not None else json.dumps(body)
    return client.generic("DELETE", "/oauth/callback", data, content_type="application/json", **headers)


def _body(pipedrive, company_id: int = 1001, user_id: int = 501) -> dict[str, object]:
    return {
        "client_id": pipedrive.client_id,
        "company_id": company_id,
        "user_id": user_id,
        "timestamp": "2026-11-29T12:00:00Z",
    }


def test_uninstall_of_one_user_keeps_the_company(client: Client, pipedrive, install_user) -> None:
    first = install_user(1001, 501)
    second = install_user(1001, 502)

    response = _notify(client, pipedrive, _body(pipedrive, 1001, 501))

    assert response.status_code == 200
    first.refresh_from_db()
    assert first.status == Installation.Status.UNINSTALLED
    assert first.access_token is None and first.refresh_token is None and first.uninstalled_at
    second.refresh_from_db()
    assert second.status == Installation.Status.ACTIVE and second.access_token
    assert Company.objects.filter(pipedrive_company_id=1001).exists()


def test_last_uninstall_purges_the_company_and_keeps_a_record(client: Client, pipedrive, install_user) -> None:
    install_user(1001, 501, name="Ann", email="ann@example.com")
    install_user(1001, 502)
    _notify(client, pipedrive, _body(pipedrive, 1001, 501))

    response = _notify(client, pipedrive, {**_body(pipedrive, 1001, 502), "company_id": "1001"})  # ids as strings

    assert response.status_code == 200 and response.json()["company_purged"] is True
    assert not Company.objects.exists() and not Installation.objects.exists()
    record = LifecycleEvent.objects.get(kind=LifecycleEvent.Kind.COMPANY_UNINSTALLED)
    assert record.pipedrive_company_id == 1001 and record.source == LifecycleEvent.Source.PIPEDRIVE
    # The records kept hold ids and times only: no names, emails or tokens.
    assert {f.name for f in LifecycleEvent._meta.fields} == {
        "id",
        "kind",
        "source",
        "pipedrive_company_id",
        "pipedrive_user_id",
        "occurred_at",
    }


def test_uninstall_twice_in_a_row_is_harmless(client: Client, pipedrive, install_user) -> None:
    install_user(1001, 501)
    assert _notify(client, pipedrive, _body(pipedrive)).status_code == 200
    events = LifecycleEvent.objects.count()

    again = _notify(client, pipedrive, _body(pipedrive))

    assert again.status_code == 200
    assert LifecycleEvent.objects.count() == events


def test_unknown_company_is_not_an_error(client: Client, pipedrive) -> None:
    assert _notify(client, pipedrive, _body(pipedrive, 999, 1)).status_code == 200


@pytest.mark.parametrize(
    "auth",
    [
        "",  # none
        "Bearer something",
        _basic("test-client-id", "wrong-secret"),
        _basic("other-client", "test-client-secret"),
        "Basic not-base64!!",
    ],
    ids=["missing", "bearer", "wrong-secret", "wrong-id", "garbled"],
)
def test_wrong_credentials_are_refused(client: Client, pipedrive, install_user, auth: str) -> None:
    install_user(1001, 501)

    response = _notify(client, pipedrive, _body(pipedrive), auth=auth or "")

    assert response.status_code == 401
    assert Installation.objects.get().status == Installation.Status.ACTIVE


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b"{}",
        json.dumps({"client_id": "test-client-id", "company_id": "abc", "user_id": 501, "timestamp": "x"}).encode(),
        json.dumps({"client_id": "test-client-id", "company_id": 1001, "timestamp": "x"}).encode(),
        json.dumps({"client_id": "test-client-id", "company_id": 1001, "user_id": True, "timestamp": "x"}).encode(),
    ],
    # An authenticated notice naming a company and a user is carried out whatever else is odd
    # (tests/webhooks/test_uninstall_notice.py): only these, which name none, are refused.
    ids=["not-json", "array", "empty", "company-not-int", "no-user", "bool-id"],
)
def test_malformed_bodies_are_refused(client: Client, pipedrive, install_user, raw: bytes) -> None:
    install_user(1001, 501)

    response = _notify(client, pipedrive, None, raw=raw)

    assert response.status_code == 400
    assert "error" in response.json()
    assert Installation.objects.get().status == Installation.Status.ACTIVE


def test_vendor_uninstall_revokes_then_cleans_up(client: Client, pipedrive, install_user) -> None:
    installation = install_user(1001, 501)

    result = installation_uninstall_by_vendor(installation=installation)

    assert result.company_purged
    assert [hint for hint, _ in pipedrive.revoked] == ["refresh_token"]
    assert not Company.objects.exists()
    assert LifecycleEvent.objects.filter(kind="company_uninstalled", source="vendor").count() == 1


def test_vendor_uninstall_keeps_everything_when_revocation_fails(client: Client, pipedrive, install_user) -> None:
    installation = install_user(1001, 501)
    pipedrive.fail_next("/oauth/revoke", status=503, times=5)

    with pytest.raises(PipedriveUnavailable):
        installation_uninstall_by_vendor(installation=installation)

    installation.refresh_from_db()
    assert installation.status == Installation.Status.ACTIVE and installation.refresh_token


def test_vendor_uninstall_of_a_company_revokes_every_user(client: Client, pipedrive, install_user) -> None:
    first = install_user(1001, 501)
    install_user(1001, 502)

    result = company_uninstall_by_vendor(company=first.company)

    assert result.company_purged
    assert len(pipedrive.revoked) == 2
    assert not Company.objects.exists()


def test_uninstall_command_needs_confirmation(client: Client, pipedrive, install_user) -> None:
    install_user(1001, 501)

    with pytest.raises(CommandError, match="--yes"):
        call_command("uninstall_company", "1001")
    assert Company.objects.exists() and pipedrive.revoked == []

    call_command("uninstall_company", "1001", "--yes")
    assert not Company.objects.exists()


def test_uninstall_command_for_unknown_company(pipedrive) -> None:
    with pytest.raises(CommandError, match="No installed company"):
        call_command("uninstall_company", "4242", "--yes")
