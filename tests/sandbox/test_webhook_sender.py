"""The webhook sender: formats, Basic auth, retries, the ban and the 3-day removal (platform guide §4).

Deliveries go to a loopback receiver. These tests are transactional: deliveries are enqueued when
the sandbox's transaction commits, and retries run on timer threads with their own connections.
"""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from pipedrive_app.pipedrive.types import Deal as AppDeal
from pipedrive_app.pipedrive.types import Note as AppNote
from sandbox import services, webhook_sender
from sandbox.models import ChangeEvent, Deal, Webhook, WebhookDelivery

from .conftest import SANDBOX_DB

pytestmark = pytest.mark.django_db(transaction=True, databases=SANDBOX_DB)


@pytest.fixture
def admin_token(grant, sandbox_world) -> str:
    return grant(sandbox_world.acme_admin)["access_token"]


def subscribe(api, token: str, url: str, **fields) -> dict:
    body = {"subscription_url": url, "event_action": "*", "event_object": "*", "name": "test", **fields}
    response = api("POST", "acme", "/api/v1/webhooks", token, body=body)
    assert response.status_code == 201, response.content
    return response.json()["data"]


def first_deal(world) -> Deal:
    return Deal.objects.filter(company=world.acme, is_deleted=False).earliest("pk")


def test_v2_change_delivery_with_basic_auth(api, sandbox_world, admin_token, receiver) -> None:
    hook = subscribe(
        api, admin_token, receiver.url, event_object="deal", http_auth_user="pd", http_auth_password="s3cret-pw"
    )
    deal = first_deal(sandbox_world)
    old_title = deal.title

    assert (
        api(
            "PATCH", "acme", f"/api/v2/deals/{deal.pk}", admin_token, body={"title": "Renamed", "value": 4242}
        ).status_code
        == 200
    )

    [got] = receiver.wait_for(1)
    assert got.method == "POST" and got.path == "/hooks/pipedrive"
    assert got.headers["Authorization"] == "Basic " + base64.b64encode(b"pd:s3cret-pw").decode()
    assert got.headers["Content-Type"] == "application/json"
    meta, data, previous = got.body["meta"], got.body["data"], got.body["previous"]
    assert meta["action"] == "change" and meta["entity"] == "deal" and meta["version"] == "2.0"
    assert meta["entity_id"] == str(deal.pk) and meta["company_id"] == str(sandbox_world.acme.pk)
    assert meta["user_id"] == str(sandbox_world.acme_admin.pk)
    assert meta["webhook_id"] == str(hook["id"]) and meta["webhook_owner_id"] == str(sandbox_world.acme_admin.pk)
    assert meta["type"] == "application" and meta["attempt"] == 1 and meta["is_bulk_edit"] is False
    assert meta["change_source"] == "api" and "permitted_user_ids" not in meta  # v2 meta as documented
    assert meta["host"] and meta["timestamp"].endswith("Z")
    uuid.UUID(meta["id"])
    uuid.UUID(meta["correlation_id"])
    assert set(previous) == {"title", "value"} and previous["title"] == old_title
    assert data["title"] == "Renamed" and data["value"] == 4242
    parsed = AppDeal.from_api(data)  # the app's own type reads it
    assert parsed.id == deal.pk and parsed.title == "Renamed"
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED and delivery.response_code == 200
    webhook = Webhook.objects.get(pk=hook["id"])
    assert webhook.last_http_status == 200 and webhook.last_success_at is not None


def test_v2_create_and_delete_shapes(api, sandbox_world, admin_token, receiver) -> None:
    subscribe(api, admin_token, receiver.url)
    created = api("POST", "acme", "/api/v2/persons", admin_token, body={"name": "Webhook Person"}).json()["data"]
    api("DELETE", "acme", f"/api/v2/persons/{created['id']}", admin_token)

    create, delete = receiver.wait_for(2)
    assert create.body["meta"]["action"] == "create" and create.body["previous"] is None
    assert create.body["data"]["name"] == "Webhook Person"
    assert delete.body["meta"]["action"] == "delete" and delete.body["data"] is None
    assert delete.body["previous"]["name"] == "Webhook Person"
    assert create.body["meta"]["id"] != delete.body["meta"]["id"]


