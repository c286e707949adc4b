"""Every operator action: a POST that writes one audit row, creates an action row and runs the
same service the background tasks use (eagerly here, on commit)."""

from __future__ import annotations

import pytest
from django.test import Client

from pipedrive_app.dashboard.models import AuditEntry, OperatorAction
from pipedrive_app.dashboard.services import uninstall_confirmation_matches
from pipedrive_app.dashboard.tasks import run_operator_action
from pipedrive_app.installations.models import Company, Installation, LifecycleEvent
from pipedrive_app.webhooks.models import CompanyWebhookState, InboxEvent, Subscription

from .conftest import make_event

pytestmark = pytest.mark.django_db


def post_action(client: Client, company: Company, action: str, capture, **data: str):
    with capture(execute=True):
        return client.post(f"/dashboard/companies/{company.pk}/actions/{action}/", data)


def only_audit_entry() -> AuditEntry:
    entries = list(AuditEntry.objects.all())
    assert len(entries) == 1, entries
    return entries[0]


def test_refresh_tokens(operator_client, operator, install_user, django_capture_on_commit_callbacks) -> None:
    installation = install_user(company_id=4001, user_id=11)
    old_token = installation.access_token
    response = post_action(operator_client, installation.company, "refresh-tokens", django_capture_on_commit_callbacks)
    assert response.status_code == 302 and response["Location"].endswith("#actions")
    action = OperatorAction.objects.get()
    assert (action.kind, action.status, action.result) == (
        "refresh_tokens",
        "done",
        "1 refreshed, 0 need re-auth, 0 failed",
    )
    assert action.requested_by == operator and action.started_at and action.finished_at
    installation.refresh_from_db()
    assert installation.access_token != old_token
    entry = only_audit_entry()
    assert (entry.actor, entry.action, entry.target_type, entry.target_id, entry.result) == (
        operator,
        "refresh_tokens",
        "company",
        "4001",
        "accepted",
    )
    assert entry.operator_action == action and entry.outcome == "done"
    page = operator_client.get(f"/dashboard/companies/{installation.company.pk}/").content.decode()
    assert "1 refreshed" in page


def test_refresh_tokens_failure_and_needs_reauth(
    operator_client, install_user, pipedrive, django_capture_on_commit_callbacks
) -> None:
    first = install_user(company_id=4002, user_id=11)
    install_user(company_id=4002, user_id=12)
    pipedrive.revoke_all(4002, 12)
    pipedrive.fail_next("/oauth/token", status=503)  # the first refresh (user 11) fails
    post_action(operator_client, first.company, "refresh-tokens", django_capture_on_commit_callbacks)
    action = OperatorAction.objects.get()
    assert action.status == "failed"
    assert action.result.startswith("0 refreshed, 1 need re-auth, 1 failed")
    assert Installation.objects.get(company=first.company, pipedrive_user_id=12).status == "needs_reauth"
    assert only_audit_entry().outcome == "failed"


def test_reconcile_webhooks(operator_client, install_user, pipedrive, django_capture_on_commit_callbacks) -> None:
    installation = install_user(company_id=4003, user_id=11)
    post_action(operator_client, installation.company, "reconcile-webhooks", django_capture_on_commit_callbacks)
    action = OperatorAction.objects.get()
    assert action.status == "done", action.result
    assert action.result.startswith("available: 2 created")
    assert CompanyWebhookState.objects.get(company=installation.company).status == "available"
    assert Subscription.objects.filter(company=installation.company).count() == 2
    assert len(pipedrive.company_webhooks(4003)) == 2
    assert only_audit_entry().action == "reconcile_webhooks"


def test_reconcile_webhooks_unavailable_is_a_failed_action(
    operator_client, install_user, django_capture_on_commit_callbacks
) -> None:
    installation = install_user(company_id=4004, user_id=11, is_admin=False, scopes="base,deals:full")
    post_action(operator_client, installation.company, "reconcile-webhooks", django_capture_on_commit_callbacks)
    action = OperatorAction.objects.get()
    assert action.status == "failed" and action.result.startswith("unavailable")


def test_replay_dead_events(operator_client, make_company, django_capture_on_commit_callbacks) -> None:
    company = make_company(events=(InboxEvent.Status.DEAD, InboxEvent.Status.DEAD, InboxEvent.Status.PROCESSED))
    post_action(operator_client, company, "replay-dead-events", django_capture_on_commit_callbacks)
    action = OperatorAction.objects.get()
    assert action.status == "done"
    assert action.result.startswith("2 dead event(s) replayed")
    # Each replayed event got a fresh set of attempts and was processed again.
    for event in InboxEvent.objects.filter(company=company).exclude(attempts=1):
        assert event.attempts < 6
    assert only_audit_entry().action == "replay_dead_events"


@pytest.mark.django_db(transaction=True)  # on-commit work runs inside the request, as in production
def test_replay_one_dead_event(operator_client, make_company) -> None:
    company = make_company()
    event = make_event(company=company, status=InboxEvent.Status.DEAD)
    response = operator_client.post(f"/dashboard/events/{event.pk}/replay/")
    assert response.status_code == 302 and response["Location"] == f"/dashboard/events/{event.pk}/"
    action = OperatorAction.objects.get()
    assert (action.kind, action.event_id, action.status) == ("replay_event", event.pk, "done")
    event.refresh_from_db()
    assert event.attempts < 6
    entry = only_audit_entry()
    assert (entry.target_type, entry.target_id, entry.result) == ("event", str(event.pk), "accepted")
    assert "Replay: done" in operator_client.get(response["Location"]).content.decode()


