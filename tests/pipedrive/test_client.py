"""PipedriveClient against the Pipedrive double, over real loopback HTTP."""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from email.utils import formatdate

import pytest
import requests

from pipedrive_app.core.http import build_retry, build_session
from pipedrive_app.pipedrive.client import PipedriveClient
from pipedrive_app.pipedrive.errors import (
    PipedriveAuthError,
    PipedriveError,
    PipedriveForbidden,
    PipedriveNotFound,
    PipedriveRateLimited,
    PipedriveUnavailable,
    PipedriveValidationError,
)
from pipedrive_app.pipedrive.types import ContactPoint, Page
from tests.doubles.pipedrive_double import PipedriveDouble
from tests.doubles.token_source import DoubleTokenSource, FixedTokenSource

COMPANY = 1001
USER = 501


@dataclass
class SleepRecorder:
    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def double(pipedrive_double: PipedriveDouble) -> PipedriveDouble:
    pipedrive_double.add_company(COMPANY, name="Acme OÜ", domain="acme")
    pipedrive_double.add_user(COMPANY, USER, name="Mari Maasikas", email="mari@acme.example")
    return pipedrive_double


@pytest.fixture
def tokens(double: PipedriveDouble) -> DoubleTokenSource:
    return DoubleTokenSource(double, COMPANY, USER)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def api(double: PipedriveDouble, tokens: DoubleTokenSource, sleeps: SleepRecorder) -> PipedriveClient:
    return PipedriveClient(api_domain=tokens.api_domain, token_source=tokens, timeout=3.0, sleep=sleeps)


def _client(double: PipedriveDouble, tokens: object, **kwargs: object) -> PipedriveClient:
    return PipedriveClient(api_domain=double.base_url, token_source=tokens, **kwargs)  # type: ignore[arg-type]


# --- typed methods ----------------------------------------------------------------------------------


def test_get_current_user(api: PipedriveClient, double: PipedriveDouble, tokens: DoubleTokenSource) -> None:
    me = api.get_current_user()

    assert (me.id, me.company_id) == (USER, COMPANY)
    assert me.name == "Mari Maasikas"
    assert me.email == "mari@acme.example"
    assert (me.company_name, me.company_domain) == ("Acme OÜ", "acme")
    assert me.is_admin is True
    assert (me.locale, me.timezone_name) == ("en_US", "Europe/Tallinn")
    assert me.raw["company_country"] == "EE"
    [request] = double.requests_to("/api/v1/users/me")
    assert request.method == "GET"
    assert request.headers["Authorization"] == f"Bearer {tokens.token}"


def test_get_deal(api: PipedriveClient, double: PipedriveDouble) -> None:
    person = double.add_person(COMPANY, name="Ann Lee")
    seeded = double.add_deal(
        COMPANY,
        title="Big one",
        value=1200.5,
        currency="USD",
        person_id=person["id"],
        org_id=9,
        expected_close_date="2026-12-24",
        custom_fields={"a" * 40: "gold"},
    )

    deal = api.get_deal(seeded["id"])

    assert deal.id == seeded["id"]
    assert deal.title == "Big one"
    assert deal.value == Decimal("1200.5")
    assert deal.currency == "USD"
    assert deal.status == "open"
    assert (deal.person_id, deal.org_id, deal.owner_id) == (person["id"], 9, USER)
    assert (deal.stage_id, deal.pipeline_id) == (1, 1)
    assert str(deal.expected_close_date) == "2026-12-24"
    assert deal.add_time is not None and deal.update_time is not None
    assert deal.custom_fields == {"a" * 40: "gold"}
    assert double.requests_to(f"/api/v2/deals/{seeded['id']}")


def test_get_deal_not_found(api: PipedriveClient) -> None:
    with pytest.raises(PipedriveNotFound) as raised:
        api.get_deal(424242)
    assert raised.value.status == 404