def test_note_created_through_the_api(api, sandbox_world, admin_token, receiver) -> None:
    subscribe(api, admin_token, receiver.url, event_action="create", event_object="note")
    deal = first_deal(sandbox_world)
    api("POST", "acme", "/api/v1/notes", admin_token, body={"content": "<b>hi</b>", "deal_id": deal.pk})
    [got] = receiver.wait_for(1)
    assert got.body["meta"]["entity"] == "note"
    assert AppNote.from_api(got.body["data"]).deal_id == deal.pk


def test_v1_format_for_version_1_subscriptions(api, sandbox_world, admin_token, receiver) -> None:
    subscribe(api, admin_token, receiver.url, event_action="change", event_object="deal", version="1.0")
    deal = first_deal(sandbox_world)
    api("PATCH", "acme", f"/api/v2/deals/{deal.pk}", admin_token, body={"title": "V1 title"})

    [got] = receiver.wait_for(1)
    body = got.body
    assert body["v"] == 1 and body["event"] == "updated.deal" and body["retry"] == 0
    assert (
        body["meta"]["action"] == "updated" and body["meta"]["object"] == "deal" and body["meta"]["id"] == str(deal.pk)
    )
    assert body["current"]["title"] == "V1 title"
    assert body["previous"]["title"] == deal.title and body["previous"]["id"] == deal.pk  # v1: whole object


def test_only_matching_subscriptions_of_the_company_get_events(
    api, sandbox_world, admin_token, grant, receiver
) -> None:
    subscribe(api, admin_token, receiver.url + "?persons", event_object="person")
    subscribe(api, admin_token, receiver.url + "?deal-deletes", event_action="delete", event_object="deal")
    subscribe(api, admin_token, receiver.url + "?deal-any", event_action="*", event_object="deal")
    globex_token = grant(sandbox_world.globex_admin)["access_token"]
    response = api(
        "POST",
        "globex",
        "/api/v1/webhooks",
        globex_token,
        body={"subscription_url": receiver.url + "?globex", "event_action": "*", "event_object": "*", "name": "g"},
    )
    assert response.status_code == 201
    deal = first_deal(sandbox_world)
    api("PATCH", "acme", f"/api/v2/deals/{deal.pk}", admin_token, body={"title": "Only deal-any"})

    received = receiver.wait_for(1)
    assert [r.path for r in received] == ["/hooks/pipedrive?deal-any"]


def test_page_edits_produce_webhooks(client: Client, api, sandbox_world, admin_token, receiver) -> None:
    subscribe(api, admin_token, receiver.url, event_object="deal")
    deal = first_deal(sandbox_world)
    response = client.post(
        f"/sandbox/acme/deals/{deal.pk}/",
        {
            "as": sandbox_world.acme_regular.pk,
            "title": "Edited on the page",
            "status": "won",
            "stage_id": deal.stage_id,
        },
    )
    assert response.status_code == 302
    [got] = receiver.wait_for(1)
    assert got.body["meta"]["change_source"] == "app" and got.body["meta"]["user_id"] == str(
        sandbox_world.acme_regular.pk
    )
    assert got.body["previous"]["title"] == deal.title and got.body["data"]["status"] == "won"


