from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.test import Client

from pipedrive_app.installations.models import Installation


def start_install(client: Client) -> str:
    """GET /oauth/install as a browser would; return the state the app put in the redirect."""
    response = client.get("/oauth/install")
    assert response.status_code == 302, response
    query = parse_qs(urlsplit(response["Location"]).query)
    return query["state"][0]


@pytest.fixture
def install_user(client: Client, pipedrive) -> Callable[..., Installation]:
    """Run the whole browser flow against the double: install link, consent, callback."""
    known_companies: set[int] = set()

    def install(company_id: int = 1001, user_id: int = 501, *, with_state: bool = True, **user: object) -> Installation:
        if company_id not in known_companies:
            pipedrive.add_company(company_id, name=f"Company {company_id}", domain=f"company{company_id}")
            known_companies.add(company_id)
        pipedrive.add_user(company_id, user_id, **user)
        params = {}
        if with_state:
            params["state"] = start_install(client)
        params["code"] = pipedrive.issue_code(company_id, user_id, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)
        response = client.get("/oauth/callback", params)
        assert response.status_code == 302, response.content.decode()[:500]
        return Installation.objects.select_related("company").get(
            company__pipedrive_company_id=company_id, pipedrive_user_id=user_id
        )

    return install