def test_list_deals_filters_by_person_and_pages_by_cursor(api: PipedriveClient, double: PipedriveDouble) -> None:
    person = double.add_person(COMPANY, name="Ann Lee")
    other = double.add_person(COMPANY, name="Bob Kask")
    mine = [double.add_deal(COMPANY, person_id=person["id"])["id"] for _ in range(5)]
    double.add_deal(COMPANY, person_id=other["id"])
    double.add_deal(COMPANY, person_id=person["id"], status="won")

    first = api.list_deals(person_id=person["id"], status="open", limit=2)

    assert isinstance(first, Page)
    assert [deal.id for deal in first.items] == mine[:2]
    assert first.next_cursor is not None and first.has_more
    second = api.list_deals(person_id=person["id"], status="open", limit=2, cursor=first.next_cursor)
    assert [deal.id for deal in second.items] == mine[2:4]

    assert [deal.id for deal in api.iter_deals(person_id=person["id"], status="open", limit=2)] == mine
    pages = double.requests_to("/api/v2/deals")[-3:]
    assert [r.query.get("cursor") for r in pages][0] is None
    assert all(r.query["person_id"] == str(person["id"]) and r.query["limit"] == "2" for r in pages)
    assert all(r.query["cursor"] for r in pages[1:])


def test_iter_deals_without_filters_sees_every_page(api: PipedriveClient, double: PipedriveDouble) -> None:
    ids = [double.add_deal(COMPANY)["id"] for _ in range(7)]

    assert [deal.id for deal in api.iter_deals(limit=3)] == ids
    assert len(double.requests_to("/api/v2/deals")) == 3


def test_get_person(api: PipedriveClient, double: PipedriveDouble) -> None:
    seeded = double.add_person(
        COMPANY,
        name="Ann Lee",
        emails=[{"value": "ann@work.example", "label": "work", "primary": True}, "ann@home.example"],
        phones=["+372 5555 5555"],
        org_id=3,
    )

    person = api.get_person(seeded["id"])

    assert person.id == seeded["id"]
    assert person.name == "Ann Lee"
    assert person.emails[0] == ContactPoint("ann@work.example", "work", True)
    assert [e.value for e in person.emails] == ["ann@work.example", "ann@home.example"]
    assert person.primary_email == "ann@work.example"
    assert person.primary_phone == "+372 5555 5555"
    assert (person.org_id, person.owner_id) == (3, USER)


def test_list_and_iter_persons(api: PipedriveClient, double: PipedriveDouble) -> None:
    ids = [double.add_person(COMPANY, name=f"Person {n}")["id"] for n in range(5)]

    page = api.list_persons(limit=4)
    assert [p.id for p in page.items] == ids[:4]
    assert page.next_cursor is not None
    last = api.list_persons(limit=4, cursor=page.next_cursor)
    assert [p.id for p in last.items] == ids[4:]
    assert last.next_cursor is None and not last.has_more

    assert [p.id for p in api.iter_persons(limit=2)] == ids


def test_get_person_not_found(api: PipedriveClient) -> None:
    with pytest.raises(PipedriveNotFound):
        api.get_person(999)


def test_create_note(api: PipedriveClient, double: PipedriveDouble) -> None:
    deal = double.add_deal(COMPANY, title="Big one")
    person = double.add_person(COMPANY, name="Ann Lee")

    note = api.create_note(content="<p>Called Ann</p>", deal_id=deal["id"], person_id=person["id"])

    assert note.content == "<p>Called Ann</p>"
    assert (note.deal_id, note.person_id, note.org_id, note.user_id) == (deal["id"], person["id"], None, USER)
    assert note.add_time is not None
    [request] = double.requests_to("/api/v1/notes", "POST")
    assert request.json() == {"content": "<p>Called Ann</p>", "deal_id": deal["id"], "person_id": person["id"]}
    assert request.headers["Content-Type"] == "application/json"
    assert [n["id"] for n in double.company_notes(COMPANY)] == [note.id]


def test_create_note_needs_a_target(api: PipedriveClient, double: PipedriveDouble) -> None:
    with pytest.raises(ValueError, match="deal_id"):
        api.create_note(content="orphan")
    assert double.requests_to("/api/v1/notes") == []


def test_create_note_for_unknown_deal_is_a_validation_error(api: PipedriveClient) -> None:
    with pytest.raises(PipedriveValidationError, match="Deal not found"):
        api.create_note(content="x", deal_id=31337)