def test_failed_deliveries_are_retried_on_pipedrives_schedule(
    api, sandbox_world, admin_token, receiver, settings
) -> None:
    settings.SANDBOX_WEBHOOK_DELAY_SCALE = 0.01  # 3, 30, 150 s -> 0.03, 0.3, 1.5 s
    receiver.default_status = 500
    subscribe(api, admin_token, receiver.url, event_object="deal")
    deal = first_deal(sandbox_world)
    api("PATCH", "acme", f"/api/v2/deals/{deal.pk}", admin_token, body={"title": "Retry me"})

    attempts = receiver.wait_for(4, timeout=15)
    assert webhook_sender.pending_retries_wait(timeout=5)
    assert [a.body["meta"]["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert len({a.body["meta"]["id"] for a in attempts}) == 1  # the same event id on every attempt
    gaps = [later.at - earlier.at for earlier, later in zip(attempts, attempts[1:], strict=False)]
    for gap, expected in zip(gaps, (0.03, 0.3, 1.5), strict=True):
        assert expected <= gap < expected + 1.0
    rows = list(WebhookDelivery.objects.order_by("attempt"))
    assert [(r.attempt, r.status, r.response_code) for r in rows] == [(n, "failed", 500) for n in (1, 2, 3, 4)]
    assert len(receiver.received) == 4  # no fifth attempt


def test_a_retry_that_succeeds_stops_the_schedule(api, sandbox_world, admin_token, receiver, settings) -> None:
    settings.SANDBOX_WEBHOOK_DELAY_SCALE = 0.01
    receiver.statuses = [503]
    subscribe(api, admin_token, receiver.url, event_object="deal")
    api(
        "PATCH",
        "acme",
        f"/api/v2/deals/{first_deal(sandbox_world).pk}",
        admin_token,
        body={"title": "Second time lucky"},
    )

    attempts = receiver.wait_for(2, timeout=5)
    assert webhook_sender.pending_retries_wait(timeout=5)
    assert [a.body["meta"]["attempt"] for a in attempts] == [1, 2]
    assert Webhook.objects.get().consecutive_failed_first_attempts == 0


def test_ten_failed_first_attempts_ban_the_webhook_and_events_are_lost(
    api, sandbox_world, admin_token, receiver
) -> None:
    receiver.default_status = 500  # retries run at once (delay scale 0 in these tests)
    subscribe(api, admin_token, receiver.url, event_object="deal")
    deal = first_deal(sandbox_world)
    for n in range(10):
        services.deal_update(deal=deal, actor=sandbox_world.acme_admin, data={"title": f"t{n}"}, source="api")
    webhook = Webhook.objects.get()
    assert webhook.banned_until is not None
    assert timedelta(minutes=29) < webhook.banned_until - timezone.now() <= timedelta(minutes=30)
    sent_before = len(receiver.received)
    assert sent_before == 40  # 10 events x 4 attempts

    services.deal_update(deal=deal, actor=sandbox_world.acme_admin, data={"title": "lost"}, source="api")

    assert len(receiver.received) == sent_before
    lost = WebhookDelivery.objects.get(event__data__title="lost")
    assert lost.status == WebhookDelivery.Status.LOST and "banned" in lost.error
    # After the ban window, deliveries resume.
    Webhook.objects.update(banned_until=timezone.now() - timedelta(seconds=1))
    receiver.default_status = 200
    services.deal_update(deal=deal, actor=sandbox_world.acme_admin, data={"title": "back"}, source="api")
    assert receiver.received[-1].body["data"]["title"] == "back"


def test_no_successful_delivery_for_three_days_deletes_the_webhook(api, sandbox_world, admin_token, receiver) -> None:
    receiver.default_status = 410
    hook = subscribe(api, admin_token, receiver.url, event_object="deal")
    Webhook.objects.filter(pk=hook["id"]).update(add_time=timezone.now() - timedelta(days=3, minutes=1))
    deal = first_deal(sandbox_world)
    services.deal_update(deal=deal, actor=sandbox_world.acme_admin, data={"title": "doomed"}, source="api")

    webhook = Webhook.objects.get(pk=hook["id"])
    assert webhook.remove_time is not None and webhook.remove_reason == "No successful delivery for 3 days"
    assert api("GET", "acme", "/api/v1/webhooks", admin_token).json()["data"] == []
    count = len(receiver.received)
    services.deal_update(deal=deal, actor=sandbox_world.acme_admin, data={"title": "after"}, source="api")
    assert len(receiver.received) == count


def test_a_recent_success_keeps_the_webhook(api, sandbox_world, admin_token, receiver) -> None:
    receiver.default_status = 500
    hook = subscribe(api, admin_token, receiver.url, event_object="deal")
    Webhook.objects.filter(pk=hook["id"]).update(
        add_time=timezone.now() - timedelta(days=10), last_success_at=timezone.now() - timedelta(days=1)
    )
    services.deal_update(deal=first_deal(sandbox_world), actor=None, data={"title": "kept"}, source="api")
    assert Webhook.objects.get(pk=hook["id"]).remove_time is None


def test_deliveries_are_shown_on_the_webhooks_page(client: Client, api, sandbox_world, admin_token, receiver) -> None:
    subscribe(api, admin_token, receiver.url, event_object="deal")
    services.deal_update(deal=first_deal(sandbox_world), actor=None, data={"title": "visible"}, source="app")
    page = client.get("/sandbox/webhooks/")
    assert page.status_code == 200
    html = page.content.decode()
    assert receiver.url in html and "Delivered" in html
    assert str(ChangeEvent.objects.get(data__title="visible").event_id) in html
