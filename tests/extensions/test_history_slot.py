"""The panels' history slot against the real history store (pipedrive_app.history)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.apps import apps

from pipedrive_app.installations.models import Installation

from .conftest import ADMIN, panel_query

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not apps.is_installed("pipedrive_app.history"), reason="history app not installed"),
]


def test_real_history_rows_show_newest_first_in_the_viewers_timezone(client, seeded_company) -> None:  # type: ignore[no-untyped-def]
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
