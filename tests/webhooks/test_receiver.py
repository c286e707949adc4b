"""POST /webhooks/pipedrive/<key>/: authentication, limits, validation, de-duplication."""

from __future__ import annotations

import json
import string

import pytest
from django.test import Client, override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pipedrive_app.history.models import ChangeRecord
from pipedrive_app.installations.models import Company, CompanySettings
from pipedrive_app.webhooks.models import InboxEvent
from pipedrive_app.webhooks.services import webhook_state_get_or_create
from tests.webhooks.conftest import basic, load_event, receiver_path

pytestmark = pytest.mark.django_db


def test_valid_v2_delivery_is_stored_processed_and_acknowledged(webhook_company, post_event) -> None:
    company, state = webhook_company
    response = post_event(state, load_event("deal.change"))
    assert response.status_code == 200, response.content
    assert response.json() == {"ok": True, "duplicate": False}
    row = InboxEvent.objects.get()
    assert (row.company_id, row.entity, row.action, row.entity_id, row.version) == (
        company.pk,
        "deal",
        "change",
        "42",
        "2.0",
    )
    assert row.dedup_key.startswith("v2:7c1d5b8e-2f9a-4d3c-9b1e-6a4f2c8d0e11:")
    assert json.loads(row.body)["meta"]["entity_id"] == "42"  # raw body kept as received
    assert row.status == InboxEvent.Status.PROCESSED


def test_v1_delivery_is_accepted(webhook_company, post_event) -> None:
    _, state = webhook_company
    assert post_event(state, load_event("deal.updated")).status_code == 200
    row = InboxEvent.objects.get()
    assert (row.version, row.entity, row.action, row.entity_id) == ("1.0", "deal", "change", "42")
    assert row.dedup_key.startswith("v1:")


def test_retry_of_one_event_is_acknowledged_and_not_stored_twice(webhook_company, post_event) -> None:
    _, state = webhook_company
    assert post_event(state, load_event("deal.change")).status_code == 200
    retry = post_event(state, load_event("deal.change", attempt=2, webhook_id="99"))
    assert retry.status_code == 200 and retry.json()["duplicate"] is True
    row = InboxEvent.objects.get()
    assert row.deliveries == 2 and row.attempts == 1


def test_v1_retries_share_a_key_and_distinct_v1_events_do_not(webhook_company, post_event) -> None:
    _, state = webhook_company
    first = load_event("deal.updated")
    retry = load_event("deal.updated", webhook_id="12")
    retry["retry"] = 2
    other = load_event("deal.updated", timestamp_micro=1740910501000000, timestamp=1740910501)
    answers = [post_event(state, payload) for payload in (first, retry, other)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["duplicate"] for a in answers] == [False, True, False]
    assert InboxEvent.objects.count() == 2


def test_unknown_key_is_404(webhook_company, post_event) -> None:
    _, state = webhook_company
    response = post_event(state, load_event("deal.change"), path="/webhooks/pipedrive/not-a-key/")
    assert response.status_code == 404
    assert InboxEvent.objects.count() == 0


@pytest.mark.parametrize(
    "auth",
    ["", "Bearer abc", "Basic !!!", "Basic " + "dXNlcg==", "wrong"],
    ids=["none", "bearer", "garbage", "no-colon", "scheme"],
)
def test_missing_or_malformed_credentials_are_401(webhook_company, post_event, auth) -> None:
    _, state = webhook_company
    response = post_event(state, load_event("deal.change"), auth=auth)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert InboxEvent.objects.count() == 0


def test_wrong_password_or_user_is_401(webhook_company, post_event) -> None:
    _, state = webhook_company
    assert post_event(state, load_event("deal.change"), auth=basic(state.http_auth_user, "nope")).status_code == 401
    assert post_event(state, load_event("deal.change"), auth=basic("nope", state.http_auth_password)).status_code == 401
    assert InboxEvent.objects.count() == 0


def test_credentials_of_another_company_are_401(webhook_company, post_event) -> None:
    _, state = webhook_company
    other = Company.objects.create(pipedrive_company_id=2002, api_domain="http://127.0.0.1:9")
    other_state = webhook_state_get_or_create(company=other)
    auth = basic(other_state.http_auth_user, other_state.http_auth_password)
    assert post_event(state, load_event("deal.change"), auth=auth).status_code == 401


