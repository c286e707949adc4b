"""What the dashboard pages show, and that they never show a token or an unmasked payload."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from pipedrive_app.installations.models import Installation, LifecycleEvent
from pipedrive_app.webhooks.models import CompanyWebhookState, InboxEvent

from .conftest import make_event

pytestmark = pytest.mark.django_db


def test_overview_counts(operator_client: Client, make_company) -> None:
    make_company(events=(InboxEvent.Status.PROCESSED, InboxEvent.Status.PROCESSED, InboxEvent.Status.DEAD))
    make_company(
        installations=(Installation.Status.ACTIVE, Installation.Status.NEEDS_REAUTH), failing_subscription=True
    )
    make_company(installations=(Installation.Status.NEEDS_REAUTH,), webhooks=CompanyWebhookState.Status.UNAVAILABLE)
    old = make_company()
    make_event(company=old, received_at=timezone.now() - timedelta(days=3))  # in the chart, not in the 24 h counts
    LifecycleEvent.objects.create(kind="company_uninstalled", source="pipedrive", pipedrive_company_id=123)
    LifecycleEvent.objects.create(kind="company_uninstalled", source="vendor", pipedrive_company_id=123)
    LifecycleEvent.objects.create(kind="installed", source="oauth", pipedrive_company_id=old.pipedrive_company_id)
    LifecycleEvent.objects.create(kind="user_uninstalled", source="oauth", pipedrive_company_id=123)

    response = operator_client.get("/dashboard/")
    assert response.status_code == 200
    ctx = response.context
    assert ctx["companies"] == {"total": 4, "active": 3, "needs_reauth": 2, "uninstalled": 1}
    assert ctx["installations"] == {"active": 3, "needs_reauth": 2, "uninstalled": 0}
    assert ctx["webhooks"] == {"unhealthy": 1, "unavailable": 1}
    assert ctx["events"] == {"received": 3, "processed": 2, "dead": 1, "pending": 0}
    html = response.content.decode()
    assert html.count('<svg class="chart"') == 2 and "Events received per hour" in html
    assert "processed 2" in html and "installs 1" in html and "uninstalls 1" in html  # tooltips
    assert "<script" not in html and "https://" not in html.split("<body")[1].replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )


def test_company_list_search_filter_and_health(operator_client: Client, make_company) -> None:
    acme = make_company(name="Acme Rockets", events=(InboxEvent.Status.DEAD,))
    make_company(name="Globex", installations=(Installation.Status.NEEDS_REAUTH,), failing_subscription=True)
    make_company(name="Initech", webhooks=CompanyWebhookState.Status.UNAVAILABLE)
    make_company(name="Hooli", webhooks=None)

    def names(query: str) -> list[str]:
        response = operator_client.get("/dashboard/companies/" + query)
        assert response.status_code == 200
        return [row.name for row in response.context["rows"]]

    assert names("") == ["Acme Rockets", "Globex", "Hooli", "Initech"]
    assert names("?q=rocket") == ["Acme Rockets"]
    assert names(f"?q={acme.pipedrive_company_id}") == ["Acme Rockets"]
    assert names(f"?q={acme.domain}") == ["Acme Rockets"]
    assert names("?status=needs_reauth") == ["Globex"]
    assert names("?status=no_active") == ["Globex"]
    assert names("?status=active") == ["Acme Rockets", "Hooli", "Initech"]
    assert names("?health=unhealthy") == ["Globex"]
    assert names("?health=unavailable") == ["Initech"]
    assert names("?health=pending") == ["Hooli"]
    assert names("?health=healthy") == ["Acme Rockets"]
    rows = operator_client.get("/dashboard/companies/?q=acme").context["rows"]
    assert (rows[0].active_installations, rows[0].dead_events, rows[0].events_24h, rows[0].health) == (
        1,
        1,
        1,
        "healthy",
    )


def test_company_list_paginates(operator_client: Client, make_company, settings) -> None:
    settings.DASHBOARD_PAGE_SIZE = 2
    for n in range(5):
        make_company(name=f"C{n}")
    page2 = operator_client.get("/dashboard/companies/?page=2")
    assert [r.name for r in page2.context["rows"]] == ["C2", "C3"]
    assert "Page 2 of 3" in page2.content.decode()
    assert [r.name for r in operator_client.get("/dashboard/companies/?page=99").context["rows"]] == ["C4"]


def test_company_page_shows_installations_webhooks_and_events_but_never_a_token(
    operator_client: Client, make_company
) -> None:
    company = make_company(
        name="Acme",
        installations=(Installation.Status.ACTIVE, Installation.Status.NEEDS_REAUTH),
        failing_subscription=True,
        events=(InboxEvent.Status.DEAD, InboxEvent.Status.PROCESSED),
    )
    response = operator_client.get(f"/dashboard/companies/{company.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "User 0" in html and "User 1" in html and "Needs re-authorization" in html
    assert "410" in html and "Endpoint gone" in html
    assert "Replay dead events (1)" in html
    assert "never-shown" not in html  # the seeded tokens
    assert response.context["d"].health == "unhealthy"


def test_unknown_company_is_404(operator_client: Client) -> None:
    assert operator_client.get("/dashboard/companies/999999/").status_code == 404


def test_inbox_filters(operator_client: Client, make_company) -> None:
    a = make_company(name="Alpha")
    b = make_company(name="Beta")
    make_event(company=a, entity="deal", action="create")
    make_event(company=a, entity="person", action="change", status=InboxEvent.Status.DEAD)
    make_event(company=b, entity="deal", action="delete", received_at=timezone.now() - timedelta(days=2))

    def count(query: str) -> int:
        response = operator_client.get("/dashboard/events/" + query)
        assert response.status_code == 200
        return response.context["page"].paginator.count

    assert count("") == 3
    assert count("?company=Alpha") == 2
    assert count(f"?company={b.pipedrive_company_id}") == 1
    assert count("?entity=deal") == 2
    assert count("?action=change") == 1
    assert count("?status=dead") == 1
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert count(f"?received_from={since}") == 2
    assert count(f"?received_to={since}") == 1


def test_event_page_masks_personal_data_and_secrets(operator_client: Client, make_company) -> None:
    company = make_company()
    event = make_event(
        company=company,
        status=InboxEvent.Status.DEAD,
        body={
            "meta": {"entity": "person", "action": "change", "id": "x1", "http_auth_password": "hunter2hunter2"},
            "data": {
                "id": 42,
                "name": "Jane Person",
                "first_name": "Jane",
                "emails": [{"value": "jane@example.test"}],
                "phones": [{"value": "+372 555 0101"}],
                "org_id": 7,
                "owner_id": {"name": "Olav Owner", "id": 3},
            },
            "previous": {"name": "Jane Old", "email": "old@example.test"},
        },
    )
    response = operator_client.get(f"/dashboard/events/{event.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    for secret in ("Jane", "jane@example.test", "+372", "old@example.test", "hunter2", "Olav"):
        assert secret not in html, secret
    assert "masked" in html and "&quot;org_id&quot;: 7" in html
    assert "ValueError: handler exploded" in html  # the error is shown
    assert "Replay this event" in html


def test_audit_page_lists_entries(operator_client: Client, make_company, django_capture_on_commit_callbacks) -> None:
    company = make_company(name="Acme")
    operator_client.post(f"/dashboard/companies/{company.pk}/actions/uninstall/", {"confirmation": "wrong"})
    response = operator_client.get("/dashboard/audit/")
    html = response.content.decode()
    assert "ops@example.test" in html and "Vendor-side uninstall" in html and "Refused" in html
    assert "confirmation did not match" in html


def test_a_subscription_shows_the_last_delivery_this_app_received(operator_client: Client, make_company) -> None:
    # Pipedrive's own last_delivery_time is only read at reconcile time (none yet here); the inbox knows.
    company = make_company(name="Delivered")
    received = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    make_event(company=company, entity="deal", received_at=received)
    make_event(company=company, entity="person", received_at=received + timedelta(minutes=1))  # another object

    response = operator_client.get(f"/dashboard/companies/{company.pk}/")

    (subscription,) = response.context["d"].subscriptions
    assert subscription.event_object == "deal" and subscription.last_delivery_time is None
    assert subscription.last_received_at == received
    html = response.content.decode()
    assert timezone.localtime(received).strftime("%Y-%m-%d %H:%M") in html and "none yet" not in html


def test_the_companies_card_names_what_it_counts(operator_client: Client, make_company) -> None:
    make_company()
    html = operator_client.get("/dashboard/").content.decode()
    for label in ("<dt>Installed</dt>", "<dt>Working</dt>", "<dt>Left</dt>"):
        assert label in html
    assert "Total now" not in html


@pytest.mark.parametrize("text", ["²", "9" * 5000, "12\n"])
def test_searches_that_only_look_like_ids_are_text(operator_client: Client, make_company, text: str) -> None:
    make_company(name="Acme")
    assert operator_client.get("/dashboard/companies/", {"q": text}).status_code == 200
    assert operator_client.get("/dashboard/events/", {"company": text}).status_code == 200
