"""Pipedrive's uninstall notice (DELETE /oauth/callback) is never dropped.

Pipedrive ignores the reply and never re-sends the notice (docs/app-uninstallation), so an
authenticated notice that names a company and a user is carried out whatever else is odd about it;
the oddities are logged, without secrets.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from django.test import Client

from pipedrive_app.installations.models import Installation
from tests.webhooks.docs_examples import doc_example

pytestmark = pytest.mark.django_db
MISSING = object()


def _notice(pipedrive, **changes: Any) -> dict[str, Any]:
    """The documented notice (its four properties) with real values; ``changes`` override or, with
    MISSING, remove one."""
    documented = doc_example("uninstall/app-uninstallation.json").body
    real = {"client_id": pipedrive.client_id, "company_id": 1001, "user_id": 501, "timestamp": "2026-11-29T12:00:00Z"}
    assert set(documented) == set(real)
    for key, value in changes.items():
        if value is MISSING:
            real.pop(key)
        else:
            real[key] = value
    return real


def _send(client: Client, pipedrive, body: Any, *, secret: str | None = None):
    credentials = f"{pipedrive.client_id}:{secret or pipedrive.client_secret}".encode()
    return client.generic(
        "DELETE",
        "/oauth/callback",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(credentials).decode(),
    )


@pytest.mark.parametrize(
    ("changes", "logged"),
    [
        ({}, None),
        ({"timestamp": MISSING}, "no timestamp"),
        ({"timestamp": None}, "timestamp is not a time (NoneType)"),
        ({"timestamp": "yesterday"}, "timestamp is not a time (str)"),
        ({"timestamp": {"at": 1}}, "timestamp is not a time (dict)"),
        ({"timestamp": [2026, 11, 29]}, "timestamp is not a time (list)"),
        ({"timestamp": True}, "timestamp is not a time (bool)"),
        ({"timestamp": 1764417600123}, None),  # milliseconds
        ({"timestamp": "1764417600"}, None),
        ({"company_id": "1001", "user_id": "501"}, None),  # ids as strings
        ({"client_id": "another-client"}, "client_id in the body is not this app's"),
        ({"client_id": MISSING}, "client_id in the body is not this app's"),
        ({"reason": "user clicked uninstall", "extra": {"x": 1}}, "unexpected fields: extra, reason"),
    ],
    ids=[
        "documented",
        "no-timestamp",
        "null-timestamp",
        "word-timestamp",
        "object-timestamp",
        "list-timestamp",
        "bool-timestamp",
        "ms-timestamp",
        "string-seconds",
        "string-ids",
        "other-client-id-in-body",
        "no-client-id-in-body",
        "unknown-fields",
    ],
)
def test_an_authenticated_notice_naming_a_company_and_user_is_carried_out(
    client: Client, pipedrive, install_user, caplog, changes, logged
) -> None:
    install_user(1001, 501)
    install_user(1001, 502)
    caplog.set_level(logging.INFO, logger="pipedrive_app.installations")

    response = _send(client, pipedrive, _notice(pipedrive, **changes))

    assert response.status_code == 200, response.content
    statuses = dict(Installation.objects.values_list("pipedrive_user_id", "status"))
    assert statuses == {501: Installation.Status.UNINSTALLED, 502: Installation.Status.ACTIVE}
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    if logged is None:
        assert not warnings
    else:
        assert any(logged in line and "company 1001 user 501 carried out" in line for line in warnings), warnings
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert pipedrive.client_secret not in text and "user clicked uninstall" not in text


def test_the_last_users_notice_with_an_unusual_timestamp_purges_the_company(
    client: Client, pipedrive, install_user
) -> None:
    install_user(1001, 501)
    response = _send(client, pipedrive, _notice(pipedrive, timestamp={"unusual": True}))
    assert response.status_code == 200 and response.json()["company_purged"] is True
    assert not Installation.objects.exists()


def test_wrong_secret_is_still_refused_and_changes_nothing(client: Client, pipedrive, install_user) -> None:
    install_user(1001, 501)
    assert _send(client, pipedrive, _notice(pipedrive), secret="not-the-secret").status_code == 401
    assert Installation.objects.get().status == Installation.Status.ACTIVE


@pytest.mark.parametrize("missing", ["company_id", "user_id"])
def test_a_notice_that_names_no_company_or_user_is_refused_with_the_reason(
    client: Client, pipedrive, install_user, missing
) -> None:
    install_user(1001, 501)
    response = _send(client, pipedrive, _notice(pipedrive, **{missing: MISSING}))
    assert response.status_code == 400 and missing in response.json()["error"]
    assert Installation.objects.get().status == Installation.Status.ACTIVE