def test_replay_of_a_processed_event_is_refused(operator_client, make_company) -> None:
    event = make_event(company=make_company(), status=InboxEvent.Status.PROCESSED)
    response = operator_client.post(f"/dashboard/events/{event.pk}/replay/", follow=True)
    assert "only dead events are replayed" in response.content.decode()
    assert not OperatorAction.objects.exists()
    entry = only_audit_entry()
    assert (entry.action, entry.result, entry.detail) == (
        "replay_event",
        "refused",
        "event is processed; only dead events can be replayed",
    )


@pytest.mark.parametrize(
    ("confirmation", "detail"),
    [
        ("", "confirmation missing"),
        ("   ", "confirmation missing"),
        ("Acme", "confirmation did not match"),
        ("70001x", "confirmation did not match"),
    ],
)
def test_uninstall_without_the_right_confirmation_is_refused(
    operator_client, operator, make_company, pipedrive, confirmation, detail
) -> None:
    company = make_company(name="Acme Rockets")
    response = operator_client.post(
        f"/dashboard/companies/{company.pk}/actions/uninstall/", {"confirmation": confirmation}, follow=True
    )
    assert "Not uninstalled" in response.content.decode()
    assert Company.objects.filter(pk=company.pk).exists()
    assert not OperatorAction.objects.exists()
    assert pipedrive.requests_to("/oauth/revoke") == []
    entry = only_audit_entry()
    assert (entry.actor, entry.action, entry.result, entry.detail, entry.target_id) == (
        operator,
        "uninstall_company",
        "refused",
        detail,
        str(company.pipedrive_company_id),
    )


def test_uninstall_without_any_confirmation_field_is_refused(operator_client, make_company) -> None:
    company = make_company()
    operator_client.post(f"/dashboard/companies/{company.pk}/actions/uninstall/")
    assert Company.objects.filter(pk=company.pk).exists()
    assert only_audit_entry().result == "refused"


@pytest.mark.django_db(transaction=True)  # on-commit work runs inside the request, as in production
def test_vendor_side_uninstall_with_the_pipedrive_id(operator_client, operator, install_user, pipedrive) -> None:
    installation = install_user(company_id=4005, user_id=11)
    install_user(company_id=4005, user_id=12)
    company = installation.company
    response = operator_client.post(f"/dashboard/companies/{company.pk}/actions/uninstall/", {"confirmation": "4005"})
    action = OperatorAction.objects.get()
    assert action.status == "done", action.result
    assert response.status_code == 302 and response["Location"] == "/dashboard/audit/"
    assert not Company.objects.filter(pk=company.pk).exists()
    assert len(pipedrive.requests_to("/oauth/revoke")) == 2
    assert LifecycleEvent.objects.filter(
        pipedrive_company_id=4005, kind="company_uninstalled", source="vendor"
    ).exists()
    action = OperatorAction.objects.get()
    assert (action.status, action.company_id, action.pipedrive_company_id) == ("done", None, 4005)
    assert "purged" in action.result
    entry = only_audit_entry()
    assert (entry.actor, entry.action, entry.result, entry.target_id, entry.outcome) == (
        operator,
        "uninstall_company",
        "accepted",
        "4005",
        "done",
    )
    assert "Company 4005" in operator_client.get("/dashboard/audit/").content.decode()


def test_vendor_side_uninstall_whose_revocation_fails_keeps_everything(
    operator_client, install_user, pipedrive, django_capture_on_commit_callbacks
) -> None:
    installation = install_user(company_id=4006, user_id=11)
    pipedrive.fail_next("/oauth/revoke", status=503, times=5)
    post_action(
        operator_client,
        installation.company,
        "uninstall",
        django_capture_on_commit_callbacks,
        confirmation="company 4006",
    )
    action = OperatorAction.objects.get()
    assert action.status == "failed" and action.result.startswith("revocation failed, nothing erased")
    installation.refresh_from_db()
    assert installation.status == "active" and installation.refresh_token
    assert only_audit_entry().outcome == "failed"


def test_confirmation_matching() -> None:
    company = Company(pipedrive_company_id=77, name="Acme  Rockets")
    assert uninstall_confirmation_matches(company=company, confirmation="77")
    assert uninstall_confirmation_matches(company=company, confirmation=" acme rockets ")
    assert not uninstall_confirmation_matches(company=company, confirmation="Acme")
    assert not uninstall_confirmation_matches(company=company, confirmation="")
    assert not uninstall_confirmation_matches(company=Company(pipedrive_company_id=78, name=""), confirmation="")


def test_actions_are_post_only_and_known(operator_client, make_company) -> None:
    company = make_company()
    assert operator_client.get(f"/dashboard/companies/{company.pk}/actions/refresh-tokens/").status_code == 405
    assert operator_client.post(f"/dashboard/companies/{company.pk}/actions/explode/").status_code == 404
    assert not AuditEntry.objects.exists()


def test_an_action_queued_for_a_worker_shows_as_pending_until_it_runs(operator_client, make_company) -> None:
    company = make_company(events=(InboxEvent.Status.DEAD,))
    operator_client.post(f"/dashboard/companies/{company.pk}/actions/replay-dead-events/")  # on_commit not run: queued
    action = OperatorAction.objects.get()
    assert action.status == "pending"
    page = operator_client.get(f"/dashboard/companies/{company.pk}/").content.decode()
    assert 'http-equiv="refresh"' in page and "Pending" in page
    assert run_operator_action.delay(action.pk).get() == "done"
    assert run_operator_action.delay(action.pk).get() == "done"  # a second delivery changes nothing
    page = operator_client.get(f"/dashboard/companies/{company.pk}/").content.decode()
    assert 'http-equiv="refresh"' not in page
    assert operator_client.get(f"/dashboard/actions/{action.pk}/").status_code == 200
