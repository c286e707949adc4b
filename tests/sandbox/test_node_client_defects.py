"""Defects found by pointing Pipedrive's official Node client (``pipedrive`` on npm) at the sandbox."""

from __future__ import annotations

import pytest

from .conftest import SANDBOX_DB

pytestmark = pytest.mark.django_db(databases=SANDBOX_DB)


@pytest.fixture
def admin_token(grant, sandbox_world) -> str:
    return grant(sandbox_world.acme_admin)["access_token"]


def test_a_deal_with_only_its_title_is_created(api, sandbox_world, admin_token) -> None:
    """``title`` is the only required field of ``POST /api/v2/deals`` (v2.yaml)."""
    created = api("POST", "acme", "/api/v2/deals", admin_token, body={"title": "Only a title"})
    assert created.status_code == 200, created.content
    assert created.json()["data"]["title"] == "Only a title"


def test_users_are_listed(api, sandbox_world, admin_token) -> None:
    """``GET /api/v1/users`` (scope ``users:read``) lists the company's users, and no one else's."""
    listed = api("GET", "acme", "/api/v1/users", admin_token)
    assert listed.status_code == 200, listed.content
    ids = {user["id"] for user in listed.json()["data"]}
    assert ids == set(sandbox_world.acme.users.values_list("pk", flat=True))
    assert [u["is_you"] for u in listed.json()["data"] if u["id"] == sandbox_world.acme_admin.pk] == [True]