def test_create_and_list_activities(api: PipedriveClient, double: PipedriveDouble) -> None:
    deal = double.add_deal(COMPANY, title="Big one")
    other = double.add_deal(COMPANY)

    activity = api.create_activity(
        subject="Follow up", type="call", deal_id=deal["id"], due_date="2026-12-03", due_time="08:30", note="Budget?"
    )

    assert (activity.subject, activity.type, activity.deal_id, activity.owner_id) == (
        "Follow up",
        "call",
        deal["id"],
        USER,
    )
    assert activity.due_date == date(2026, 12, 3) and activity.due_time == "08:30" and activity.done is False
    [request] = double.requests_to("/api/v2/activities", "POST")
    assert request.json() == {
        "subject": "Follow up",
        "type": "call",
        "deal_id": deal["id"],
        "due_date": "2026-12-03",
        "due_time": "08:30",
        "note": "Budget?",
    }
    api.create_activity(subject="Elsewhere", type="task", deal_id=other["id"])
    assert [a.id for a in api.list_activities(deal_id=deal["id"]).items] == [activity.id]
    assert double.take_contract_violations() == []


def test_create_activity_needs_a_target_and_a_known_type(api: PipedriveClient, double: PipedriveDouble) -> None:
    with pytest.raises(ValueError, match="deal_id"):
        api.create_activity(subject="orphan", type="call")
    deal = double.add_deal(COMPANY)
    with pytest.raises(PipedriveValidationError, match="type"):
        api.create_activity(subject="x", type="party", deal_id=deal["id"])
    assert double.company_activities(COMPANY) == []


def test_list_and_iter_notes_page_by_start(api: PipedriveClient, double: PipedriveDouble) -> None:
    deal = double.add_deal(COMPANY)
    other = double.add_deal(COMPANY)
    ids = [api.create_note(content=f"note {n}", deal_id=deal["id"]).id for n in range(5)]
    api.create_note(content="elsewhere", deal_id=other["id"])

    first = api.list_notes(deal_id=deal["id"], limit=2)
    assert [n.id for n in first.items] == ids[:2]
    assert first.next_start == 2 and first.next_cursor is None
    last = api.list_notes(deal_id=deal["id"], start=4, limit=2)
    assert [n.id for n in last.items] == ids[4:]
    assert last.next_start is None

    assert [n.id for n in api.iter_notes(deal_id=deal["id"], limit=2)] == ids
    starts = [r.query["start"] for r in double.requests_to("/api/v1/notes", "GET")[-3:]]
    assert starts == ["0", "2", "4"]


def test_webhooks_create_list_delete(api: PipedriveClient, double: PipedriveDouble) -> None:
    created = api.create_webhook(
        subscription_url="https://app.example/webhooks/pipedrive/k3y/",
        event_action="*",
        event_object="deal",
        name="deal changes",
        http_auth_user="pipedrive",
        http_auth_password="s3cret-password-value",
        user_id=USER,
    )

    assert created.type == "application"
    assert (created.company_id, created.owner_id, created.user_id) == (COMPANY, USER, USER)
    assert (created.event_action, created.event_object, created.version) == ("*", "deal", "2.0")
    assert created.subscription_url == "https://app.example/webhooks/pipedrive/k3y/"
    assert created.is_active is True
    assert created.http_auth_user == "pipedrive"
    assert "s3cret-password-value" not in repr(created)
    [request] = double.requests_to("/api/v1/webhooks", "POST")
    assert request.json() == {
        "subscription_url": "https://app.example/webhooks/pipedrive/k3y/",
        "event_action": "*",
        "event_object": "deal",
        "name": "deal changes",
        "version": "2.0",
        "http_auth_user": "pipedrive",
        "http_auth_password": "s3cret-password-value",
        "user_id": USER,
    }

    assert [w.id for w in api.list_webhooks()] == [created.id]
    api.delete_webhook(created.id)
    assert api.list_webhooks() == []
    with pytest.raises(PipedriveNotFound):
        api.delete_webhook(created.id)


def test_webhook_with_unreachable_url_is_a_validation_error(api: PipedriveClient, double: PipedriveDouble) -> None:
    double.unreachable_subscription_urls.add("https://down.example/hook")

    with pytest.raises(PipedriveValidationError) as raised:
        api.create_webhook(
            subscription_url="https://down.example/hook", event_action="*", event_object="deal", name="x"
        )

    assert raised.value.status == 400
    assert "subscription_url: invalid or non-reachable URL" in str(raised.value)


