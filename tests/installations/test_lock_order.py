"""Uninstall, webhook reconciliation and token refresh of one company, at the same instant, many
times, on PostgreSQL: no deadlock, no error, and a consistent end state every time.

Before the lease (core/locks.py) this could deadlock: a refresh held the Installation row (and the
Company row, through its join) across the token call while an uninstall locked Company then
Installation, and reconciliation held the company's webhook state across its API calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import pytest
from django.db import connection

from pipedrive_app.installations.models import Company, Installation, LifecycleEvent
from pipedrive_app.installations.services import (
    InstallationNotActive,
    installation_token_refresh,
    installation_uninstall,
)
from pipedrive_app.webhooks.models import CompanyWebhookState, Subscription
from pipedrive_app.webhooks.services import company_webhooks_reconcile

ROUNDS = 50


def _run_together(jobs: list[Callable[[], object]]) -> list[BaseException]:
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(job: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            job()
        except InstallationNotActive:
            pass  # refreshing an installation that was just uninstalled: expected, and clean
        except BaseException as exc:
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a job is stuck (deadlock?)"
    return errors


@pytest.mark.django_db(transaction=True)
def test_uninstall_reconcile_and_refresh_of_one_company_run_together_without_deadlock(
    postgres_only, pipedrive, install_user
) -> None:
    pipedrive.refresh_delay = 0.02  # widen the window in which a refresh is in flight
    for round_number in range(ROUNDS):
        company_id = 5000 + round_number
        first = install_user(company_id, 501)
        second = install_user(company_id, 502)
        purge = round_number % 2 == 0  # every other round the last user leaves too: the company is purged

        def uninstall(user_id: int, company_id: int = company_id) -> object:
            return installation_uninstall(
                pipedrive_company_id=company_id, pipedrive_user_id=user_id, source=LifecycleEvent.Source.PIPEDRIVE
            )

        jobs: list[Callable[[], object]] = [
            lambda: uninstall(501),
            partial(company_webhooks_reconcile, company_id=first.company_id),
            partial(installation_token_refresh, installation_id=first.pk, force=True),
            partial(installation_token_refresh, installation_id=second.pk, force=True),
            partial(company_webhooks_reconcile, company_id=first.company_id),
        ]
        if purge:
            jobs.append(lambda: uninstall(502))

        errors = _run_together(jobs)

        assert errors == [], f"round {round_number}: {[f'{type(e).__name__}: {e}' for e in errors]}"
        if purge:
            assert not Company.objects.filter(pk=first.company_id).exists()
            assert not Installation.objects.filter(company_id=first.company_id).exists()
            assert not CompanyWebhookState.objects.filter(company_id=first.company_id).exists()
            assert not Subscription.objects.filter(company_id=first.company_id).exists()
            continue
        company = Company.objects.get(pk=first.company_id)
        assert company.webhooks_lease_id == "" and company.webhooks_lease_until is None
        gone = Installation.objects.get(pk=first.pk)
        assert gone.status == Installation.Status.UNINSTALLED
        assert gone.access_token is None and gone.refresh_token is None  # never written back by a refresh
        kept = Installation.objects.get(pk=second.pk)
        assert kept.status == Installation.Status.ACTIVE and kept.access_token and kept.refresh_token
        assert kept.refresh_lease_id == "" and kept.refresh_lease_until is None
        assert kept.access_token in pipedrive.access_tokens_of(company_id, 502)
