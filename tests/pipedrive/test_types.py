"""The typed views tolerate what Pipedrive actually sends: string ids, extra keys, nulls, v1 shapes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from pipedrive_app.pipedrive.types import ContactPoint, CurrentUser, Deal, Note, Page, Person, Webhook


def test_current_user_from_strings_and_access_list() -> None:
    payload = {
        "id": "12",
        "name": "Mari",
        "email": "mari@example.com",
        "company_id": "3401",
        "company_name": "Acme",
        "company_domain": "acme",
        "access": [{"app": "sales", "admin": False}, {"app": "global", "admin": True}],
        "locale": "et_EE",
        "timezone_name": "Europe/Tallinn",
        "icon_url": None,
        "brand_new_field": {"x": 1},
    }

    user = CurrentUser.from_api(payload)

    assert (user.id, user.company_id, user.is_admin) == (12, 3401, True)
    assert user.icon_url is None
    assert user.raw["brand_new_field"] == {"x": 1}


@pytest.mark.parametrize(("flag", "expected"), [(1, True), (0, False), ("1", True), ("0", False), (True, True)])
def test_current_user_is_admin_flag_forms(flag: object, expected: bool) -> None:
    user = CurrentUser.from_api({"id": 1, "company_id": 2, "is_admin": flag})
    assert user.is_admin is expected


def test_current_user_without_company_is_rejected() -> None:
    with pytest.raises(ValueError, match="company_id"):
        CurrentUser.from_api({"id": 1})


def test_deal_tolerates_strings_nulls_and_v1_related_objects() -> None:
    deal = Deal.from_api(
        {
            "id": "5",
            "title": "T",
            "value": "99.90",
            "currency": "EUR",
            "status": "won",
            "person_id": {"value": 8, "name": "Ann"},
            "org_id": None,
            "user_id": {"id": 4},
            "stage_id": 2.0,
            "expected_close_date": "2026-03-01",
            "update_time": "2026-01-02 03:04:05",
            "add_time": "2026-01-02T03:04:05Z",
            "custom_fields": None,
        }
    )

    assert (deal.id, deal.person_id, deal.org_id, deal.owner_id, deal.stage_id) == (5, 8, None, 4, 2)
    assert deal.value == Decimal("99.90")
    assert deal.expected_close_date == date(2026, 3, 1)
    assert deal.update_time == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert deal.add_time == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert deal.custom_fields == {}


def test_deal_with_garbage_fields_keeps_the_rest() -> None:
    deal = Deal.from_api({"id": 1, "value": "n/a", "stage_id": "two", "update_time": "yesterday"})
    assert (deal.value, deal.stage_id, deal.update_time) == (None, None, None)


def test_object_without_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="deal"):
        Deal.from_api({"title": "no id"})


def test_raw_is_left_out_of_repr_and_equality() -> None:
    first = Note.from_api({"id": 1, "content": "x", "secret_extra": "zzz"})
    second = Note.from_api({"id": 1, "content": "x", "other": 1})

    assert first == second
    assert "zzz" not in repr(first)
    assert hash(first) == hash(second)


def test_person_contact_points_from_v2_and_v1_shapes() -> None:
    v2 = Person.from_api(
        {
            "id": 1,
            "name": "Ann",
            "emails": [{"value": "a@x.io", "label": "work", "primary": False}, {"value": "b@x.io", "primary": True}],
            "phones": [],
        }
    )
    v1 = Person.from_api({"id": "2", "name": "Bob", "email": [{"value": "bob@x.io", "primary": "true"}], "phone": ""})

    assert v2.emails == (ContactPoint("a@x.io", "work", False), ContactPoint("b@x.io", None, True))
    assert v2.primary_email == "b@x.io"
    assert v2.primary_phone is None
    assert v1.id == 2 and v1.primary_email == "bob@x.io"
    assert hash(v2)  # frozen and hashable despite the custom_fields dict


def test_webhook_from_api() -> None:
    webhook = Webhook.from_api(
        {
            "id": "9",
            "company_id": "1",
            "owner_id": 2,
            "user_id": 2,
            "event_action": "*",
            "event_object": "deal",
            "subscription_url": "https://a/h",
            "version": "2.0",
            "is_active": 0,
            "type": "application",
            "name": "n",
            "http_auth_user": None,
            "http_auth_password": "never-kept-in-a-field",
            "last_delivery_time": "2026-01-01T00:00:00.000Z",
            "last_http_status": "200",
            "remove_reason": None,
            "add_time": "2019-10-25T08:25:27.000Z",
        }
    )

    assert (webhook.id, webhook.company_id, webhook.is_active, webhook.last_http_status) == (9, 1, False, 200)
    assert webhook.last_delivery_time == datetime(2026, 1, 1, tzinfo=UTC)
    assert "never-kept-in-a-field" not in repr(webhook)


def test_page() -> None:
    assert not Page(items=()).has_more
    assert Page(items=(1,), next_cursor="c").has_more
    assert Page(items=(1,), next_start=100).has_more
