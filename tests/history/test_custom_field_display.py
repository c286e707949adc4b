"""Display of every documented v2 custom-field shape, before any name or option label is known."""

from __future__ import annotations

import pytest

from pipedrive_app.history.field_labels import value_display
from tests.webhooks.docs_examples import custom_field_examples

# Without definitions or names: still readable, never JSON; ids say what they are.
WITHOUT_LABELS = {
    "address": "Mustamäe tee 3a, Tallinn, Estonia",
    "date": "2023-06-27",
    "daterange": "2023-06-06 \u2013 2023-06-14",
    "double": "123",
    "enum": "Option #17",
    "monetary": "200 EUR",
    "org": "Organization #1",
    "people": "Person #17818",
    "phone": "1234-5678",
    "set": "Option #13, Option #14",
    "text": "This is a custom text field with details about a particular Pipedrive entity.",
    "time": "00:45",
    "timerange": "00:00 \u2013 01:15",
    "user": "User #13075973",
    "varchar": "This is a custom text field.",
    "varchar_auto": "Hello there",
}


@pytest.mark.parametrize("example", custom_field_examples(), ids=lambda e: e.path.stem)
def test_documented_shape_without_labels(example) -> None:
    value = example.body["custom_field_hash"]
    assert value_display(value) == WITHOUT_LABELS[example.path.stem]


def test_option_labels_replace_ids() -> None:
    assert value_display({"type": "set", "values": [{"id": 13}, {"id": 14}]}, options={"13": "Golf"}) == (
        "Golf, Option #14"
    )
    assert value_display({"type": "enum", "id": 17}, options={"17": "Hot"}) == "Hot"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"amount": 500, "currency": "EUR"}, "500 EUR"),
        ([{"price": 234, "currency": "EUR", "cost": 123}], "234 EUR"),
        ({"timezone_id": None, "value": ""}, ""),
        ({"street": "Main 1", "city": "Tallinn"}, "Street: Main 1, City: Tallinn"),
        ({"nested": {"deeper": [1, 2]}}, "Nested: Deeper: 1, 2"),
    ],
)
def test_other_objects_read_as_text(value, text) -> None:
    assert value_display(value) == text


MONEY = "a" * 40
RANGE = "b" * 40


@pytest.mark.django_db
def test_v1_custom_field_parts_are_shown_with_their_field(webhook_company, post_event) -> None:
    """v1 puts money's currency and a range's end beside the field ("<key>_currency", "<key>_until")."""
    from pipedrive_app.history.models import ChangeRecord
    from tests.webhooks.conftest import load_event

    _, state = webhook_company
    payload = load_event("deal.updated")
    payload["previous"].update(
        {MONEY: 100, f"{MONEY}_currency": "EUR", RANGE: "2023-06-01", f"{RANGE}_until": "2023-06-02"}
    )
    payload["current"].update(
        {MONEY: 200, f"{MONEY}_currency": "USD", RANGE: "2023-06-01", f"{RANGE}_until": "2023-06-14"}
    )
    assert post_event(state, payload).status_code == 200
    lines = {line.field_key: line for line in ChangeRecord.objects.filter(field_key__startswith=("a"))}
    assert (lines[MONEY].old_display, lines[MONEY].new_display) == ("100 EUR", "200 USD")
    assert f"{MONEY}_currency" not in lines  # shown with the amount
    until = ChangeRecord.objects.get(field_key=f"{RANGE}_until")
    assert until.field_label == "Custom field (until)"
    assert (until.old_display, until.new_display) == ("2023-06-02", "2023-06-14")
