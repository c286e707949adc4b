"""The panels' history slot against the real history store (pipedrive_app.history)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipedrive_app.installations.models import Installation

from .conftest import ADMIN, panel_query

pytestmark = [
    pytest.mark.django_db,
]


def test_real_history_rows_show_newest_first_in_the_viewers_timezone(client, seeded_company) -> None:
    from pipedrive_app.history.models import ChangeRecord

    world = seeded_company()
    company_id = Installation.objects.get(pipedrive_user_id=ADMIN).company_id
    Installation.objects.filter(pipedrive_user_id=ADMIN).update(timezone_name="America/New_York", locale="en_US")
    deal_id = world["deal"]["id"]
    common = {"company_id": company_id, "entity": "deal", "entity_id": deal_id, "change_source": "app"}
    ChangeRecord.objects.create(
        kind="created", occurred_at=datetime(2026, 2, 1, 9, 0, tzinfo=UTC), event_key="e1", actor_name="Ann", **common
    )
    ChangeRecord.objects.create(
        kind="changed",
        field_key="value",
        field_label="Value",
        old_display="10,000 EUR",
        new_display="12,500.50 EUR",
        occurred_at=datetime(2026, 2, 3, 15, 45, tzinfo=UTC),
        event_key="e2",
        actor_user_id=ADMIN,
        actor_name="Ann Admin",
        **common,
    )
    ChangeRecord.objects.create(  # another record: not shown
        kind="changed",
        field_key="title",
        field_label="Title",
        old_display="x",
        new_display="y",
        occurred_at=datetime(2026, 2, 4, 0, 0, tzinfo=UTC),
        event_key="e3",
        **{**common, "entity_id": deal_id + 1000},
    )

    html = client.get(f"/extensions/panels/deal/?{panel_query(record_id=deal_id)}").content.decode()

    rows = html.split("data-history-row")[1:]
    assert len(rows) == 2
    assert "<strong>Value</strong>" in rows[0] and "10,000 EUR" in rows[0] and "12,500.50 EUR" in rows[0]
    assert "Ann Admin" in rows[0] and 'datetime="2026-02-03T10:45:00-05:00"' in rows[0]
    assert "<strong>Created</strong>" in rows[1]
    assert "Title" not in html.split("data-history")[1]


def _changed(company_id: int, entity: str, entity_id: int, key: str, label: str, old, new, minute: int):
    """A history row as the handler stores it: raw values, and Pipedrive's text as the display."""
    from pipedrive_app.history.models import ChangeRecord

    def text(value):
        if isinstance(value, dict):
            return value.get("value") or ""
        return "" if value is None else str(value)

    return ChangeRecord.objects.create(
        company_id=company_id,
        entity=entity,
        entity_id=entity_id,
        kind="changed",
        field_key=key,
        field_label=label,
        old_value=old,
        new_value=new,
        old_display=text(old),
        new_display=text(new),
        occurred_at=datetime(2026, 11, 29, 17, minute, tzinfo=UTC),
        event_key=f"e{minute}",
        change_source="app",
    )