@override_settings(WEBHOOKS_MAX_BODY_BYTES=2048)
def test_oversized_body_is_413(webhook_company, post_event) -> None:
    _, state = webhook_company
    payload = load_event("deal.change")
    payload["data"]["title"] = "x" * 4000
    assert post_event(state, payload).status_code == 413
    assert InboxEvent.objects.count() == 0


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe{}", b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"])
def test_bodies_that_are_not_json_are_400(webhook_company, post_event, raw) -> None:
    _, state = webhook_company
    response = post_event(state, raw=raw)
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]
    assert InboxEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[]", "object"),
        (b'{"meta": {"version": "3.0"}}', "neither"),
        (b'{"meta": "x"}', "meta"),
        (b'{"meta": {"action": [], "v": true}}', "meta.action"),
        (b'{"meta": {"action": {}, "version": "2.0"}}', "meta.action"),
    ],
)
def test_authenticated_json_of_an_odd_shape_is_acknowledged_and_kept_unprocessable(
    webhook_company, post_event, raw, reason
) -> None:
    """Pipedrive bans a webhook whose deliveries fail: content is never a reason to answer 4xx."""
    _, state = webhook_company
    response = post_event(state, raw=raw)
    assert response.status_code == 200, response.content
    row = InboxEvent.objects.get()
    assert row.status == InboxEvent.Status.UNPROCESSABLE and reason in row.reason
    assert row.body == raw.decode()
    assert post_event(state, raw=raw).json()["duplicate"] is True  # a retry is still one row


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", None),
        ("action", "merged"),
        ("entity", "deal; drop"),
        ("entity_id", "-5"),
        ("entity_id", "99999999999999999999999"),
        ("entity_id", "not-a-uuid"),
        ("company_id", None),
        ("timestamp", "yesterday"),
    ],
)
def test_v2_events_with_unusable_meta_are_acknowledged_and_kept_with_the_reason(
    webhook_company, post_event, field, value
) -> None:
    _, state = webhook_company
    payload = load_event("deal.change")
    if value is None:
        del payload["meta"][field]
    else:
        payload["meta"][field] = value
    response = post_event(state, payload)
    assert response.status_code == 200, response.content
    row = InboxEvent.objects.get()
    assert row.status == InboxEvent.Status.UNPROCESSABLE
    assert f"meta.{field}" in row.reason
    assert ChangeRecord.objects.count() == 0


def test_event_of_another_company_is_acknowledged_kept_unprocessable_and_not_applied(
    webhook_company, post_event
) -> None:
    _, state = webhook_company
    response = post_event(state, load_event("deal.change", company_id="2002"))
    assert response.status_code == 200
    row = InboxEvent.objects.get()
    assert row.status == InboxEvent.Status.UNPROCESSABLE and "company 2002" in row.reason
    assert ChangeRecord.objects.count() == 0


def test_event_of_an_untracked_entity_is_skipped_with_a_reason(webhook_company, post_event) -> None:
    _, state = webhook_company
    assert post_event(state, load_event("deal.change", entity="product", entity_id="5")).status_code == 200
    assert post_event(state, load_event("deal.change", entity="board", entity_id="6", id="e2")).status_code == 200
    rows = {row.entity: row for row in InboxEvent.objects.all()}
    assert rows["product"].status == InboxEvent.Status.SKIPPED
    assert "not among the entities this company tracks" in rows["product"].reason
    assert rows["board"].status == InboxEvent.Status.SKIPPED and "not a trackable entity" in rows["board"].reason
    assert ChangeRecord.objects.count() == 0


def test_only_post_is_allowed(webhook_company, client: Client) -> None:
    _, state = webhook_company
    assert client.get(receiver_path(state)).status_code == 405


def test_receiver_makes_no_pipedrive_call_and_survives_a_dead_broker(
    pipedrive, install_user, post_event, monkeypatch
) -> None:
    """A broker failure while enqueueing is logged; the delivery is stored and acknowledged, and the
    receiver asks Pipedrive nothing: what processing needs from Pipedrive is asked by the task."""
    from pipedrive_app.webhooks import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    company = install_user(1001, 501).company  # installed at the double: a call could reach it
    CompanySettings.objects.update_or_create(company=company, defaults={"tracked_entities": ["deal", "person"]})
    state = webhook_state_get_or_create(company=company)
    monkeypatch.setattr(tasks.process_inbox_event, "apply_async", broker_down)
    seen_before = len(pipedrive.requests)

    response = post_event(state, load_event("deal.change"))

    assert response.status_code == 200
    row = InboxEvent.objects.get()
    assert row.status == InboxEvent.Status.PENDING
    assert pipedrive.requests[seen_before:] == []  # no request of the receiver reached Pipedrive
    # The same event processed (as the worker would) does ask Pipedrive (its custom field's label,
    # its stages' names): the empty log above is the receiver's doing, not an unreachable double.
    assert tasks.process_inbox_event.run(row.pk) == "processed"
    assert {r.path for r in pipedrive.requests[seen_before:]} == {
        "/api/v2/dealFields",
        "/api/v2/stages/2",
        "/api/v2/stages/3",
    }


