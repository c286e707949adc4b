from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from pipedrive_app.installations import signals
from pipedrive_app.installations.models import Company, Installation, LifecycleEvent, OAuthState

from .conftest import start_install

pytestmark = pytest.mark.django_db


def _nothing_stored() -> None:
    assert Company.objects.count() == 0
    assert Installation.objects.count() == 0


def test_install_redirects_to_authorize_with_state_bound_to_browser(client: Client, pipedrive) -> None:
    response = client.get("/oauth/install")

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{pipedrive.base_url}/oauth/authorize"
    query = parse_qs(location.query)
    assert query["client_id"] == [pipedrive.client_id]
    assert query["redirect_uri"] == [f"{settings.APP_BASE_URL}/oauth/callback"]
    assert len(query["state"][0]) >= 32
    assert "scope" not in query  # scopes are fixed per app in Developer Hub
    cookie = response.cookies["pd_oauth_browser"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/oauth/"
    # Nothing is stored until the callback uses the state.
    assert OAuthState.objects.count() == 0


def test_500_install_requests_write_no_row(client: Client, pipedrive) -> None:
    tables_before = (OAuthState.objects.count(), Company.objects.count(), Installation.objects.count())
    for _ in range(500):
        assert Client().get("/oauth/install").status_code == 302

    assert (OAuthState.objects.count(), Company.objects.count(), Installation.objects.count()) == tables_before


def test_a_used_state_leaves_only_hashes(client: Client, pipedrive, install_user) -> None:
    pipedrive.add_company(1, name="A")
    pipedrive.add_user(1, 2)
    state = start_install(client)
    code = pipedrive.issue_code(1, 2, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)
    assert client.get("/oauth/callback", {"code": code, "state": state}).status_code == 302

    row = OAuthState.objects.get()  # a database reader cannot replay the state from it
    assert state not in row.state_hash and row.used_at is not None


def test_states_are_random(client: Client, pipedrive) -> None:
    assert start_install(client) != start_install(client)


def test_install_with_state_stores_company_and_installation(client: Client, pipedrive, install_user) -> None:
    installation = install_user(1001, 501, name="Ann Admin", email="ann@example.com", is_admin=True)

    assert installation.status == Installation.Status.ACTIVE
    assert installation.name == "Ann Admin" and installation.email == "ann@example.com" and installation.is_admin
    assert "admin" in installation.scopes and "base" in installation.scopes
    assert installation.access_token and installation.refresh_token
    assert installation.access_token_expires_at > timezone.now() + timedelta(minutes=50)
    company = installation.company
    assert company.pipedrive_company_id == 1001 and company.name == "Company 1001"
    assert company.api_domain == pipedrive.base_url
    assert LifecycleEvent.objects.filter(kind="installed", pipedrive_company_id=1001).count() == 1


def test_success_page_says_what_was_installed_and_links_back(client: Client, pipedrive) -> None:
    pipedrive.add_company(7, name="Acme Ltd", domain="acme")
    pipedrive.add_user(7, 70, name="Bea", is_admin=False, scopes="base,deals:read")
    state = start_install(client)
    code = pipedrive.issue_code(7, 70, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)

    response = client.get("/oauth/callback", {"code": code, "state": state}, follow=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Acme Ltd" in page and "Bea" in page and "deals:read" in page
    assert f'href="{pipedrive.base_url}"' in page


def test_success_page_with_a_tampered_link_shows_nothing(client: Client, pipedrive, install_user) -> None:
    install_user()
    response = client.get("/oauth/installed/", {"t": "forged"})
    assert response.status_code == 404


def test_marketplace_install_without_state_is_accepted_by_default(client: Client, pipedrive, install_user) -> None:
    installation = install_user(with_state=False)
    assert installation.status == Installation.Status.ACTIVE


def test_no_state_is_refused_when_state_is_required(client: Client, pipedrive, settings) -> None:
    settings.PIPEDRIVE_REQUIRE_STATE = True
    pipedrive.add_company(1, name="A")
    pipedrive.add_user(1, 2)
    code = pipedrive.issue_code(1, 2, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)

    response = client.get("/oauth/callback", {"code": code})

    assert response.status_code == 400
    _nothing_stored()
    assert pipedrive.grants == []  # the code was never even exchanged


def test_forged_state_is_refused(client: Client, pipedrive) -> None:
    start_install(client)  # the browser has a binding cookie, but not for this state
    pipedrive.add_company(1, name="A")
    pipedrive.add_user(1, 2)
    code = pipedrive.issue_code(1, 2, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)

    response = client.get("/oauth/callback", {"code": code, "state": "attacker-chosen-state"})

    assert response.status_code == 400
    assert "no longer valid" in response.content.decode()
    assert "not issued by this app" in response.content.decode()
    _nothing_stored()
    assert pipedrive.grants == []
    assert OAuthState.objects.count() == 0


def test_tampered_state_is_refused(client: Client, pipedrive) -> None:
    pipedrive.add_company(1, name="A")
    pipedrive.add_user(1, 2)
    state = start_install(client)
    nonce, _, rest = state.partition(".")
    tampered = ("A" if nonce[0] != "A" else "B") + nonce[1:] + "." + rest
    code = pipedrive.issue_code(1, 2, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)

    response = client.get("/oauth/callback", {"code": code, "state": tampered})

    assert response.status_code == 400 and "not issued by this app" in response.content.decode()
    _nothing_stored()


def test_replayed_state_is_refused(client: Client, pipedrive, install_user) -> None:
    pipedrive.add_company(1, name="A")
    pipedrive.add_user(1, 2)
    state = start_install(client)
    browser_key = client.cookies["pd_oauth_browser"].value
    first = pipedrive.issue_code(1, 2, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)
    assert client.get("/oauth/callback", {"code": first, "state": state}).status_code == 302
    client.cookies["pd_oauth_browser"] = browser_key  # even with the rightful cookie restored
    second = pipedrive.issue_code(1, 2, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)

    response = client.get("/oauth/callback", {"code": second, "state": state})

    assert response.status_code == 400
    assert "already used" in response.content.decode()
    assert pipedrive.grants == ["authorization_code"]  # the replay never reached the token endpoint


def test_expired_state_is_refused(client: Client, pipedrive) -> None:
    pipedrive.add_company(1, name="A")
    pipedrive.add_user(1, 2)
    issued_at = time.time() - 11 * 60  # the state's lifetime is 10 minutes
    with mock.patch("django.core.signing.time.time", return_value=issued_at):
        state = start_install(client)
    code = pipedrive.issue_code(1, 2, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)

    response = client.get("/oauth/callback", {"code": code, "state": state})

    assert response.status_code == 400
    assert "expired" in response.content.decode()
    _nothing_stored()


def test_state_from_another_browser_is_refused(client: Client, pipedrive) -> None:
    pipedrive.add_company(1, name="A")
    pipedrive.add_user(1, 2)
    state = start_install(client)
    other_browser = Client()
    code = pipedrive.issue_code(1, 2, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)

    response = other_browser.get("/oauth/callback", {"code": code, "state": state})

    assert response.status_code == 400
    assert "another browser" in response.content.decode()
    _nothing_stored()
    # The rightful browser can still finish: a rejected attempt does not burn the state.
    assert client.get("/oauth/callback", {"code": code, "state": state}).status_code == 302


def test_user_denied_shows_a_friendly_page(client: Client, pipedrive) -> None:
    state = start_install(client)
    response = client.get("/oauth/callback", {"error": "user_denied", "state": state})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Installation cancelled" in page and 'href="/oauth/install"' in page
    _nothing_stored()


def test_other_errors_show_an_error_page(client: Client, pipedrive) -> None:
    response = client.get("/oauth/callback", {"error": "access_denied"})
    assert response.status_code == 400
    _nothing_stored()


def test_missing_code_is_refused(client: Client, pipedrive) -> None:
    assert client.get("/oauth/callback").status_code == 400
    _nothing_stored()


def test_code_rejected_by_token_endpoint(client: Client, pipedrive) -> None:
    """A code the token endpoint refuses (invalid_grant) is the request's fault: 400, not "Pipedrive is down"."""
    response = client.get("/oauth/callback", {"code": "not-a-code-pipedrive-issued"})

    assert response.status_code == 400
    page = response.content.decode()
    assert "Start the installation again" in page
    _nothing_stored()
    assert pipedrive.grants == ["authorization_code"]


@pytest.mark.parametrize(
    "code",
    ["x" * 2049, "abc\ndef", "caf\u00e9", "\x00", "tab\there", "\u00b2"],
    ids=["over-long", "newline", "non-ascii", "nul", "tab", "superscript"],
)
def test_malformed_code_is_400_before_any_call_and_keeps_the_state(client: Client, pipedrive, code) -> None:
    """RFC 6749 A.11: a code is printable ASCII. Anything else is refused unsent, and the state survives."""
    state = start_install(client)

    response = client.get("/oauth/callback", {"code": code, "state": state})

    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    assert pipedrive.grants == []
    _nothing_stored()
    # The same state still completes an install with a real code afterwards.
    pipedrive.add_company(1, name="A")
    pipedrive.add_user(1, 2)
    good = pipedrive.issue_code(1, 2, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)
    assert client.get("/oauth/callback", {"code": good, "state": state}).status_code == 302


@pytest.mark.parametrize(
    ("status", "body", "delay"),
    [
        (500, b"<html>oops</html>", 0.0),
        (503, None, 0.0),
        (200, b"{not json", 0.0),
        (200, {"token_type": "Bearer"}, 0.0),  # no access_token
        (400, {"error": "invalid_client"}, 0.0),
        (200, None, 5.0),  # slower than the app's timeout
    ],
    ids=["500-html", "503", "malformed-json", "no-access-token", "invalid-client", "timeout"],
)
def test_token_endpoint_failures_store_nothing(client: Client, pipedrive, caplog, status, body, delay) -> None:
    pipedrive.add_company(1, name="A")
    pipedrive.add_user(1, 2)
    code = pipedrive.issue_code(1, 2, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)
    pipedrive.fail_next("/oauth/token", status=status, body=body, delay=delay)

    response = client.get("/oauth/callback", {"code": code})

    assert response.status_code == 502
    assert 'href="/oauth/install"' in response.content.decode()
    _nothing_stored()
    assert any("install: token endpoint" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, None), (401, {"success": False, "error": "unauthorized"}), (200, b"[]"), (200, b"garbage")],
    ids=["500", "401", "wrong-shape", "malformed"],
)
def test_users_me_failures_store_nothing(client: Client, pipedrive, status, body) -> None:
    pipedrive.add_company(1, name="A")
    pipedrive.add_user(1, 2)
    code = pipedrive.issue_code(1, 2, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)
    pipedrive.fail_next("/api/v1/users/me", status=status, body=body, times=5)

    response = client.get("/oauth/callback", {"code": code})

    assert response.status_code == 502
    _nothing_stored()