def test_webhook_limit_is_a_validation_error(api: PipedriveClient, double: PipedriveDouble) -> None:
    for n in range(40):
        api.create_webhook(
            subscription_url=f"https://app.example/hook/{n}", event_action="change", event_object="deal", name="x"
        )

    with pytest.raises(PipedriveValidationError) as raised:
        api.create_webhook(
            subscription_url="https://app.example/hook/41", event_action="change", event_object="deal", name="x"
        )

    assert raised.value.status == 422
    assert "limit of 40 webhooks" in str(raised.value)


def test_webhooks_need_the_admin_scope(double: PipedriveDouble, sleeps: SleepRecorder) -> None:
    double.add_user(COMPANY, 502, scopes="base,deals:full,contacts:full")
    api = _client(double, DoubleTokenSource(double, COMPANY, 502), sleep=sleeps)

    with pytest.raises(PipedriveForbidden) as raised:
        api.list_webhooks()
    assert raised.value.status == 403
    with pytest.raises(PipedriveForbidden):
        api.create_webhook(subscription_url="https://app.example/h", event_action="*", event_object="*", name="x")
    assert api.get_current_user().id == 502  # base still works


def test_webhooks_forbidden_for_a_non_admin_user_even_with_the_scope(
    double: PipedriveDouble, sleeps: SleepRecorder
) -> None:
    double.add_user(COMPANY, 503, is_admin=False)
    api = _client(double, DoubleTokenSource(double, COMPANY, 503), sleep=sleeps)

    assert api.get_current_user().is_admin is False
    with pytest.raises(PipedriveForbidden):
        api.list_webhooks()


def test_deals_need_a_deals_scope(double: PipedriveDouble) -> None:
    double.add_user(COMPANY, 504, scopes="base")
    api = _client(double, DoubleTokenSource(double, COMPANY, 504))

    with pytest.raises(PipedriveForbidden):
        api.list_deals()


# --- ids as strings ---------------------------------------------------------------------------------


def test_ids_arriving_as_strings_are_parsed(api: PipedriveClient, double: PipedriveDouble) -> None:
    # A hand-written answer (fault injection skips response validation): every id is a string.
    body = {
        "success": True,
        "data": {
            "id": "77",
            "title": "Stringly",
            "value": "10.50",
            "person_id": "12",
            "org_id": {"value": "3", "name": "Acme"},
            "owner_id": "501",
            "stage_id": "2",
            "pipeline_id": "1",
            "unknown_new_field": [1, 2],
        },
    }
    double.fail_next("/api/v2/deals/77", status=200, body=body)

    deal = api.get_deal(77)

    assert (deal.id, deal.person_id, deal.org_id, deal.owner_id, deal.stage_id) == (77, 12, 3, 501, 2)
    assert deal.value == Decimal("10.50")
    assert deal.raw["unknown_new_field"] == [1, 2]


# --- 401: refresh once, retry once ------------------------------------------------------------------


def test_401_refreshes_once_and_retries(
    api: PipedriveClient, double: PipedriveDouble, tokens: DoubleTokenSource
) -> None:
    stale = tokens.token
    double.expire_access_token(stale)

    me = api.get_current_user()

    assert me.id == USER
    assert tokens.stale_tokens == [stale]
    assert double.refresh_count == 1
    first, second = double.requests_to("/api/v1/users/me")
    assert first.bearer_token == stale
    assert second.bearer_token == tokens.token != stale


def test_401_on_post_refreshes_and_sends_once_more(
    api: PipedriveClient, double: PipedriveDouble, tokens: DoubleTokenSource
) -> None:
    deal = double.add_deal(COMPANY)
    double.expire_access_token(tokens.token)

    note = api.create_note(content="after refresh", deal_id=deal["id"])

    assert [n["id"] for n in double.company_notes(COMPANY)] == [note.id]
    assert len(double.requests_to("/api/v1/notes", "POST")) == 2
    assert double.refresh_count == 1


def test_second_401_raises_auth_error(double: PipedriveDouble, caplog: pytest.LogCaptureFixture) -> None:
    source = FixedTokenSource("stale-token-" + "x" * 40, after_refresh="still-bad-token-" + "y" * 40)
    api = _client(double, source)

    with caplog.at_level(logging.DEBUG), pytest.raises(PipedriveAuthError) as raised:
        api.get_current_user()

    assert raised.value.status == 401
    assert source.stale_tokens == ["stale-token-" + "x" * 40]
    assert len(double.requests_to("/api/v1/users/me")) == 2
    assert "unauthorized access" in str(raised.value)
    for secret in ("stale-token-", "still-bad-token-"):
        assert secret not in str(raised.value)
        assert secret not in caplog.text