@pytest.mark.parametrize(
    ("locale", "zone", "stage_change", "close_date"),
    [
        ("en_US", "America/New_York", "11/29/2026 12:02 p.m.", "March 31, 2026"),
        ("de_DE", "Europe/Berlin", "29.11.2026 18:02", "31. März 2026"),
    ],
)
def test_history_dates_and_times_are_shown_in_the_viewers_timezone_and_locale(
    client, seeded_company, locale, zone, stage_change, close_date
) -> None:
    world = seeded_company()
    company_id = Installation.objects.get(pipedrive_user_id=ADMIN).company_id
    Installation.objects.filter(pipedrive_user_id=ADMIN).update(timezone_name=zone, locale=locale)
    deal_id = world["deal"]["id"]
    _changed(company_id, "deal", deal_id, "stage_change_time", "Last stage change", None, "2026-11-29T17:02:11Z", 2)
    # A date is a calendar day: not shifted to the previous day in New York.
    _changed(company_id, "deal", deal_id, "expected_close_date", "Expected close date", None, "2026-03-31", 1)
    # v1 timestamps have no offset (UTC); a v2 date custom field is a typed object.
    _changed(company_id, "deal", deal_id, "won_time", "Won time", "2026-11-29 17:02:11", None, 0)
    _changed(company_id, "deal", deal_id, "ab" * 20, "Renewal", None, {"type": "date", "value": "2026-03-31"}, 3)

    html = client.get(f"/extensions/panels/deal/?{panel_query(record_id=deal_id)}").content.decode()

    history = html.split("data-history>")[1]
    assert "2026-11-29T17:02:11Z" not in history and "2026-11-29 17:02:11" not in history
    assert "2026-03-31" not in history
    rows = html.split("data-history-row")[1:]
    assert "<strong>Renewal</strong>" in rows[0] and close_date in rows[0]
    assert "<strong>Last stage change</strong>" in rows[1] and stage_change in rows[1]
    assert "<strong>Expected close date</strong>" in rows[2] and close_date in rows[2]
    assert "<strong>Won time</strong>" in rows[3] and stage_change in rows[3]


def test_person_history_dates_are_formatted_too(client, seeded_company) -> None:
    world = seeded_company()
    company_id = Installation.objects.get(pipedrive_user_id=ADMIN).company_id
    Installation.objects.filter(pipedrive_user_id=ADMIN).update(timezone_name="Europe/Berlin", locale="de_DE")
    person_id = world["person"]["id"]
    _changed(company_id, "person", person_id, "birthday", "Birthday", None, "1990-02-14", 1)
    _changed(company_id, "person", person_id, "add_time", "Created", None, "2026-11-29T17:02:11Z", 2)

    query = panel_query(resource="person", record_id=person_id)
    html = client.get(f"/extensions/panels/person/?{query}").content.decode()

    history = html.split("data-history>")[1]
    assert "14. Februar 1990" in history and "29.11.2026 18:02" in history
    assert "1990-02-14" not in history and "2026-11-29T17:02:11Z" not in history


def test_the_json_panel_keeps_iso_where_its_schema_wants_it_and_formats_text(client, seeded_company) -> None:
    world = seeded_company()
    company_id = Installation.objects.get(pipedrive_user_id=ADMIN).company_id
    Installation.objects.filter(pipedrive_user_id=ADMIN).update(timezone_name="Europe/Berlin", locale="de_DE")
    deal_id = world["deal"]["id"]
    _changed(company_id, "deal", deal_id, "stage_change_time", "Last stage change", None, "2026-11-29T17:02:11Z", 2)

    body = client.get(f"/extensions/json-panels/deal/?{panel_query(record_id=deal_id)}").json()

    deal = body["data"][0]
    assert deal["expected_close_date"] == "2026-03-31"  # JSON panel type 'date': ISO
    assert deal["last_change_at"] == "2026-11-29T18:02:00+01:00"  # type 'date-time': ISO
    assert "29.11.2026 18:02" in deal["last_change"] and "2026-11-29T17:02:11Z" not in deal["last_change"]


def test_a_merge_reads_once(client, seeded_company) -> None:
    from pipedrive_app.history.models import ChangeRecord

    world = seeded_company()
    company_id = Installation.objects.get(pipedrive_user_id=ADMIN).company_id
    deal_id = world["deal"]["id"]
    ChangeRecord.objects.create(
        company_id=company_id,
        entity="deal",
        entity_id=deal_id,
        kind="merged",
        new_display="Merged with Northwind pilot",
        occurred_at=datetime(2026, 2, 1, 9, 0, tzinfo=UTC),
        event_key="m1",
    )

    html = client.get(f"/extensions/panels/deal/?{panel_query(record_id=deal_id)}").content.decode()

    row = html.split("data-history-row")[1]
    assert "<strong>Merged with Northwind pilot</strong>" in row and "into Merged" not in row