def test_a_dead_broker_is_left_alone_for_a_while_and_tried_again_after(
    webhook_company, post_event, monkeypatch
) -> None:
    """With the broker down, one failed publish stops further attempts for BROKER_BACKOFF_SECONDS,
    so acknowledgements do not each wait on a connection attempt; deliveries are still stored."""
    from pipedrive_app.celery import app
    from pipedrive_app.webhooks import services, tasks

    attempts: list[int] = []

    def broker_down(*args, **kwargs):
        attempts.append(1)
        raise ConnectionRefusedError("broker down")

    clock = [1000.0]
    monkeypatch.setattr(services.inbox, "broker_clock", lambda: clock[0])
    monkeypatch.setattr(services.inbox, "_broker_down_until", 0.0)
    monkeypatch.setattr(tasks.process_inbox_event, "apply_async", broker_down)
    _, state = webhook_company
    first, second, third = load_event("deal.change"), load_event("deal.change"), load_event("deal.change")
    second["meta"]["id"], third["meta"]["id"] = "another-event-id", "a-third-event-id"
    app.conf.task_always_eager = False  # a real broker is configured (the _celery_eager fixture restores it)

    assert post_event(state, first).status_code == 200
    assert post_event(state, second).status_code == 200
    assert len(attempts) == 1  # the second delivery did not wait on the dead broker
    assert InboxEvent.objects.filter(status=InboxEvent.Status.PENDING).count() == 2

    clock[0] += services.BROKER_BACKOFF_SECONDS + 0.1
    assert post_event(state, third).status_code == 200
    assert len(attempts) == 2  # tried again once the back-off passed


_header_names = st.sampled_from(["HTTP_AUTHORIZATION", "CONTENT_TYPE", "HTTP_X_FORWARDED_FOR", "HTTP_CONTENT_ENCODING"])
_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=20,
)
_meta_like = st.fixed_dictionaries(
    {
        "meta": st.dictionaries(
            st.sampled_from(
                ["version", "id", "action", "entity", "entity_id", "company_id", "timestamp", "v", "object"]
            ),
            _json_values,
        )
    },
    optional={"v": _json_values, "data": _json_values, "previous": _json_values, "current": _json_values},
)


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=300),
        _json_values.map(lambda v: json.dumps(v).encode()),
        _meta_like.map(lambda v: json.dumps(v).encode()),
    ),
    headers=st.dictionaries(_header_names, st.text(alphabet=string.printable, max_size=80), max_size=3),
    use_real_auth=st.booleans(),
)
def test_random_bodies_and_headers_never_cause_a_5xx(
    webhook_company, client: Client, body, headers, use_real_auth
) -> None:
    _, state = webhook_company
    if use_real_auth:
        headers = {**headers, "HTTP_AUTHORIZATION": basic(state.http_auth_user, state.http_auth_password)}
    response = client.generic("POST", receiver_path(state), body, **headers)
    assert response.status_code < 500
    assert response.status_code in {200, 400, 401, 413}
    if use_real_auth and response.status_code == 400:
        assert response.json()["error"] == "body is not UTF-8 JSON"


def test_a_v1_user_event_with_its_object_in_a_list_is_read_and_skipped_as_untracked(
    webhook_company, post_event
) -> None:
    _, state = webhook_company
    payload = load_event("deal.updated")
    payload["meta"].update({"object": "user", "id": 77})
    payload["current"], payload["previous"] = [{"id": 77, "name": "New"}], [{"id": 77, "name": "Old"}]
    assert post_event(state, payload).status_code == 200
    row = InboxEvent.objects.get()
    assert (row.entity, row.entity_id, row.status) == ("user", "77", "skipped")
    assert "not a trackable entity" in row.reason
