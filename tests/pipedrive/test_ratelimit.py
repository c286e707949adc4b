"""The rate limiter's pieces: cost table, in-process store, budget ceilings."""

from __future__ import annotations

import pytest

from pipedrive_app.pipedrive import ratelimit
from pipedrive_app.pipedrive.errors import PipedriveBudgetExhausted, PipedriveRateLimited
from pipedrive_app.pipedrive.ratelimit import Limits, LocalRateStore, RequestLimiter, operation_cost

# (method, path the client sends, spec file, template in the file)
CLIENT_OPERATIONS = [
    ("GET", "/api/v1/users/me", "v1", "/users/me"),
    ("GET", "/api/v1/users/7", "v1", "/users/{id}"),
    ("GET", "/api/v2/deals/7", "v2", "/deals/{id}"),
    ("GET", "/api/v2/deals", "v2", "/deals"),
    ("GET", "/api/v2/persons/7", "v2", "/persons/{id}"),
    ("GET", "/api/v2/persons", "v2", "/persons"),
    ("GET", "/api/v2/organizations/7", "v2", "/organizations/{id}"),
    ("GET", "/api/v2/pipelines/7", "v2", "/pipelines/{id}"),
    ("GET", "/api/v2/stages/7", "v2", "/stages/{id}"),
    ("GET", "/api/v2/dealFields", "v2", "/dealFields"),
    ("GET", "/api/v2/personFields", "v2", "/personFields"),
    ("GET", "/api/v2/organizationFields", "v2", "/organizationFields"),
    ("GET", "/api/v2/productFields", "v2", "/productFields"),
    ("GET", "/api/v2/activityFields", "v2", "/activityFields"),
    ("GET", "/api/v1/notes", "v1", "/notes"),
    ("POST", "/api/v1/notes", "v1", "/notes"),
    ("GET", "/api/v1/webhooks", "v1", "/webhooks"),
    ("POST", "/api/v1/webhooks", "v1", "/webhooks"),
    ("DELETE", "/api/v1/webhooks/7", "v1", "/webhooks/{id}"),
]


@pytest.mark.parametrize(("method", "path", "spec", "template"), CLIENT_OPERATIONS)
def test_cost_table_matches_pipedrives_openapi_files(method: str, path: str, spec: str, template: str) -> None:
    from tests.doubles import openapi_contract

    try:
        openapi_contract.spec_dir()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    expected = openapi_contract.schema_value(spec, "paths", template, method.lower(), "x-token-cost")
    assert operation_cost(method, path) == expected


def test_unknown_operation_costs_the_default() -> None:
    assert operation_cost("PATCH", "/api/v2/whatever/1") == ratelimit.DEFAULT_COST


def test_local_sliding_window() -> None:
    now = [100.0]
    store = LocalRateStore(monotonic=lambda: now[0])
    assert [store.take_burst_slot("t", limit=3, window=2.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert store.take_burst_slot("t", limit=3, window=2.0) == pytest.approx(2.0)
    now[0] += 1.5
    assert store.take_burst_slot("t", limit=3, window=2.0) == pytest.approx(0.5)
    now[0] += 0.5
    assert store.take_burst_slot("t", limit=3, window=2.0) == 0.0
    assert store.take_burst_slot("other", limit=3, window=2.0) == 0.0  # per token


def test_a_slot_is_held_while_its_request_is_in_flight_and_for_a_window_after_it_ends() -> None:
    """Pipedrive counts a request when it arrives, anywhere between our send and its answer: a slow
    request must not free its slot one window after it was *sent* (tests/webhooks/test_rate_limits.py
    caught 81 arrivals in one 2 s window under load before this)."""
    now = [100.0]
    store = LocalRateStore(monotonic=lambda: now[0])
    assert store.take_burst_slot("t", limit=2, window=2.0, member="slow") == 0.0
    assert store.take_burst_slot("t", limit=2, window=2.0, member="fast") == 0.0
    now[0] += 0.1
    store.finish_burst_slot("t", "fast")
    now[0] += 5.0  # long after both were sent; "slow" has still not answered
    assert store.take_burst_slot("t", limit=2, window=2.0, member="next") == 0.0  # "fast" has left
    assert store.take_burst_slot("t", limit=2, window=2.0, member="late") == ratelimit.IN_FLIGHT_POLL
    store.finish_burst_slot("t", "slow")
    now[0] += 1.0
    # "slow" answered 1 s ago: it stays in the window for 1 s more.
    assert store.take_burst_slot("t", limit=2, window=2.0, member="late") == pytest.approx(1.0)
    store.finish_burst_slot("t", "next")
    now[0] += 2.0
    assert store.take_burst_slot("t", limit=2, window=2.0, member="late") == 0.0


def _limiter(store: LocalRateStore, clock, *, interactive: bool) -> RequestLimiter:
    return RequestLimiter(
        store,
        token_key="t",
        company_key="c",
        limits=Limits(burst_limit=100, burst_window=2.0, daily_budget=30, reserve=10),
        interactive=interactive,
        clock=clock,
        sleep=lambda s: None,
    )


def test_background_stops_at_the_reserve_interactive_at_the_budget_and_both_resume_next_day() -> None:
    day = 20_000 * ratelimit.DAY
    now = [day + 3600.0]
    store = LocalRateStore()
    background = _limiter(store, lambda: now[0], interactive=False)
    panel = _limiter(store, lambda: now[0], interactive=True)
    background.before_request("GET", "/api/v1/webhooks")  # 10
    background.before_request("POST", "/api/v1/webhooks")  # 20 = budget - reserve
    with pytest.raises(PipedriveBudgetExhausted) as paused:
        background.before_request("GET", "/api/v2/deals/1")
    assert isinstance(paused.value, PipedriveRateLimited)
    assert paused.value.retry_after == pytest.approx(ratelimit.DAY - 3600)
    panel.before_request("GET", "/api/v2/deals")  # the reserve: 30 of 30
    with pytest.raises(PipedriveBudgetExhausted):
        panel.before_request("GET", "/api/v2/deals/1")
    now[0] = day + ratelimit.DAY + 1  # next UTC day
    background.before_request("GET", "/api/v2/deals/1")


def test_pipedrives_count_of_what_is_left_is_adopted() -> None:
    store = LocalRateStore()
    limiter = _limiter(store, lambda: 5.0, interactive=False)
    limiter.after_response({"x-daily-requests-left": "12"})  # 18 spent elsewhere today
    limiter.before_request("GET", "/api/v1/users/me")  # 20
    with pytest.raises(PipedriveBudgetExhausted):
        limiter.before_request("GET", "/api/v1/users/me")
