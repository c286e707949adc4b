from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from pipedrive_app.installations import tasks
from pipedrive_app.installations.models import Installation
from pipedrive_app.installations.services import (
    InstallationNotActive,
    NeedsReauth,
    TokenRefreshFailed,
    installation_client,
    installation_token_refresh,
)

pytestmark = pytest.mark.django_db


def _expire_soon(installation: Installation, *, seconds: int = 60) -> None:
    Installation.objects.filter(pk=installation.pk).update(
        access_token_expires_at=timezone.now() + timedelta(seconds=seconds)
    )
    installation.refresh_from_db()


def test_fresh_token_is_used_without_refresh(pipedrive, install_user) -> None:
    installation = install_user()

    me = installation_client(installation=installation).get_current_user()

    assert me.id == installation.pipedrive_user_id
    assert pipedrive.refresh_count == 0


def test_token_within_the_margin_is_refreshed_before_the_call(pipedrive, install_user, settings) -> None:
    settings.PIPEDRIVE_TOKEN_REFRESH_MARGIN = 300
    installation = install_user()
    old = installation.access_token
    _expire_soon(installation, seconds=120)

    installation_client(installation=installation).get_current_user()

    installation.refresh_from_db()
    assert pipedrive.refresh_count == 1
    assert installation.access_token != old
    assert installation.access_token_expires_at > timezone.now() + timedelta(minutes=50)
    assert installation.last_refresh_error == ""


def test_unauthorized_call_refreshes_once_and_retries(pipedrive, install_user) -> None:
    installation = install_user()
    old = installation.access_token
    pipedrive.expire_access_token(old)  # Pipedrive says 401 although our clock says it is valid

    me = installation_client(installation=installation).get_current_user()

    assert me.id == installation.pipedrive_user_id
    assert pipedrive.refresh_count == 1
    installation.refresh_from_db()
    assert installation.access_token != old
    calls = [(r.method, r.path) for r in pipedrive.requests if r.path != "/oauth/token"]
    assert calls[-2:] == [("GET", "/api/v1/users/me"), ("GET", "/api/v1/users/me")]


def test_stale_token_refresh_is_skipped_when_someone_else_already_refreshed(pipedrive, install_user) -> None:
    installation = install_user()
    stale = installation.access_token
    installation_token_refresh(installation_id=installation.pk, force=True)
    assert pipedrive.refresh_count == 1

    again = installation_token_refresh(installation_id=installation.pk, stale_access_token=stale)

    assert pipedrive.refresh_count == 1  # the stored token was already newer than the stale one
    assert again.access_token != stale


def test_invalid_grant_marks_needs_reauth(pipedrive, install_user) -> None:
    installation = install_user(1001, 501)
    pipedrive.revoke_all(1001, 501)
    _expire_soon(installation)

    with pytest.raises(NeedsReauth):
        installation_client(installation=installation).get_current_user()

    installation.refresh_from_db()
    assert installation.status == Installation.Status.NEEDS_REAUTH
    assert installation.access_token is None
    assert "reinstall" in installation.last_refresh_error
    # Further use fails fast, without calling Pipedrive again.
    grants = len(pipedrive.grants)
    with pytest.raises(InstallationNotActive):
        installation_client(installation=installation).get_current_user()
    assert len(pipedrive.grants) == grants


@pytest.mark.parametrize(("status", "delay"), [(500, 0.0), (503, 0.0), (200, 5.0)], ids=["500", "503", "timeout"])
def test_network_failure_during_refresh_leaves_tokens_untouched(pipedrive, install_user, status, delay) -> None:
    installation = install_user()
    before = (installation.access_token, installation.refresh_token)
    _expire_soon(installation, seconds=10)  # too close to expiry to be handed out
    pipedrive.fail_next("/oauth/token", status=status, delay=delay)

    with pytest.raises(TokenRefreshFailed):
        installation_client(installation=installation).get_current_user()

    installation.refresh_from_db()
    assert (installation.access_token, installation.refresh_token) == before
    assert installation.status == Installation.Status.ACTIVE
    assert installation.refresh_failures == 1 and installation.last_refresh_error


def test_whatever_refresh_token_comes_back_is_stored(pipedrive, install_user) -> None:
    installation = install_user()
    pipedrive.fail_next(
        "/oauth/token",
        status=200,
        body={
            "access_token": "a" * 120,
            "token_type": "Bearer",
            "refresh_token": "2:rotated-refresh-token-value",
            "scope": "base,admin",
            "expires_in": 3599,
            "api_domain": pipedrive.base_url,
        },
    )

    installation_token_refresh(installation_id=installation.pk, force=True)

    installation.refresh_from_db()
    assert installation.refresh_token == "2:rotated-refresh-token-value"
    assert installation.scopes == ["admin", "base"]


def test_refresh_response_with_disallowed_api_domain_is_not_stored(pipedrive, install_user) -> None:
    installation = install_user()
    before = installation.access_token
    pipedrive.fail_next(
        "/oauth/token",
        status=200,
        body={
            "access_token": "b" * 120,
            "token_type": "Bearer",
            "refresh_token": "x",
            "expires_in": 3599,
            "api_domain": "https://evil.example.com",
        },
    )

    with pytest.raises(TokenRefreshFailed):
        installation_token_refresh(installation_id=installation.pk, force=True)

    installation.refresh_from_db()
    assert installation.access_token == before


def test_periodic_task_refreshes_only_idle_refresh_tokens(pipedrive, install_user, settings) -> None:
    settings.PIPEDRIVE_REFRESH_IDLE_DAYS = 50
    idle = install_user(1001, 501)
    recent = install_user(1001, 502)
    Installation.objects.filter(pk=idle.pk).update(refresh_token_used_at=timezone.now() - timedelta(days=51))
    Installation.objects.filter(pk=recent.pk).update(refresh_token_used_at=timezone.now() - timedelta(days=10))

    queued = tasks.refresh_idle_refresh_tokens.delay().get()

    assert queued == 1
    assert pipedrive.refresh_count == 1
    idle.refresh_from_db()
    recent.refresh_from_db()
    assert idle.refresh_token_used_at > timezone.now() - timedelta(minutes=1)
    assert recent.refresh_token_used_at < timezone.now() - timedelta(days=9)


def test_periodic_refresh_failure_is_recorded_on_the_installation(pipedrive, install_user) -> None:
    idle = install_user(1001, 501)
    Installation.objects.filter(pk=idle.pk).update(refresh_token_used_at=timezone.now() - timedelta(days=55))
    pipedrive.revoke_all(1001, 501)

    tasks.refresh_idle_refresh_tokens.delay()

    idle.refresh_from_db()
    assert idle.status == Installation.Status.NEEDS_REAUTH
    assert idle.last_refresh_error and idle.refresh_failures == 1


def test_uninstalled_installation_cannot_be_used(pipedrive, install_user) -> None:
    installation = install_user(1001, 501)
    install_user(1001, 502)  # keeps the company
    Installation.objects.filter(pk=installation.pk).update(status=Installation.Status.UNINSTALLED)
    installation.refresh_from_db()

    with pytest.raises(InstallationNotActive):
        installation_client(installation=installation).get_current_user()