def test_api_domain_outside_allow_list_is_never_sent_a_token(client: Client, pipedrive, settings) -> None:
    settings.PIPEDRIVE_ALLOWED_API_DOMAINS = ["https://*.pipedrive.com"]
    pipedrive.add_company(1, name="A")
    pipedrive.add_user(1, 2)
    code = pipedrive.issue_code(1, 2, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)

    response = client.get("/oauth/callback", {"code": code})

    assert response.status_code == 502
    _nothing_stored()
    assert not [r for r in pipedrive.requests if r.path.startswith("/api/")]


def test_reinstall_updates_tokens_and_reactivates(client: Client, pipedrive, install_user) -> None:
    first = install_user(1001, 501)
    old_token = first.access_token
    Installation.objects.filter(pk=first.pk).update(status=Installation.Status.NEEDS_REAUTH, access_token=None)

    again = install_user(1001, 501)

    assert again.pk == first.pk
    assert again.status == Installation.Status.ACTIVE
    assert again.access_token and again.access_token != old_token
    assert Company.objects.count() == 1
    assert LifecycleEvent.objects.filter(kind="reinstalled").count() == 1


def test_second_user_of_a_company_gets_own_installation(client: Client, pipedrive, install_user) -> None:
    first = install_user(1001, 501, is_admin=True)
    second = install_user(1001, 502, is_admin=False, scopes="base,deals:read")

    assert first.company_id == second.company_id
    assert first.pk != second.pk
    assert not second.is_admin and "admin" not in second.scopes
    assert first.access_token != second.access_token


def test_activation_hook_runs_once_on_commit(
    client: Client, pipedrive, install_user, django_capture_on_commit_callbacks
) -> None:
    seen: list[int] = []

    def receiver(sender: object, *, installation_id: int, **kwargs: object) -> None:
        seen.append(installation_id)

    signals.installation_activated.connect(receiver, dispatch_uid="test.seen")
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            installation = install_user()
    finally:
        signals.installation_activated.disconnect(dispatch_uid="test.seen")
    assert seen == [installation.pk]
    assert len(callbacks) == 1
