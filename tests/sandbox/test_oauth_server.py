"""The sandbox's OAuth server behaves as Pipedrive's (docs/pipedrive-platform.md §1)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from sandbox.models import AccessToken, AuthorizationCode, RefreshToken, Webhook
from sandbox.oauth_server import token_digest

from .conftest import SANDBOX_DB, authorize_code, basic, token_request

pytestmark = pytest.mark.django_db(databases=SANDBOX_DB)

CALLBACK = "http://testserver/oauth/callback"


def _exchange(client: Client, code: str, *, redirect_uri: str = CALLBACK, authorization: str | None = None):
    return token_request(
        client,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
        authorization=authorization,
    )


def _refresh(client: Client, refresh_token: str, **kwargs):
    return token_request(client, {"grant_type": "refresh_token", "refresh_token": refresh_token}, **kwargs)


def test_consent_page_lists_companies_and_users(client: Client, sandbox_world) -> None:
    page = client.get(
        "/sandbox/oauth/authorize", {"client_id": "sandbox-test-client", "redirect_uri": CALLBACK, "state": "x"}
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "Acme Sales" in html and "Globex Trading" in html and "Rob Regular" in html
    assert "Allow and install" in html


def test_allow_redirects_with_code_and_state(client: Client, sandbox_world) -> None:
    code = authorize_code(client, sandbox_world.acme_admin, state="abc123")
    row = AuthorizationCode.objects.get()
    assert row.code_hash == token_digest(code) and code not in row.code_hash
    assert row.expires_at - row.created_at == timedelta(minutes=5)


def test_allow_without_state_returns_no_state(client: Client, sandbox_world) -> None:
    params = f"client_id=sandbox-test-client&redirect_uri={CALLBACK}"
    response = client.post(
        f"/sandbox/oauth/authorize?{params}", {"user_id": sandbox_world.acme_admin.pk, "decision": "allow"}
    )
    query = parse_qs(urlsplit(response["Location"]).query)
    assert response["Location"].startswith(CALLBACK)
    assert "code" in query and "state" not in query


def test_deny_redirects_with_user_denied_and_state(client: Client, sandbox_world) -> None:
    params = f"client_id=sandbox-test-client&redirect_uri={CALLBACK}&state=s1"
    response = client.post(
        f"/sandbox/oauth/authorize?{params}", {"user_id": sandbox_world.acme_admin.pk, "decision": "deny"}
    )
    assert response.status_code == 302
    assert parse_qs(urlsplit(response["Location"]).query) == {"error": ["user_denied"], "state": ["s1"]}
    assert AuthorizationCode.objects.count() == 0


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "someone-else", "redirect_uri": CALLBACK},
        {"client_id": "sandbox-test-client", "redirect_uri": "https://evil.example/cb"},
    ],
    ids=["unknown-client", "unregistered-redirect"],
)
def test_authorize_refuses_a_bad_client_or_redirect_without_redirecting(client: Client, sandbox_world, params) -> None:
    response = client.get("/sandbox/oauth/authorize", params)
    assert response.status_code == 400
    assert "Location" not in response


def test_code_exchange_returns_pipedrive_shaped_tokens(client: Client, sandbox_world) -> None:
    response = _exchange(client, authorize_code(client, sandbox_world.acme_admin))
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    assert len(body["access_token"]) >= 100
    assert body["scope"] == "base,deals:full,contacts:full,activities:full,users:read,admin"  # comma-separated
    assert body["api_domain"] == "http://testserver/sandbox/acme"
    assert "no-store" in response["Cache-Control"]
    # Only digests at rest.
    assert AccessToken.objects.get().token_hash == token_digest(body["access_token"])
    assert RefreshToken.objects.get().token_hash == token_digest(body["refresh_token"])


def test_regular_user_gets_every_scope_but_admin(client: Client, sandbox_world) -> None:
    body = _exchange(client, authorize_code(client, sandbox_world.acme_regular)).json()
    assert body["scope"] == "base,deals:full,contacts:full,activities:full,users:read"


def test_access_token_lifetime_is_configurable(client: Client, sandbox_world, settings) -> None:
    settings.SANDBOX_ACCESS_TOKEN_LIFETIME = 5
    assert _exchange(client, authorize_code(client, sandbox_world.acme_admin)).json()["expires_in"] == 5


def test_code_is_single_use(client: Client, sandbox_world) -> None:
    code = authorize_code(client, sandbox_world.acme_admin)
    assert _exchange(client, code).status_code == 200
    again = _exchange(client, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_code_expires_after_five_minutes(client: Client, sandbox_world) -> None:
    code = authorize_code(client, sandbox_world.acme_admin)
    AuthorizationCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _exchange(client, code)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_redirect_uri_must_match_the_authorization(client: Client, sandbox_world) -> None:
    code = authorize_code(client, sandbox_world.acme_admin)
    response = _exchange(client, code, redirect_uri="http://testserver/elsewhere")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"  # oauthlib's MismatchingRedirectURIError
    assert AccessToken.objects.count() == 0


def test_wrong_client_secret_is_invalid_client(client: Client, sandbox_world) -> None:
    code = authorize_code(client, sandbox_world.acme_admin)
    response = _exchange(client, code, authorization=basic(client_secret="wrong"))
    # Documented choice: 401 (RFC 6749 §5.2 allows it for Basic auth), JSON error invalid_client.
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    missing = _exchange(client, code, authorization="")
    assert missing.status_code == 401 and missing.json()["error"] == "invalid_client"


def test_unsupported_grant_type(client: Client, sandbox_world) -> None:
    response = token_request(client, {"grant_type": "password", "username": "a", "password": "b"})
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


def test_refresh_returns_the_same_refresh_token_and_extends_its_window(client: Client, sandbox_world) -> None:
    first = _exchange(client, authorize_code(client, sandbox_world.acme_admin)).json()
    RefreshToken.objects.update(last_used_at=timezone.now() - timedelta(days=59))
    response = _refresh(client, first["refresh_token"])
    assert response.status_code == 200
    body = response.json()
    assert body["refresh_token"] == first["refresh_token"]  # stable
    assert body["access_token"] != first["access_token"]
    assert body["api_domain"] == first["api_domain"] and body["scope"] == first["scope"]
    row = RefreshToken.objects.get()
    assert row.expires_at > timezone.now() + timedelta(days=59, hours=23)
    assert AccessToken.objects.filter(refresh_token=row).count() == 2


def test_refresh_token_dies_after_sixty_days_unused(client: Client, sandbox_world) -> None:
    first = _exchange(client, authorize_code(client, sandbox_world.acme_admin)).json()
    RefreshToken.objects.update(last_used_at=timezone.now() - timedelta(days=60, seconds=1))
    response = _refresh(client, first["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_unknown_refresh_token_is_invalid_grant(client: Client, sandbox_world) -> None:
    response = _refresh(client, "v1r:not-a-token")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_revoking_the_refresh_token_uninstalls_the_app_for_that_user(client: Client, sandbox_world, api) -> None:
    tokens = _exchange(client, authorize_code(client, sandbox_world.acme_admin)).json()
    other = _exchange(client, authorize_code(client, sandbox_world.acme_regular)).json()
    created = api(
        "POST",
        "acme",
        "/api/v1/webhooks",
        tokens["access_token"],
        body={"subscription_url": "https://app.example/hook", "event_action": "*", "event_object": "deal", "name": "x"},
    )
    assert created.status_code == 201
    response = client.post(
        "/sandbox/oauth/revoke",
        f"token={tokens['refresh_token']}&token_type_hint=refresh_token",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=basic(),
    )
    assert response.status_code == 200
    assert _refresh(client, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert api("GET", "acme", "/api/v1/users/me", tokens["access_token"]).status_code == 401
    webhook = Webhook.objects.get()
    assert webhook.remove_time is not None and "uninstalled" in webhook.remove_reason
    # Another user's install is untouched.
    assert api("GET", "acme", "/api/v1/users/me", other["access_token"]).status_code == 200


def test_revoking_an_access_token_kills_only_that_token(client: Client, sandbox_world, api) -> None:
    tokens = _exchange(client, authorize_code(client, sandbox_world.acme_admin)).json()
    response = client.post(
        "/sandbox/oauth/revoke",
        f"token={tokens['access_token']}&token_type_hint=access_token",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=basic(),
    )
    assert response.status_code == 200
    assert api("GET", "acme", "/api/v1/users/me", tokens["access_token"]).status_code == 401
    assert _refresh(client, tokens["refresh_token"]).status_code == 200


def test_revoking_an_unknown_token_is_still_200(client: Client, sandbox_world) -> None:
    response = client.post(
        "/sandbox/oauth/revoke",
        "token=nobody-knows-this&token_type_hint=refresh_token",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=basic(),
    )
    assert response.status_code == 200
