"""Token refresh under a lease: no lock across the network, bounded waits, failures remembered.

Counts calls to the double's token endpoint instead of timing anything.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from pipedrive_app.core.locks import TransactionAroundCall
from pipedrive_app.installations.models import Installation, LifecycleEvent
from pipedrive_app.installations.services import (
    TokenRefreshFailed,
    TokenRefreshPending,
    installation_client,
    installation_token_refresh,
    installation_uninstall,
)


def _expires_in(installation: Installation, seconds: int) -> None:
    Installation.objects.filter(pk=installation.pk).update(
        access_token_expires_at=timezone.now() + timedelta(seconds=seconds)
    )


def _hold_lease(installation: Installation) -> None:
    """As if another process were in the middle of a refresh."""
    Installation.objects.filter(pk=installation.pk).update(
        refresh_lease_until=timezone.now() + timedelta(minutes=1), refresh_lease_id="someone-else"
    )


def _token_calls(pipedrive) -> int:
    return pipedrive.grants.count("refresh_token")


def _wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.django_db
def test_a_failed_refresh_is_remembered_so_the_next_callers_do_not_call_again(pipedrive, install_user) -> None:
    installation = install_user()
    _expires_in(installation, -60)
    pipedrive.fail_next("/oauth/token", status=503)

    with pytest.raises(TokenRefreshFailed):
        installation_token_refresh(installation_id=installation.pk)
    calls = _token_calls(pipedrive)
    for _ in range(5):
        with pytest.raises(TokenRefreshFailed, match="moments ago"):
            installation_token_refresh(installation_id=installation.pk)
    assert _token_calls(pipedrive) == calls == 1

    # Once the memory has passed, the endpoint is asked again (and now answers).
    Installation.objects.filter(pk=installation.pk).update(refresh_blocked_until=timezone.now())
    refreshed = installation_token_refresh(installation_id=installation.pk)
    assert _token_calls(pipedrive) == 2
    assert refreshed.refresh_blocked_until is None and refreshed.refresh_lease_id == ""


@pytest.mark.django_db
def test_a_still_valid_token_is_used_while_someone_else_refreshes(pipedrive, install_user) -> None:
    installation = install_user()
    _expires_in(installation, 120)  # inside the refresh margin, still valid
    _hold_lease(installation)

    current = installation_token_refresh(installation_id=installation.pk)

    assert current.access_token == installation.access_token
    assert _token_calls(pipedrive) == 0


@pytest.mark.django_db
def test_a_still_valid_token_is_used_when_the_refresh_fails(pipedrive, install_user) -> None:
    installation = install_user()
    _expires_in(installation, 120)
    pipedrive.fail_next("/oauth/token", status=500)

    me = installation_client(installation=Installation.objects.get(pk=installation.pk)).get_current_user()

    assert me.id == installation.pipedrive_user_id
    assert _token_calls(pipedrive) == 1
    assert Installation.objects.get(pk=installation.pk).refresh_failures == 1


@pytest.mark.django_db
def test_waiting_for_someone_elses_refresh_is_bounded(pipedrive, install_user) -> None:
    installation = install_user()
    _expires_in(installation, -60)
    _hold_lease(installation)

    with pytest.raises(TokenRefreshPending):
        installation_token_refresh(installation_id=installation.pk, wait_seconds=0.3)
    assert _token_calls(pipedrive) == 0


@pytest.mark.django_db
def test_pipedrive_is_never_called_inside_a_transaction(pipedrive, install_user) -> None:
    installation = install_user()
    calls = len(pipedrive.requests)

    with pytest.raises(TransactionAroundCall), transaction.atomic():
        installation_client(installation=installation).get_current_user()
    _expires_in(installation, -60)
    with pytest.raises(TransactionAroundCall), transaction.atomic():
        installation_token_refresh(installation_id=installation.pk)

    assert len(pipedrive.requests) == calls
    assert Installation.objects.get(pk=installation.pk).refresh_lease_id == ""  # rolled back with the block


@pytest.mark.django_db(transaction=True)
def test_a_caller_with_a_budget_leaves_the_slow_refresh_to_finish_in_the_background(pipedrive, install_user) -> None:
    installation = install_user()
    old = installation.access_token
    _expires_in(installation, -60)
    pipedrive.refresh_delay = 1.0

    with pytest.raises(TokenRefreshPending):
        installation_token_refresh(installation_id=installation.pk, wait_seconds=0.2)

    assert _wait_for(lambda: Installation.objects.get(pk=installation.pk).access_token != old)
    stored = Installation.objects.get(pk=installation.pk)
    assert stored.refresh_lease_id == "" and stored.last_refresh_error == ""
    assert _token_calls(pipedrive) == 1
    # The next caller simply uses it.
    assert installation_token_refresh(installation_id=installation.pk).access_token == stored.access_token
    assert _token_calls(pipedrive) == 1


@pytest.mark.django_db(transaction=True)
def test_a_refresh_that_ends_after_an_uninstall_stores_nothing(pipedrive, install_user) -> None:
    installation = install_user(1001, 501)
    install_user(1001, 502)  # keeps the company, so the row stays and could be written back
    _expires_in(installation, -60)
    pipedrive.refresh_delay = 1.0
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            installation_token_refresh(installation_id=installation.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=refresh)
    thread.start()
    assert _wait_for(lambda: _token_calls(pipedrive) == 1)
    installation_uninstall(pipedrive_company_id=1001, pipedrive_user_id=501, source=LifecycleEvent.Source.PIPEDRIVE)
    thread.join(timeout=30)

    stored = Installation.objects.get(pk=installation.pk)
    assert stored.status == Installation.Status.UNINSTALLED
    assert stored.access_token is None and stored.refresh_token is None
    assert len(errors) == 1 and "uninstalled" in str(errors[0])
