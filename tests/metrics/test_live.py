"""The dashboard's live figures: quantiles from histogram buckets, windows from snapshots, the widget."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from pipedrive_app.metrics import instruments, live
from pipedrive_app.webhooks.models import InboxEvent
from tests.dashboard.conftest import (  # noqa: F401  (fixtures)
    make_company,  # noqa: F401
    make_event,
    operator,
    operator_client,
)


def test_quantile_reads_buckets_like_histogram_quantile() -> None:
    buckets = {"0.1": 5.0, "0.5": 10.0, "1.0": 10.0, "+Inf": 10.0}
    assert live.quantile(0.5, buckets) == pytest.approx(0.1)
    assert live.quantile(0.75, buckets) == pytest.approx(0.3)
    assert live.quantile(0.5, {"0.1": 0.0, "+Inf": 0.0}) is None
    assert live.quantile(0.99, {"0.1": 1.0, "+Inf": 10.0}) == pytest.approx(0.1)  # at least the last bound


def test_figures_cover_the_window_since_the_snapshot_before_it(settings) -> None:
    cache.clear()
    start = 1_000_000.0
    live.snapshots_update(start)  # what the histograms held before
    for _ in range(4):
        instruments.HISTORY_LAG_SECONDS.observe(0.2)
    instruments.HISTORY_LAG_SECONDS.observe(40.0)
    history, current = live.snapshots_update(start + live.WINDOW + 1)
    figure = live._figure("lag", history, current, start + live.WINDOW + 1)
    assert figure.count == 5
    assert figure.p50 is not None and 0.1 < figure.p50 <= 0.25
    assert figure.p95 is not None and figure.p95 > 30
    assert figure.level == "bad"
    assert 'class="dist"' in figure.picture and figure.trend == ""  # one snapshot: no trend yet
    cache.clear()


@pytest.mark.django_db
def test_the_overview_shows_the_live_lag_and_acknowledgement_latency(operator_client: Client, make_company) -> None:  # noqa: F811
    cache.clear()
    company = make_company()
    make_event(company=company, status=InboxEvent.Status.PENDING, received_at=timezone.now() - timedelta(minutes=3))
    instruments.HISTORY_LAG_SECONDS.observe(0.4)
    instruments.WEBHOOK_ACK_SECONDS.labels(outcome="acknowledged").observe(0.004)

    html = operator_client.get("/dashboard/").content.decode()

    assert 'data-live="lag"' in html and 'data-live="ack"' in html
    assert "History lag" in html and "Acknowledgement" in html
    assert "oldest pending" in html and "3 min" in html
    assert html.count('<svg class="dist"') == 2
    cache.clear()


@pytest.mark.django_db
def test_the_widget_is_left_out_when_metrics_are_off(operator_client: Client, settings) -> None:  # noqa: F811
    settings.METRICS_ENABLED = False
    html = operator_client.get("/dashboard/").content.decode()
    assert 'data-live="lag"' not in html


@pytest.mark.django_db
def test_replays_and_processing_outcomes_are_counted(
    make_company,  # noqa: F811
    django_capture_on_commit_callbacks,
    monkeypatch,
) -> None:
    from prometheus_client import REGISTRY

    from pipedrive_app.webhooks import services

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(f"pipedrive_app_{name}", labels) or 0.0

    company = make_company()
    unreadable = make_event(company=company, status=InboxEvent.Status.DEAD, body={"not": "a delivery"})
    before = {
        "replayed": sample("webhook_events_replayed_total"),
        "unprocessable": sample("webhook_events_processed_total", outcome="unprocessable"),
        "dead": sample("webhook_events_dead_total"),
        "dead_outcome": sample("webhook_events_processed_total", outcome="dead"),
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert services.inbox_event_replay(inbox_event_id=unreadable.pk)
    assert sample("webhook_events_replayed_total") == before["replayed"] + 1
    # Processed again at once (eager): the body is no delivery.
    assert InboxEvent.objects.get(pk=unreadable.pk).status == InboxEvent.Status.UNPROCESSABLE
    assert sample("webhook_events_processed_total", outcome="unprocessable") == before["unprocessable"] + 1

    class Broken:
        def prepare(self, context):
            raise RuntimeError("a bug")

        def apply(self, context, prepared):
            raise AssertionError("not reached")

    monkeypatch.setattr(services.inbox, "handlers_for", lambda **_: [Broken()])
    failing = make_event(company=company, status=InboxEvent.Status.PENDING)
    assert services.inbox_event_process(inbox_event_id=failing.pk) == "dead"
    assert sample("webhook_events_dead_total") == before["dead"] + 1
    assert sample("webhook_events_processed_total", outcome="dead") == before["dead_outcome"] + 1