def test_revoked_installation_surfaces_the_token_sources_error(api: PipedriveClient, double: PipedriveDouble) -> None:
    double.revoke_all(COMPANY, USER)

    # The client does not swallow the token source's failure (the test source raises HTTPError).
    with pytest.raises(requests.HTTPError) as raised:
        api.get_current_user()

    assert raised.value.response.status_code == 400
    assert double.grants[-1] == "refresh_token"


# --- 429: bounded waits ----------------------------------------------------------------------------


def test_429_waits_for_retry_after(api: PipedriveClient, double: PipedriveDouble, sleeps: SleepRecorder) -> None:
    double.rate_limit_next("/api/v1/users/me", retry_after=3, reset=7)

    assert api.get_current_user().id == USER
    assert sleeps.calls == [3.0]
    assert len(double.requests_to("/api/v1/users/me")) == 2


def test_429_waits_for_ratelimit_reset_seconds(
    api: PipedriveClient, double: PipedriveDouble, sleeps: SleepRecorder
) -> None:
    double.rate_limit_next("/api/v2/deals", times=2, retry_after=None, reset=2)

    assert api.list_deals().items == ()
    assert sleeps.calls == [2.0, 2.0]


def test_429_reset_given_as_epoch_timestamp(
    api: PipedriveClient, double: PipedriveDouble, sleeps: SleepRecorder
) -> None:
    double.rate_limit_next("/api/v1/users/me", retry_after=None, reset=int(time.time()) + 5)

    api.get_current_user()

    [wait] = sleeps.calls
    assert 3.0 <= wait <= 6.0


def test_429_retry_after_as_http_date(api: PipedriveClient, double: PipedriveDouble, sleeps: SleepRecorder) -> None:
    double.fail_next("/api/v1/users/me", status=429, headers={"Retry-After": formatdate(time.time() + 4, usegmt=True)})

    api.get_current_user()

    [wait] = sleeps.calls
    assert 2.0 <= wait <= 5.0


def test_429_without_headers_backs_off(api: PipedriveClient, double: PipedriveDouble, sleeps: SleepRecorder) -> None:
    double.rate_limit_next("/api/v1/users/me", times=2, retry_after=None, reset=None)

    api.get_current_user()

    assert sleeps.calls == [1.0, 2.0]


def test_429_beyond_the_bound_raises_rate_limited(
    double: PipedriveDouble, tokens: DoubleTokenSource, sleeps: SleepRecorder
) -> None:
    api = _client(double, tokens, sleep=sleeps, max_rate_limit_waits=2)
    double.rate_limit_next("/api/v1/webhooks", times=5, retry_after=4)

    with pytest.raises(PipedriveRateLimited) as raised:
        api.list_webhooks()

    assert raised.value.retry_after == 4.0
    assert raised.value.status == 429
    assert sleeps.calls == [4.0, 4.0]
    assert len(double.requests_to("/api/v1/webhooks")) == 3


def test_429_with_a_wait_above_the_ceiling_raises_at_once(
    double: PipedriveDouble, tokens: DoubleTokenSource, sleeps: SleepRecorder
) -> None:
    api = _client(double, tokens, sleep=sleeps, max_rate_limit_wait_seconds=30)
    double.rate_limit_next("/api/v1/users/me", retry_after=120)

    with pytest.raises(PipedriveRateLimited) as raised:
        api.get_current_user()

    assert raised.value.retry_after == 120.0
    assert sleeps.calls == []


# --- 5xx, timeouts, broken answers -----------------------------------------------------------------


def test_5xx_on_get_is_retried_by_the_session(api: PipedriveClient, double: PipedriveDouble) -> None:
    double.fail_next("/api/v1/users/me", status=503)

    assert api.get_current_user().id == USER
    assert len(double.requests_to("/api/v1/users/me")) == 2


