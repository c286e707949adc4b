"""Subscriptions per company: provisioning, reconciliation, ownership, availability."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from pipedrive_app.history.models import ChangeRecord
from pipedrive_app.installations.models import Company, Installation, LifecycleEvent
from pipedrive_app.installations.services import (
    company_settings_update,
    company_uninstall_by_vendor,
    installation_client,
    installation_uninstall,
    installation_uninstall_by_vendor,
)
from pipedrive_app.pipedrive.errors import PipedriveRateLimited
from pipedrive_app.webhooks import tasks
from pipedrive_app.webhooks.models import CompanyWebhookState, InboxEvent, Subscription
from pipedrive_app.webhooks.services import company_webhooks_reconcile
from tests.webhooks.conftest import load_event

COMPANY = 1001


@pytest.fixture
def install(install_user, django_capture_on_commit_callbacks):
    """install_user with the after-commit hooks run, as in production."""

    def run(*args, **kwargs) -> Installation:
        with django_capture_on_commit_callbacks(execute=True):
            return install_user(*args, **kwargs)

    return run


def _ours(pipedrive, company_id: int = COMPANY) -> list[dict]:
    prefix = f"{settings.APP_BASE_URL}/webhooks/pipedrive/"
    return [w for w in pipedrive.company_webhooks(company_id) if w["subscription_url"].startswith(prefix)]


def _state(company_id: int = COMPANY) -> CompanyWebhookState:
    return CompanyWebhookState.objects.select_related("owner").get(company__pipedrive_company_id=company_id)


@pytest.mark.django_db
def test_install_by_an_admin_provisions_subscriptions_with_basic_auth(pipedrive, install) -> None:
    admin = install(COMPANY, 501)
    state = _state()
    webhooks = _ours(pipedrive)
    assert sorted((w["event_object"], w["event_action"], w["version"]) for w in webhooks) == [
        ("deal", "*", "2.0"),
        ("person", "*", "2.0"),
    ]
    for webhook in webhooks:
        assert webhook["subscription_url"] == f"{settings.APP_BASE_URL}/webhooks/pipedrive/{state.url_key}/"
        assert webhook["http_auth_user"] == state.http_auth_user
        assert webhook["http_auth_password"] == state.http_auth_password
        assert webhook["owner_id"] == 501 and webhook["name"].startswith("Change history")
    assert len(state.url_key) >= 40 and len(state.http_auth_password) >= 40
    assert state.status == "available" and state.owner_id == admin.pk
    assert {s.event_object: s.pipedrive_webhook_id for s in Subscription.objects.all()} == {
        w["event_object"]: w["id"] for w in webhooks
    }
    # The credentials are encrypted at rest.
    with connection.cursor() as cursor:
        cursor.execute("SELECT http_auth_password FROM webhooks_companywebhookstate")
        assert state.http_auth_password not in cursor.fetchone()[0]


@pytest.mark.django_db
def test_settings_change_reconciles_and_pipeline_objects_use_v2(
    pipedrive, install, django_capture_on_commit_callbacks
) -> None:
    admin = install(COMPANY, 501)
    with django_capture_on_commit_callbacks(execute=True):
        company_settings_update(
            company=admin.company,
            tracked_entities=["deal", "stage", "organization"],
            history_retention_days=30,
            updated_by=admin,
        )
    assert sorted((w["event_object"], w["version"]) for w in _ours(pipedrive)) == [
        ("deal", "2.0"),
        ("organization", "2.0"),
        ("stage", "2.0"),
    ]
    assert sorted(Subscription.objects.values_list("event_object", flat=True)) == ["deal", "organization", "stage"]


@pytest.mark.django_db
def test_reconcile_recreates_dropped_removes_duplicates_and_strays_and_keeps_foreign(pipedrive, install) -> None:
    admin = install(COMPANY, 501)
    state = _state()
    deal, person = sorted(_ours(pipedrive), key=lambda w: w["event_object"])
    pipedrive.drop_webhook(deal["id"])  # Pipedrive deleted it (3 days without success)
    client = installation_client(installation=admin)
    duplicate = client.create_webhook(
        subscription_url=person["subscription_url"],
        event_action="*",
        event_object="person",
        name="dup",
        http_auth_user=state.http_auth_user,
        http_auth_password=state.http_auth_password,
    )
    old_key = client.create_webhook(
        subscription_url=f"{settings.APP_BASE_URL}/webhooks/pipedrive/old-key/",
        event_action="*",
        event_object="deal",
        name="old",
    )
    untracked = client.create_webhook(
        subscription_url=person["subscription_url"], event_action="*", event_object="activity", name="untracked"
    )
    foreign = client.create_webhook(
        subscription_url="https://elsewhere.example/hook", event_action="*", event_object="deal", name="x"
    )
    client.close()
    pipedrive._companies[COMPANY].webhooks[person["id"]].update(
        {"last_http_status": 200, "last_delivery_time": "2025-03-02T10:00:00.000Z"}
    )

    result = company_webhooks_reconcile(company_id=admin.company_id)

    assert result.created == ["deal"]
    assert sorted(result.deleted) == sorted([duplicate.id, old_key.id, untracked.id])
    remaining = {w["id"] for w in pipedrive.company_webhooks(COMPANY)}
    assert person["id"] in remaining and foreign.id in remaining and len(_ours(pipedrive)) == 2
    row = Subscription.objects.get(event_object="person")
    assert row.last_http_status == 200 and row.last_delivery_time and row.last_delivery_time.year == 2025
    # Idempotent: a second run changes nothing.
    again = company_webhooks_reconcile(company_id=admin.company_id)
    assert (again.created, again.deleted) == ([], [])


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_reconciliations_create_no_duplicates(pipedrive, install_user) -> None:
    admin = install_user(COMPANY, 501)
    for webhook in _ours(pipedrive):  # (provisioned on install when the hooks ran)
        pipedrive.drop_webhook(webhook["id"])
    posts_before = len(pipedrive.requests_to("/api/v1/webhooks", "POST"))
    if connection.vendor != "postgresql":
        # SQLite serialises writers; the row lock is PostgreSQL's job (postgres run below).
        company_webhooks_reconcile(company_id=admin.company_id)
        company_webhooks_reconcile(company_id=admin.company_id)
    else:
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                barrier.wait()
                company_webhooks_reconcile(company_id=admin.company_id)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
    assert sorted(w["event_object"] for w in _ours(pipedrive)) == ["deal", "person"]
    assert len(pipedrive.requests_to("/api/v1/webhooks", "POST")) - posts_before == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_reconciliations_on_postgres(postgres_only, pipedrive, install_user) -> None:
    test_two_concurrent_reconciliations_create_no_duplicates(pipedrive, install_user)


@pytest.mark.django_db
def test_owner_uninstall_moves_ownership_then_none_left_is_unavailable_then_recovers(
    pipedrive, install, client, django_capture_on_commit_callbacks
) -> None:
    owner = install(COMPANY, 501)
    other_admin = install(COMPANY, 502)
    install(COMPANY, 503, is_admin=False)
    assert _state().owner_id == owner.pk

    # The owner uninstalls in Pipedrive: their webhooks go with them; Pipedrive tells the app.
    pipedrive.revoke_all(COMPANY, 501)
    assert _ours(pipedrive) == []
    headers, body = pipedrive.uninstall_notification(COMPANY, 501)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.generic(
            "DELETE",
            "/oauth/callback",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=headers["Authorization"],
        )
    assert response.status_code < 300
    assert _state().owner_id == other_admin.pk and _state().status == "available"
    assert sorted((w["event_object"], w["owner_id"]) for w in _ours(pipedrive)) == [("deal", 502), ("person", 502)]

    # The last admin leaves; a regular user stays: nobody may manage webhooks.
    pipedrive.revoke_all(COMPANY, 502)
    with django_capture_on_commit_callbacks(execute=True):
        installation_uninstall(
            pipedrive_company_id=COMPANY, pipedrive_user_id=502, source=LifecycleEvent.Source.PIPEDRIVE
        )
    state = _state()
    assert state.status == "unavailable" and state.owner_id is None
    assert "admin" in state.unavailable_reason
    assert not Subscription.objects.exclude(pipedrive_webhook_id=None).exists()

    # An admin installs: subscriptions are back.
    newcomer = install(COMPANY, 504)
    state = _state()
    assert state.status == "available" and state.owner_id == newcomer.pk and state.unavailable_reason == ""
    assert sorted(w["owner_id"] for w in _ours(pipedrive)) == [504, 504]


@pytest.mark.django_db
def test_pipedrive_403_marks_unavailable_with_the_reason(pipedrive, install) -> None:
    admin = install(COMPANY, 501)
    pipedrive.add_user(COMPANY, 501, is_admin=False)  # demoted in Pipedrive
    result = company_webhooks_reconcile(company_id=admin.company_id)
    state = _state()
    assert result.status == "unavailable" and state.status == "unavailable"
    assert "403" in state.unavailable_reason and "permission" in state.unavailable_reason


@pytest.mark.django_db
def test_non_admin_install_does_not_provision(pipedrive, install) -> None:
    install(COMPANY, 503, is_admin=False)
    assert _ours(pipedrive) == []
    assert _state().status == "unavailable"
    assert len(pipedrive.requests_to("/api/v1/webhooks")) == 0


@pytest.mark.django_db
def test_rate_limit_is_retried_later_with_the_carried_wait(pipedrive, install, monkeypatch) -> None:
    admin = install(COMPANY, 501)
    pipedrive.rate_limit_next("/api/v1/webhooks", retry_after=120, reset=None)
    with pytest.raises(PipedriveRateLimited) as caught:
        company_webhooks_reconcile(company_id=admin.company_id)
    assert caught.value.retry_after == pytest.approx(120, abs=1)

    seen: dict[str, float] = {}

    def fake_retry(*, countdown, exc):
        seen["countdown"] = countdown
        return RuntimeError("retry scheduled")

    monkeypatch.setattr(tasks.reconcile_company_webhooks, "retry", fake_retry)
    pipedrive.rate_limit_next("/api/v1/webhooks", retry_after=120, reset=None)
    with pytest.raises(RuntimeError, match="retry scheduled"):
        tasks.reconcile_company_webhooks.run(admin.company_id)
    assert seen["countdown"] == pytest.approx(120, abs=1)


@pytest.mark.django_db
def test_vendor_uninstall_deletes_subscriptions_before_revoking_then_moves_ownership(
    pipedrive, install, django_capture_on_commit_callbacks
) -> None:
    owner = install(COMPANY, 501)
    install(COMPANY, 502)
    owned = {w["id"] for w in _ours(pipedrive)}
    with django_capture_on_commit_callbacks(execute=True):
        installation_uninstall_by_vendor(installation=owner)
    paths = [(r.method, r.path) for r in pipedrive.requests]
    revoke_at = paths.index(("POST", "/oauth/revoke"))
    deletes = [i for i, (m, p) in enumerate(paths) if m == "DELETE" and p.startswith("/api/v1/webhooks/")]
    assert {int(paths[i][1].rsplit("/", 1)[1]) for i in deletes if i < revoke_at} == owned
    assert sorted(w["owner_id"] for w in _ours(pipedrive)) == [502, 502]


@pytest.mark.django_db
def test_last_uninstall_purges_the_company_webhook_data_inbox_and_history(pipedrive, install, post_event) -> None:
    admin = install(COMPANY, 501)
    assert post_event(_state(), load_event("deal.change")).status_code == 200
    assert InboxEvent.objects.exists() and ChangeRecord.objects.exists() and Subscription.objects.exists()
    company_uninstall_by_vendor(company=admin.company)
    assert not Company.objects.exists()
    assert not CompanyWebhookState.objects.exists() and not Subscription.objects.exists()
    assert not InboxEvent.objects.exists() and not ChangeRecord.objects.exists()
    assert _ours(pipedrive) == []


@pytest.mark.django_db
def test_reconcile_command_for_one_company_and_all(pipedrive, install_user, capsys) -> None:
    install_user(COMPANY, 501)
    install_user(2002, 601)
    assert _ours(pipedrive) == [] and _ours(pipedrive, 2002) == []
    call_command("reconcile_webhooks", "--company", str(COMPANY))
    assert len(_ours(pipedrive)) == 2 and _ours(pipedrive, 2002) == []
    call_command("reconcile_webhooks")
    assert len(_ours(pipedrive, 2002)) == 2 and len(_ours(pipedrive)) == 2
    out = capsys.readouterr().out
    assert "available" in out
