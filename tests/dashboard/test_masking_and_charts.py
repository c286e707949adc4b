from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipedrive_app.dashboard.charts import Bucket, Series, bar_chart_svg, time_buckets
from pipedrive_app.dashboard.payload_masking import MASK, payload_mask


def test_v2_person_payload_is_masked_but_keeps_ids() -> None:
    payload: dict[str, Any] = {
        "meta": {"entity": "person", "action": "change", "entity_id": "42", "user_id": 5},
        "data": {
            "id": 42,
            "name": "Ann Lee",
            "first_name": "Ann",
            "last_name": "Lee",
            "emails": [{"value": "a@b.test"}],
            "phones": [],
            "org_id": 3,
            "label_ids": [1],
        },
        "previous": {"name": "Ann"},
    }
    masked = payload_mask(payload=payload, entity="person")
    assert masked["data"]["name"] == masked["data"]["first_name"] == masked["data"]["last_name"] == MASK
    assert masked["data"]["emails"] == MASK and masked["data"]["phones"] == []  # empty stays empty
    assert masked["previous"]["name"] == MASK
    assert masked["data"]["org_id"] == 3 and masked["meta"]["entity_id"] == "42"
    assert payload["data"]["name"] == "Ann Lee"  # the original is untouched


def test_v1_deal_payload_keeps_the_deal_name_and_masks_people_and_secrets() -> None:
    payload = {
        "meta": {"object": "deal", "action": "updated", "http_auth": {"user": "u", "password": "p"}},
        "current": {
            "title": "Big deal",
            "name": "Big deal",
            "person_name": "Bob",
            "owner_name": "Carl",
            "cc_email": "deal+1@x.test",
            "person_id": {"name": "Bob", "email": [{"value": "b@x"}], "value": 9},
            "user_id": {"name": "Una", "id": 1},
            "api_token": "tok",
        },
    }
    masked = payload_mask(payload=payload, entity="deal")
    current = masked["current"]
    assert current["title"] == current["name"] == "Big deal"
    assert current["person_name"] == current["owner_name"] == current["cc_email"] == current["api_token"] == MASK
    assert current["person_id"] == {"name": MASK, "email": MASK, "value": 9}
    assert current["user_id"] == {"name": MASK, "id": 1}
    assert masked["meta"]["http_auth"] == MASK


def test_bar_chart_is_plain_escaped_svg() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    buckets = time_buckets(
        counts={(start, "up"): 3, (start + timedelta(days=1), "down"): 2},
        start=start,
        step=timedelta(days=1),
        number=3,
        label_format="%d %b",
    )
    assert [b.label for b in buckets] == ["01 Jan", "02 Jan", "03 Jan"]
    svg = bar_chart_svg(
        buckets=[*buckets, Bucket(label="<script>", values={})],
        series=[Series("up", "installs", "s-ok"), Series("down", "uninstalls", "s-bad", -1)],
        title="T & <b>",
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "T &amp; &lt;b&gt;" in svg
    assert svg.count('class="s-ok"') == 1 and svg.count('class="s-bad"') == 1
    assert "01 Jan: installs 3, uninstalls 0" in svg
