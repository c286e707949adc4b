"""The key integration: the app's real OAuth install flow against the sandbox, over real HTTP.

Both run on pytest-django's ``live_server`` (one threaded server: the app's views call the sandbox's
token endpoint and REST API through ``requests``, exactly as they call Pipedrive). A
``requests.Session`` plays the browser, cookies and CSRF included.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from pipedrive_app.installations.models import Company, Installation
from pipedrive_app.installations.services import NeedsReauth, installation_client
from sandbox import services as sandbox_services
from sandbox.models import AccessToken, RefreshToken

from .conftest import SANDBOX_DB

pytestmark = pytest.mark.django_db(transaction=True, databases=SANDBOX_DB)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def browser_install(
    live, user, browser: requests.Session, *, start: str = "install", decision: str = "allow"
) -> requests.Response:
    """Click through: the app's install link (or the Marketplace's direct link), consent, callback."""
    if start == "install":
        first = browser.get(f"{live.url}/oauth/install", allow_redirects=False, timeout=10)
        assert first.status_code == 302
        consent_url = first.headers["Location"]
        assert consent_url.startswith(f"{live.oauth_url}/oauth/authorize?") and "state=" in consent_url
    else:
        marketplace = browser.get(f"{live.oauth_url}/marketplace/", timeout=10)
        link = re.search(r'href="(/sandbox/oauth/authorize\?[^"]+)"', marketplace.text)
        assert link, marketplace.text
        path = link.group(1).replace("&amp;", "&")
        consent_url = f"{live.url}{path}"
        assert "state=" not in consent_url
    page = browser.get(consent_url, timeout=10)
    assert page.status_code == 200 and "Allow and install" in page.text
    answer = browser.post(
        consent_url,
        data={"csrfmiddlewaretoken": _csrf(page.text), "user_id": user.pk, "decision": decision},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302 and answer.headers["Location"].startswith(f"{live.url}/oauth/callback?")
    return browser.get(answer.headers["Location"], timeout=30)


def _installation(user) -> Installation:
    return Installation.objects.select_related("company").get(
        company__pipedrive_company_id=user.company_id, pipedrive_user_id=user.pk
    )


def test_install_with_state_stores_the_installation(live_sandbox, browser, sandbox_world) -> None:
    final = browser_install(live_sandbox, sandbox_world.acme_admin, browser)

    assert final.status_code == 200 and final.url.startswith(f"{live_sandbox.url}/oauth/installed/")
    installation = _installation(sandbox_world.acme_admin)
    assert installation.status == Installation.Status.ACTIVE and installation.is_admin
    assert installation.name == "Ann Admin" and installation.email == "ann@acme.example"
    assert set(installation.scopes) == {"base", "deals:full", "contacts:full", "activities:full", "users:read", "admin"}
    assert installation.company.api_domain == live_sandbox.api_domain("acme")
    assert installation.company.name == "Acme Sales" and installation.company.domain == "acme"
    assert installation.access_token and len(installation.access_token) >= 100


def test_install_without_state_from_the_marketplace(live_sandbox, browser, sandbox_world) -> None:
    final = browser_install(live_sandbox, sandbox_world.globex_regular, browser, start="marketplace")

    assert final.status_code == 200
    installation = _installation(sandbox_world.globex_regular)
    assert not installation.is_admin and "admin" not in installation.scopes
    assert installation.company.api_domain == live_sandbox.api_domain("globex")


def test_deny_stores_nothing(live_sandbox, browser, sandbox_world) -> None:
    final = browser_install(live_sandbox, sandbox_world.acme_admin, browser, decision="deny")

    assert final.status_code == 200 and "cancelled" in final.text.lower()
    assert not Installation.objects.exists() and not Company.objects.exists()
    assert not RefreshToken.objects.exists()


def test_expired_access_token_is_refreshed(live_sandbox, browser, sandbox_world, settings) -> None:
    settings.SANDBOX_ACCESS_TOKEN_LIFETIME = 2  # shorter than the app's refresh margin
    browser_install(live_sandbox, sandbox_world.acme_admin, browser)
    installation = _installation(sandbox_world.acme_admin)
    old_access, old_refresh = installation.access_token, installation.refresh_token

    client = installation_client(installation=installation)
    try:
        me = client.get_current_user()
    finally:
        client.close()

    assert me.id == sandbox_world.acme_admin.pk and me.company_id == sandbox_world.acme.pk
    installation.refresh_from_db()
    assert installation.access_token != old_access
    assert installation.refresh_token == old_refresh  # Pipedrive's refresh token is stable
    assert AccessToken.objects.filter(user=sandbox_world.acme_admin).count() >= 2


def test_401_refreshes_once_and_retries(live_sandbox, browser, sandbox_world) -> None:
    browser_install(live_sandbox, sandbox_world.acme_admin, browser)
    installation = _installation(sandbox_world.acme_admin)
    stale = installation.access_token
    # The sandbox expires the token behind the app's back: the app still thinks it valid.
    sandbox_services.access_tokens_expire(user=sandbox_world.acme_admin)
    issued_before = AccessToken.objects.filter(user=sandbox_world.acme_admin).count()

    client = installation_client(installation=installation)
    try:
        page = client.list_deals(limit=5)
    finally:
        client.close()

    assert len(page.items) == 5 and page.next_cursor
    installation.refresh_from_db()
    assert installation.access_token != stale and installation.status == Installation.Status.ACTIVE
    # Once: the sandbox's token endpoint issued exactly one access token for the retry.
    assert AccessToken.objects.filter(user=sandbox_world.acme_admin).count() == issued_before + 1


def test_revoked_grant_makes_the_installation_need_reauth(live_sandbox, browser, sandbox_world) -> None:
    browser_install(live_sandbox, sandbox_world.acme_admin, browser)
    installation = _installation(sandbox_world.acme_admin)
    sandbox_services.app_uninstall(
        user=sandbox_world.acme_admin, client_id="sandbox-test-client", reason="test revoke", notify_app=False
    )
    Installation.objects.filter(pk=installation.pk).update(
        access_token_expires_at=timezone.now() - timedelta(seconds=1)
    )
    installation.refresh_from_db()

    client = installation_client(installation=installation)
    with pytest.raises(NeedsReauth):
        client.get_current_user()
    client.close()

    installation.refresh_from_db()
    assert installation.status == Installation.Status.NEEDS_REAUTH and installation.access_token is None


def test_uninstall_button_notifies_the_app_which_removes_the_installation(live_sandbox, browser, sandbox_world) -> None:
    browser_install(live_sandbox, sandbox_world.acme_admin, browser)
    assert Installation.objects.filter(status=Installation.Status.ACTIVE).count() == 1

    page = browser.get(f"{live_sandbox.oauth_url}/acme/apps/", timeout=10)
    assert "Ann Admin" in page.text and "Uninstall" in page.text
    response = browser.post(
        f"{live_sandbox.oauth_url}/acme/apps/",
        data={
            "csrfmiddlewaretoken": _csrf(page.text),
            "user_id": sandbox_world.acme_admin.pk,
            "client_id": "sandbox-test-client",
            "action": "uninstall",
        },
        timeout=30,
    )

    assert response.status_code == 200 and "uninstalled" in response.text
    # The app's DELETE /oauth/callback handler ran: the last installation gone, the company purged.
    assert not Company.objects.filter(pipedrive_company_id=sandbox_world.acme.pk).exists()
    assert not Installation.objects.exists()
    assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()
