"""record_history: the selector the panels call."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipedrive_app.history.models import ChangeRecord
from pipedrive_app.history.selectors import HistoryEntry, record_history
from pipedrive_app.installations.models import Company

pytestmark = pytest.mark.django_db


def _row(company: Company, minute: int, **fields) -> ChangeRecord:
    defaults = {
        "company": company,
        "entity": "deal",
        "entity_id": 42,
        "kind": "changed",
        "field_key": "value",
        "field_label": "Value",
        "old_display": "1",
        "new_display": "2",
        "occurred_at": datetime(2025, 3, 1, 10, minute, tzinfo=UTC),
        "event_key": f"v2:e{minute}",
        "actor_user_id": 501,
        "actor_name": "Ann",
        "change_source": "app",
    }
    defaults.update(fields)
    return ChangeRecord.objects.create(**defaults)


def test_newest_first_by_pipedrive_time_scoped_to_record_and_limited() -> None:
    company = Company.objects.create(pipedrive_company_id=1, api_domain="https://a.pipedrive.com")
    other = Company.objects.create(pipedrive_company_id=2, api_domain="https://b.pipedrive.com")
    _row(company, 5, new_display="late arrival, early time")
    _row(company, 9, kind="deleted", field_key="", field_label="", new_display="")
    _row(company, 7, field_key="stage_id", field_label="Stage")
    _row(company, 8, entity_id=43)
    _row(other, 10)
    _row(company, 11, entity="person")

    history = record_history(company_id=company.pk, entity="deal", entity_id=42)

    assert [entry.occurred_at.minute for entry in history] == [9, 7, 5]
    first = history[0]
    assert isinstance(first, HistoryEntry)
    assert first.kind == "deleted" and first.occurred_at.tzinfo is not None
    assert history[1].field_label == "Stage" and history[1].actor_name == "Ann" and history[1].change_source == "app"
    assert len(record_history(company_id=company.pk, entity="deal", entity_id=42, limit=2)) == 2
    assert record_history(company_id=company.pk, entity="deal", entity_id=999) == []
    with pytest.raises(AttributeError):
        first.kind = "changed"  # type: ignore[misc]  # frozen
