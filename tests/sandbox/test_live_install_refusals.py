"""The foundation's refusal cases, replayed against the sandbox over real HTTP (live server).

tests/installations/ proves them against the in-process double; here the same app code meets the
sandbox's real OAuth server and its real uninstall notification.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from pipedrive_app.installations.models import Company, Installation

from .conftest import CLIENT_ID, CLIENT_SECRET, SANDBOX_DB
from .test_live_install import _csrf, browser_install

pytestmark = pytest.mark.django_db(transaction=True, databases=SANDBOX_DB)


def _consent_redirect(live, user, browser: requests.Session) -> str:
    """Go through /oauth/install and consent; return the callback URL without following it."""
    first = browser.get(f"{live.url}/oauth/install", allow_redirects=False, timeout=10)
    consent_url = first.headers["Location"]
    page = browser.get(consent_url, timeout=10)
    answer = browser.post(
        consent_url,
        data={"csrfmiddlewaretoken": _csrf(page.text), "user_id": user.pk, "decision": "allow"},
        allow_redirects=False,
        timeout=10,
    )
    return answer.headers["Location"]


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


def test_forged_state_is_refused(live_sandbox, browser, sandbox_world) -> None:
    callback = _consent_redirect(live_sandbox, sandbox_world.acme_admin, browser)

    response = browser.get(_with(callback, state="forged-by-an-attacker"), timeout=30)

    assert response.status_code == 400
    assert not Installation.objects.exists() and not Company.objects.exists()


def test_replayed_callback_is_refused(live_sandbox, browser, sandbox_world) -> None:
    callback = _consent_redirect(live_sandbox, sandbox_world.acme_admin, browser)
    assert browser.get(callback, timeout=30).status_code == 200  # installed, after the redirect
    token_before = Installation.objects.get().access_token

    replay = browser.get(callback, timeout=30)

    assert replay.status_code == 400
    assert Installation.objects.get().access_token == token_before


def test_state_from_another_browser_is_refused(live_sandbox, browser, sandbox_world) -> None:
    callback = _consent_redirect(live_sandbox, sandbox_world.acme_admin, browser)
    with requests.Session() as other_browser:
        response = other_browser.get(callback, timeout=30)
    assert response.status_code == 400
    assert not Installation.objects.exists()


def test_code_the_token_endpoint_rejects(live_sandbox, browser, sandbox_world) -> None:
    """Pipedrive answers invalid_grant: the request was at fault (400), not Pipedrive (502)."""
    callback = _consent_redirect(live_sandbox, sandbox_world.acme_admin, browser)

    response = browser.get(_with(callback, code="not-a-code-the-sandbox-issued"), timeout=30)

    assert response.status_code == 400 and "Start the installation again" in response.text
    assert not Installation.objects.exists() and not Company.objects.exists()


def test_api_domain_outside_the_allow_list_gets_no_token(live_sandbox, browser, sandbox_world, settings) -> None:
    settings.PIPEDRIVE_ALLOWED_API_DOMAINS = ["https://*.pipedrive.com"]

    final = browser_install(live_sandbox, sandbox_world.acme_admin, browser)

    assert final.status_code == 502
    assert not Installation.objects.exists() and not Company.objects.exists()


def _uninstall(live, *, auth: tuple[str, str], body: object) -> requests.Response:
    return requests.delete(
        f"{live.url}/oauth/callback",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
        auth=auth,
        timeout=10,
    )


def test_uninstall_notification_refusals_and_repeats_over_http(live_sandbox, browser, sandbox_world) -> None:
    browser_install(live_sandbox, sandbox_world.acme_admin, browser)
    body = {
        "client_id": CLIENT_ID,
        "company_id": sandbox_world.acme.pk,
        "user_id": sandbox_world.acme_admin.pk,
        "timestamp": "2026-11-29T12:00:00Z",
    }

    assert _uninstall(live_sandbox, auth=(CLIENT_ID, "wrong-secret"), body=body).status_code == 401
    assert _uninstall(live_sandbox, auth=(CLIENT_ID, CLIENT_SECRET), body={"company_id": "x"}).status_code == 400
    assert Installation.objects.filter(status=Installation.Status.ACTIVE).count() == 1

    first = _uninstall(live_sandbox, auth=(CLIENT_ID, CLIENT_SECRET), body=body)
    second = _uninstall(live_sandbox, auth=(CLIENT_ID, CLIENT_SECRET), body=body)

    assert first.status_code == 200 and first.json()["company_purged"] is True
    assert second.status_code == 200 and second.json()["company_purged"] is False
    assert not Company.objects.exists()
