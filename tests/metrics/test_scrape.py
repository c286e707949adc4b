"""``/metrics`` after the app did real work against the Pipedrive double: every series moves, and no
label carries a token, an email or a record's title."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from pipedrive_app.installations.services import installation_token_refresh
from pipedrive_app.webhooks.models import InboxEvent
from pipedrive_app.webhooks.services import webhook_state_get_or_create
from tests.doubles.pipedrive_double import issued_secrets
from tests.extensions.conftest import ADMIN, COMPANY, panel_query
from tests.webhooks.conftest import load_event

from .conftest import SCRAPE_TOKEN, Samples, value

pytestmark = pytest.mark.django_db

A = "pipedrive_app_"


def _deliver(client: Client, state: Any, payload: dict[str, Any], capture: Any) -> Any:
    auth = base64.b64encode(f"{state.http_auth_user}:{state.http_auth_password}".encode()).decode()
    with capture(execute=True):
        return client.generic(
            "POST",
            f"/webhooks/pipedrive/{state.url_key}/",
            json.dumps(payload).encode(),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Basic {auth}",
        )


@pytest.fixture
def activity(seeded_company, pipedrive, django_capture_on_commit_callbacks, scrape) -> dict[str, Any]:
    """Scrape, then: a delivery (and a refused one), a token refresh, a panel render, a 429; scrape."""
    world = seeded_company()
    installation = world["installations"][ADMIN]
    state = webhook_state_get_or_create(company=installation.company)
    client = Client()
    before = scrape()

    payload = load_event("deal.change", company_id=str(COMPANY))
    payload["data"]["title"] = world["deal"]["title"]
    assert _deliver(client, state, payload, django_capture_on_commit_callbacks).status_code == 200
    assert InboxEvent.objects.get().status == InboxEvent.Status.PROCESSED
    assert _deliver(client, state, payload, django_capture_on_commit_callbacks).json()["duplicate"] is True
    refused = client.post(f"/webhooks/pipedrive/{state.url_key}/", b"{}", content_type="application/json")
    assert refused.status_code == 401

    installation_token_refresh(installation_id=installation.pk, force=True)

    deal_path = f"/extensions/panels/deal/?{panel_query(record_id=world['deal']['id'])}"
    assert "Northwind renewal" in client.get(deal_path).content.decode()
    pipedrive.rate_limit_next(f"/api/v2/deals/{world['deal']['id']}", times=2, retry_after=0, reset=None)
    cache.clear()  # the panel cache: the next load asks Pipedrive again
    assert "Pipedrive is busy" in client.get(deal_path).content.decode()
    after = scrape()
    return {"before": before, "after": after, "world": world, "state": state, "installation": installation}


def _moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_each_series_moves_after_a_delivery_a_refresh_a_panel_and_a_429(activity) -> None:
    b, a = activity["before"], activity["after"]

    assert _moved(b, a, f"{A}webhook_deliveries_received_total") == 3
    assert _moved(b, a, f"{A}webhook_deliveries_acknowledged_total", duplicate="false") == 1
    assert _moved(b, a, f"{A}webhook_deliveries_acknowledged_total", duplicate="true") == 1
    assert _moved(b, a, f"{A}webhook_deliveries_refused_total", reason="unauthorized") == 1
    assert _moved(b, a, f"{A}webhook_ack_seconds_count", outcome="acknowledged") == 2
    assert _moved(b, a, f"{A}webhook_ack_seconds_bucket", outcome="acknowledged", le="+Inf") == 2
    assert _moved(b, a, f"{A}webhook_ack_seconds_count", outcome="refused") == 1
    assert _moved(b, a, f"{A}webhook_history_lag_seconds_count") == 1
    assert _moved(b, a, f"{A}webhook_events_processed_total", outcome="processed") == 1

    assert _moved(b, a, f"{A}token_refreshes_total", outcome="ok") == 1
    assert _moved(b, a, f"{A}token_refresh_seconds_count", outcome="ok") == 1

    assert _moved(b, a, f"{A}panel_render_seconds_count", surface="deal_panel", outcome="ok") == 1
    assert _moved(b, a, f"{A}panel_render_seconds_count", surface="deal_panel", outcome="rate_limited") == 1

    deals = "/api/v2/deals/{id}"
    assert _moved(b, a, f"{A}pipedrive_requests_total", endpoint=deals, method="GET", status="429") == 2
    assert _moved(b, a, f"{A}pipedrive_requests_total", endpoint=deals, method="GET", status="200") >= 1
    assert _moved(b, a, f"{A}pipedrive_rate_limited_total", endpoint=deals) == 2
    assert _moved(b, a, f"{A}pipedrive_request_seconds_count", endpoint=deals) >= 3

    # Scrape-time gauges: the inbox (nothing pending), the installation, the budget the calls spent.
    assert value(a, f"{A}webhook_inbox_events", state="pending") == 0
    assert (f"{A}webhook_inbox_events", frozenset({("state", "dead")})) in a
    assert value(a, f"{A}webhook_inbox_oldest_pending_seconds") == 0
    assert value(a, f"{A}installations", status="active") == 1
    assert value(a, f"{A}pipedrive_budget_spent_tokens") > value(b, f"{A}pipedrive_budget_spent_tokens")
    assert value(a, f"{A}pipedrive_budget_left_min_tokens") < value(a, f"{A}pipedrive_daily_budget_tokens")
    for part in ("database", "budget"):
        assert value(a, f"{A}metrics_collector_up", collector=part) == 1


# Label values are fixed words, numbers, templated API paths and Python's own version facts.
SAFE_LABEL = re.compile(r"^[A-Za-z0-9_.+{}/:-]{0,80}$")


def test_no_label_carries_a_token_an_email_or_a_title(activity, pipedrive) -> None:
    world, state, installation = activity["world"], activity["state"], activity["installation"]
    installation.refresh_from_db()
    secrets = {s for s in issued_secrets() if len(s) >= 12}
    secrets |= {
        SCRAPE_TOKEN,
        state.url_key,
        state.http_auth_user,
        state.http_auth_password,
        installation.access_token or "",
        installation.refresh_token or "",
    }
    words = {
        world["deal"]["title"],
        "Northwind",
        "Mia Tamm",
        "Ann Admin",
        "Sales pipeline",
        "Proposal made",
        "Big deal",
        "Company 1001",
        "company1001",
    }
    labels = [(name, key, val) for (name, pairs) in activity["after"] for key, val in pairs]
    assert labels, "no labelled sample at all"
    for name, key, val in labels:
        assert SAFE_LABEL.match(val), (name, key, val)
        assert "@" not in val, (name, key, val)
        assert not any(secret and secret in val for secret in secrets), (name, key)
        assert not any(word.lower() in val.lower() for word in words), (name, key, val)
    # Nor a company's ids: no label is named after one, and Pipedrive's company id is no value.
    assert not {key for _, key, _ in labels} & {"company", "company_id", "user", "user_id", "installation"}
    assert str(COMPANY) not in {val for _, _, val in labels}