def test_5xx_that_persists_is_unavailable(double: PipedriveDouble, tokens: DoubleTokenSource) -> None:
    session = build_session(timeout=3.0, retry=build_retry(total=2, backoff_factor=0))
    api = _client(double, tokens, session=session)
    double.fail_next("/api/v2/persons", status=502, times=10)

    with pytest.raises(PipedriveUnavailable) as raised:
        api.list_persons()

    assert raised.value.status == 502
    assert len(double.requests_to("/api/v2/persons")) == 3


def test_5xx_on_post_is_not_retried(api: PipedriveClient, double: PipedriveDouble) -> None:
    deal = double.add_deal(COMPANY)
    double.fail_next("/api/v1/notes", status=503)

    with pytest.raises(PipedriveUnavailable):
        api.create_note(content="once", deal_id=deal["id"])

    assert len(double.requests_to("/api/v1/notes", "POST")) == 1


def test_timeout_on_post_is_unavailable_and_not_resent(double: PipedriveDouble, tokens: DoubleTokenSource) -> None:
    api = _client(double, tokens, timeout=0.3)
    deal = double.add_deal(COMPANY)
    double.fail_next("/api/v1/notes", status=0, delay=1.0)

    with pytest.raises(PipedriveUnavailable, match="timed out"):
        api.create_note(content="slow", deal_id=deal["id"])

    assert len(double.requests_to("/api/v1/notes", "POST")) == 1


def test_timeout_on_get_is_retried_then_unavailable(double: PipedriveDouble, tokens: DoubleTokenSource) -> None:
    api = _client(double, tokens, timeout=0.3)
    double.fail_next("/api/v1/users/me", status=0, delay=0.6)

    assert api.get_current_user().id == USER  # urllib3 re-sent the idempotent GET

    session = build_session(timeout=0.3, retry=build_retry(total=1, backoff_factor=0))
    impatient = _client(double, tokens, timeout=0.3, session=session)
    double.fail_next("/api/v1/users/me", status=0, delay=0.6, times=2)
    with pytest.raises(PipedriveUnavailable):
        impatient.get_current_user()


def test_connection_refused_is_unavailable(tokens: DoubleTokenSource) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = build_session(timeout=1.0, retry=build_retry(total=0))
    api = PipedriveClient(api_domain=f"http://127.0.0.1:{port}", token_source=tokens, session=session)

    with pytest.raises(PipedriveUnavailable, match="ConnectionError"):
        api.get_current_user()


def test_malformed_json_is_unavailable(api: PipedriveClient, double: PipedriveDouble) -> None:
    double.fail_next("/api/v1/users/me", status=200, body=b'{"success": true, "data": {')

    with pytest.raises(PipedriveUnavailable, match="malformed JSON"):
        api.get_current_user()


def test_answer_without_data_is_unavailable(api: PipedriveClient, double: PipedriveDouble) -> None:
    double.fail_next("/api/v1/users/me", status=200, body={"success": True})

    with pytest.raises(PipedriveUnavailable):
        api.get_current_user()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, PipedriveValidationError),
        (402, PipedriveError),
        (403, PipedriveForbidden),
        (404, PipedriveNotFound),
        (409, PipedriveValidationError),
        (410, PipedriveValidationError),
        (422, PipedriveValidationError),
    ],
)
def test_status_mapping_carries_pipedrives_reason(
    api: PipedriveClient,
    double: PipedriveDouble,
    tokens: DoubleTokenSource,
    status: int,
    expected: type[PipedriveError],
) -> None:
    double.fail_next("/api/v1/webhooks", status=status, body={"success": False, "error": "Pipedrive says no"})

    with pytest.raises(expected) as raised:
        api.list_webhooks()

    assert type(raised.value) is expected
    assert raised.value.status == status
    assert "Pipedrive says no" in str(raised.value)
    assert tokens.token not in str(raised.value)


def test_error_text_that_echoes_a_token_is_redacted(
    api: PipedriveClient, double: PipedriveDouble, tokens: DoubleTokenSource
) -> None:
    double.fail_next("/api/v1/users/me", status=400, body={"error": f"bad header Bearer {tokens.token}"})

    with pytest.raises(PipedriveValidationError) as raised:
        api.get_current_user()

    assert tokens.token not in str(raised.value)


def test_client_repr_names_no_token(api: PipedriveClient, tokens: DoubleTokenSource) -> None:
    assert tokens.token not in repr(api)
