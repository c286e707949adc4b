"""The custom floating window: its page, and the JSON feed it polls ("changes on your records").

History rows come from real-shaped webhook events posted to the app's receiver (the owner is taken
from the event) or are written as the handler writes them; the feed is called over the test client
with a Bearer JWT signed like the SDK's GET_SIGNED_TOKEN token.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection

from extensions.floating_window import FeedRefused, _within_budget
from pipedrive_app.history.models import ChangeRecord
from pipedrive_app.installations.models import Company, Installation
from pipedrive_app.webhooks.services import webhook_state_get_or_create
from tests.webhooks.conftest import load_event, post_event  # noqa: F401  (the fixture)

from .conftest import ADMIN, COMPANY, JWT_SECRET, OTHER_COMPANY, OUTSIDER, REGULAR, make_token

pytestmark = pytest.mark.django_db

FEED = "/extensions/floating-window/feed/"
PAGE = "/extensions/floating-window/"
FLOATING_SECRET = "floating-window-secret-" + "f" * 32


def _feed(
    client: Any, *, token: str | None = None, user_id: int = ADMIN, company_id: int = COMPANY, **query: Any
) -> Any:
    token = token if token is not None else make_token(company_id=company_id, user_id=user_id)
    url = f"{FEED}?{urlencode(query)}" if query else FEED
    return client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")


def _row(
    company: Company, *, owner: int | None, n: int, entity: str = "deal", entity_id: str = "42", **extra: Any
) -> ChangeRecord:
    fields: dict[str, Any] = {
        "company": company,
        "entity": entity,
        "entity_id": entity_id,
        "kind": "changed",
        "field_key": "value",
        "field_label": "Value",
        "old_display": f"{n - 1} EUR",
        "new_display": f"{n} EUR",
        "owner_user_id": owner,
        "record_label": "Big deal" if entity == "deal" else "",
        "actor_user_id": REGULAR,
        "actor_name": "Rob Regular",
        "occurred_at": datetime(2026, 2, 3, 15, 0, tzinfo=UTC) + timedelta(minutes=n),
        "event_key": f"event-{entity}-{entity_id}-{n}",
    }
    fields.update(extra)
    return ChangeRecord.objects.create(**fields)


@pytest.fixture
def company(install_user) -> Company:
    install_user(COMPANY, ADMIN, name="Ann Admin", is_admin=True)
    install_user(COMPANY, REGULAR, name="Rob Regular", is_admin=False)
    return Company.objects.get(pipedrive_company_id=COMPANY)


# --- the owner each history row keeps -------------------------------------------------------------------


def test_history_rows_keep_the_record_owner_the_event_carried(company, post_event, pipedrive) -> None:  # noqa: F811
    pipedrive.add_pipeline(COMPANY, id=1, name="Sales pipeline")
    pipedrive.add_stage(COMPANY, id=2, name="Qualified", pipeline_id=1)
    pipedrive.add_stage(COMPANY, id=3, name="Proposal made", pipeline_id=1)
    state = webhook_state_get_or_create(company=company)
    rows = ChangeRecord.objects.filter(company=company)

    def owners_of_new_rows(payload: dict[str, Any]) -> set[int | None]:
        before = set(rows.values_list("pk", flat=True))
        assert post_event(state, payload).status_code == 200
        added = rows.exclude(pk__in=before)
        assert added.exists()
        record = payload.get("data") or payload.get("current")
        assert record is not None
        assert set(added.values_list("record_label", flat=True)) == {record["title"]}  # the title it carried
        return set(added.values_list("owner_user_id", flat=True))

    assert owners_of_new_rows(load_event("deal.change")) == {ADMIN}  # v2: data.owner_id
    assert owners_of_new_rows(load_event("deal.updated", timestamp=1740920500, timestamp_micro=1740920500123456)) == {
        ADMIN
    }  # v1: current.user_id
    other_owner = load_event("deal.change", id="owned-by-502", timestamp="2025-03-02T12:00:00Z")
    other_owner["data"]["owner_id"] = REGULAR
    other_owner["data"]["value"] = 9999
    assert owners_of_new_rows(other_owner) == {REGULAR}


def test_a_delete_keeps_the_owner_from_the_previous_record(company, post_event) -> None:  # noqa: F811
    state = webhook_state_get_or_create(company=company)
    payload = load_event("deal.delete")
    owner = payload["data"]["owner_id"] if payload.get("data") else payload["previous"]["owner_id"]
    assert post_event(state, payload).status_code == 200
    assert list(ChangeRecord.objects.filter(company=company).values_list("kind", "owner_user_id")) == [
        ("deleted", owner)
    ]


# --- the feed --------------------------------------------------------------------------------------------


def test_the_feed_shows_changes_on_the_viewers_records_newest_first_for_the_viewer(client, company) -> None:
    Installation.objects.filter(pipedrive_user_id=ADMIN).update(timezone_name="America/New_York", locale="de_DE")
    _row(
        company, owner=ADMIN, n=1, kind="created", field_key="", field_label="", old_display="", new_display="Big deal"
    )
    _row(company, owner=ADMIN, n=2)
    _row(company, owner=ADMIN, n=3, actor_user_id=ADMIN, actor_name="Ann Admin")  # the viewer's own edit
    _row(company, owner=REGULAR, n=4)  # someone else's record: not in the viewer's feed
    _row(company, owner=None, n=5)  # owner unknown: in nobody's feed
    _row(company, owner=ADMIN, n=6, entity="person", entity_id="7", field_key="name", field_label="Name")

    response = _feed(client)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    body = response.json()
    items = body["items"]
    assert [item["entity"] for item in items] == ["person", "deal", "deal", "deal"]
    person, own, others, created = items
    assert person["entity_label"] == "Person" and person["open"] == {"view": "contacts", "id": "7"}
    assert person["record"] == "Person 7"
    assert own["by_you"] is True and own["actor"] == "Sie"  # German: the viewer's locale
    assert others["by_you"] is False and others["actor"] == "Rob Regular"
    assert (others["what"], others["old"], others["new"]) == ("Value", "1 EUR", "2 EUR")
    assert created["kind"] == "created" and created["what"] == "Erstellt"
    # The record's title as the event carried it, else the noun and id; times in the viewer's zone and format.
    assert others["record"] == "Big deal" and others["open"] == {"view": "deals", "id": "42"}
    assert others["when_iso"] == "2026-02-03T10:02:00-05:00"
    assert others["when"] == "03.02.2026 10:02"
    assert body["cursor"] == items[0]["id"] and body["more"] is False
    assert body["unread"] == 3  # the viewer's own edit is no news


def test_the_since_cursor_and_the_page_limit(client, company) -> None:
    rows = [_row(company, owner=ADMIN, n=n) for n in range(1, 8)]

    first = _feed(client, limit=3).json()
    assert [item["id"] for item in first["items"]] == [rows[6].pk, rows[5].pk, rows[4].pk]
    assert first["more"] is True and first["cursor"] == rows[6].pk

    assert _feed(client, since=first["cursor"]).json() == {
        "items": [],
        "cursor": rows[6].pk,
        "more": False,
        "unread": 0,
    }
    newer = _row(company, owner=ADMIN, n=9)
    later = _feed(client, since=first["cursor"]).json()
    assert [item["id"] for item in later["items"]] == [newer.pk] and later["cursor"] == newer.pk
    assert later["unread"] == 1


def test_the_hidden_windows_badge_counts_others_changes_only(client, company, settings) -> None:
    start = _row(company, owner=ADMIN, n=1)
    _row(company, owner=ADMIN, n=2)
    _row(company, owner=ADMIN, n=3, actor_user_id=ADMIN)
    newest = _row(company, owner=ADMIN, n=4, actor_user_id=None, actor_name="")  # an integration, no user
    _row(company, owner=REGULAR, n=5)

    body = _feed(client, since=start.pk, unread=1).json()

    assert body == {"unread": 2, "cursor": newest.pk}
    assert _feed(client, since=newest.pk, unread=1).json() == {"unread": 0, "cursor": newest.pk}


def test_the_unread_count_is_capped(client, company) -> None:
    ChangeRecord.objects.bulk_create(
        [
            ChangeRecord(
                company=company,
                entity="deal",
                entity_id="42",
                kind="changed",
                field_key="value",
                owner_user_id=ADMIN,
                actor_user_id=REGULAR,
                occurred_at=datetime(2026, 2, 3, tzinfo=UTC),
                event_key=f"bulk-{n}",
            )
            for n in range(120)
        ]
    )
    assert _feed(client, unread=1).json()["unread"] == 99


def test_a_viewer_never_sees_another_companys_changes(client, company, install_user) -> None:
    # The same Pipedrive user id installed in a second company (as a user of two companies is).
    install_user(OTHER_COMPANY, ADMIN, name="Ann Elsewhere", is_admin=True)
    other = Company.objects.get(pipedrive_company_id=OTHER_COMPANY)
    mine = _row(company, owner=ADMIN, n=1)
    theirs = _row(other, owner=ADMIN, n=2, entity_id="42")

    in_mine = _feed(client).json()
    in_theirs = _feed(client, company_id=OTHER_COMPANY).json()

    assert [item["id"] for item in in_mine["items"]] == [mine.pk]
    assert [item["id"] for item in in_theirs["items"]] == [theirs.pk]
    # A cursor taken in one company reveals nothing of the other, and neither does the badge.
    assert _feed(client, since=0, unread=1).json()["unread"] == 1
    assert _feed(client, company_id=OTHER_COMPANY, since=mine.pk - 1, unread=1).json()["unread"] == 1
    # Asking for the other company with this company's token: refused.
    assert _feed(client, companyId=OTHER_COMPANY).status_code == 403


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"since": "abc"}, 400),
        ({"since": "-1"}, 400),
        ({"since": "²"}, 400),
        ({"since": "9" * 5000}, 400),
        ({"since": "1.5"}, 400),
        ({"limit": "0"}, 400),
        ({"limit": "51"}, 400),
        ({"limit": "ten"}, 400),
        ({"limit": "50"}, 200),
        ({"since": "0", "limit": "1"}, 200),
    ],
)
def test_bad_query_values_are_a_clear_400(client, company, query, expected) -> None:
    response = _feed(client, **query)
    assert response.status_code == expected, response.content
    if expected == 400:
        assert response.json()["error"]


def test_the_feed_answers_only_a_valid_floating_window_token(client, company, settings) -> None:
    settings.PIPEDRIVE_EXTENSION_JWT_SECRETS = {"floating_window": FLOATING_SECRET, "deal_panel": "deal-" + "d" * 40}
    _row(company, owner=ADMIN, n=1)
    good = make_token(secret=FLOATING_SECRET)

    assert _feed(client, token=good).status_code == 200
    assert client.get(FEED).status_code == 401  # no credential
    assert client.get(FEED, HTTP_AUTHORIZATION="Basic YTpi").status_code == 401
    assert client.get(FEED, HTTP_AUTHORIZATION="Bearer " + "x" * 9000).status_code == 401
    assert _feed(client, token=make_token(secret=JWT_SECRET)).status_code == 401  # the fallback secret is not it
    assert _feed(client, token=make_token(secret="deal-" + "d" * 40)).status_code == 401  # a panel's token
    assert _feed(client, token=make_token(secret=FLOATING_SECRET, expires_in=-60)).status_code == 401
    assert _feed(client, token=good, userId=REGULAR).status_code == 403  # the query names someone else
    assert client.post(FEED, HTTP_AUTHORIZATION=f"Bearer {good}").status_code == 405
    outsider = make_token(secret=FLOATING_SECRET, user_id=OUTSIDER)
    assert _feed(client, token=outsider).status_code == 403  # never installed: nothing of the company
    stranger = make_token(secret=FLOATING_SECRET, company_id=9999)
    assert _feed(client, token=stranger).status_code == 403
    for response in (_feed(client, token=outsider), client.get(FEED)):
        assert "items" not in response.json()


def test_a_poll_costs_a_bounded_number_of_queries(client, company, django_assert_max_num_queries) -> None:
    for n in range(1, 41):
        _row(company, owner=ADMIN, n=n, entity_id=str(n))
    token = make_token()
    # authentication (company, installation), the budget's transaction (a savepoint, and on PostgreSQL
    # SET LOCAL and the release), then one query for a page or two for the count, whatever the size
    with django_assert_max_num_queries(6):
        assert len(_feed(client, token=token, limit=40).json()["items"]) == 40
    with django_assert_max_num_queries(7):
        assert _feed(client, token=token, since=10**6, unread=1).json()["unread"] == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the plan is PostgreSQL's")
def test_the_feed_query_is_answered_by_its_index(company) -> None:
    from pipedrive_app.history.selectors import ChangeRecord as Rows

    Rows.objects.bulk_create(
        [
            Rows(
                company=company,
                entity="deal",
                entity_id=str(n % 50),
                kind="changed",
                field_key="value",
                owner_user_id=ADMIN if n % 100 == 0 else 10_000 + n % 97,  # one owner among many
                actor_user_id=REGULAR,
                occurred_at=datetime(2026, 2, 3, tzinfo=UTC),
                event_key=f"plan-{n}",
            )
            for n in range(5000)
        ]
    )
    query = Rows.objects.filter(company_id=company.pk, owner_user_id=ADMIN, pk__gt=5).order_by("-pk")[:21]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE history_changerecord")
        cursor.execute("SET LOCAL enable_seqscan = off")  # a small table: make the planner show its index choice
        sql, params = query.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "history_owner_feed" in plan, plan
    assert "Sort" not in plan, plan  # the index gives the order: no sort of the owner's rows


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the statement timeout is PostgreSQL's")
def test_a_query_past_the_time_budget_is_a_503(settings) -> None:
    settings.EXTENSIONS_FLOATING_FEED_BUDGET_MS = 50

    def slow() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.5)")

    with pytest.raises(FeedRefused) as refused:
        _within_budget(slow)
    assert refused.value.status == 503


# --- the page --------------------------------------------------------------------------------------------


def _page_query(**overrides: Any) -> str:
    params = {"id": "fw-1", "userId": ADMIN, "companyId": COMPANY, "token": make_token(), "theme": "dark"}
    params.update(overrides)
    return urlencode(params)


def test_the_page_frames_for_pipedrive_in_the_viewers_language(client, company) -> None:
    Installation.objects.filter(pipedrive_user_id=ADMIN).update(locale="fr_FR")
    response = client.get(f"{PAGE}?{_page_query()}")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-theme="dark"' in html and 'lang="fr-fr"' in html
    assert f'data-feed-url="{FEED}"' in html and 'data-user-id="501"' in html
    assert "Modifications de vos fiches" in html
    assert "frame-ancestors https://*.pipedrive.com" in response["Content-Security-Policy"]
    assert "X-Frame-Options" not in response
    assert "token" not in html.split("<body", 1)[1].lower().replace("data-", "")  # the JWT is not echoed


def test_the_page_refuses_a_bad_token_and_tells_an_outsider_to_install(client, company) -> None:
    refused = client.get(f"{PAGE}?{_page_query(token='not-a-jwt')}")
    assert refused.status_code == 401 and b"could not be verified" in refused.content
    outsider = client.get(f"{PAGE}?{_page_query(userId=OUTSIDER, token=make_token(user_id=OUTSIDER))}")
    assert outsider.status_code == 200 and b'data-state="not_installed"' in outsider.content
