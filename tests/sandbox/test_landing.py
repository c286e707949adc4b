"""The landing page ``/``: the newcomer's steps with the sandbox on, the production text with it off,
and the development-only list of installations (never a token)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from pipedrive_app.installations.models import Company, Installation

pytestmark = pytest.mark.django_db

ACCESS_TOKEN = "v1u:landing-access-token-must-never-show-" + "a" * 80
REFRESH_TOKEN = "v1r:landing-refresh-token-must-never-show-" + "b" * 40


def _installed(
    *, company_id: int = 7, user_id: int = 70, name: str = "Ann Admin", status: str = "active"
) -> Installation:
    company, _ = Company.objects.get_or_create(
        pipedrive_company_id=company_id,
        defaults={"name": "Acme Sales", "domain": "acme", "api_domain": "http://testserver/sandbox/acme"},
    )
    return Installation.objects.create(
        company=company,
        pipedrive_user_id=user_id,
        name=name,
        email="ann@acme.example",
        is_admin=name == "Ann Admin",
        status=status,
        access_token=ACCESS_TOKEN,
        refresh_token=REFRESH_TOKEN,
        access_token_expires_at=timezone.now(),
    )


def test_sandbox_on_shows_the_steps_in_order_and_an_empty_list(client: Client, settings) -> None:
    settings.PIPEDRIVE_SANDBOX = True
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200 and "no-cache" in response["Cache-Control"]
    steps = ['data-step="install"', 'data-step="consent"', 'data-step="deal"', 'data-step="uninstall"']
    steps.append('data-step="dashboard"')
    positions = [html.index(step) for step in steps]
    assert positions == sorted(positions)
    assert 'href="/sandbox/marketplace/"' in html and 'href="/dashboard/"' in html
    assert "manage.py create_operator" in html
    assert "data-no-installs" in html and "Installed in this app" in html
    assert 'href="/oauth/install"' not in html  # the sandbox path starts at its Marketplace


def test_sandbox_on_lists_companies_and_installations_without_tokens(client: Client, settings) -> None:
    settings.PIPEDRIVE_SANDBOX = True
    _installed()
    _installed(user_id=71, name="Rob Regular", status=Installation.Status.UNINSTALLED)
    html = client.get("/").content.decode()
    assert 'data-company="7"' in html and "Acme Sales" in html
    assert 'data-installation="70"' in html and "Ann Admin" in html and "admin" in html
    assert 'data-installation="71"' in html and "Rob Regular" in html and "regular user" in html
    assert "Active" in html and "Uninstalled" in html
    # The company's sandbox pages: its deals (step 3) and installed apps (step 4).
    assert 'href="http://testserver/sandbox/acme/"' in html
    assert 'href="http://testserver/sandbox/acme/apps/"' in html
    assert "landing-access-token" not in html and "landing-refresh-token" not in html
    assert "data-no-installs" not in html


def test_sandbox_off_shows_the_production_text_and_no_list(client: Client, settings) -> None:
    settings.PIPEDRIVE_SANDBOX = False
    settings.DEBUG = False
    settings.APP_BASE_URL = "https://app.example.com"
    _installed()
    html = client.get("/").content.decode()
    assert 'data-landing-mode="production"' in html and 'href="/oauth/install"' in html
    assert "https://app.example.com/oauth/callback" in html and "https://app.example.com/oauth/install" in html
    assert 'href="/healthz"' in html and 'href="/readyz"' in html
    assert "/sandbox/" not in html
    assert "Installed in this app" not in html and "Ann Admin" not in html


def test_debug_on_without_the_sandbox_lists_installations_without_sandbox_links(client: Client, settings) -> None:
    settings.PIPEDRIVE_SANDBOX = False
    settings.DEBUG = True
    _installed()
    html = client.get("/").content.decode()
    assert 'data-landing-mode="production"' in html
    assert "Installed in this app" in html and "Ann Admin" in html and "(DEBUG is on)" in html
    assert "/sandbox/" not in html


def test_the_list_reads_no_token_column(client: Client, settings) -> None:
    settings.PIPEDRIVE_SANDBOX = True
    for company_id in range(1, 4):
        _installed(company_id=company_id, user_id=company_id * 10)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    sql = " ".join(query["sql"] for query in queries.captured_queries)
    assert "installations_installation" in sql
    assert "access_token" not in sql and "refresh_token" not in sql
    assert sum("installations_installation" in q["sql"] for q in queries.captured_queries) == 1
