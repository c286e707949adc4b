"""Who may read ``/metrics``, the switch that turns metrics off, and bounded endpoint labels."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings

from pipedrive_app.metrics import instruments

from .conftest import SCRAPE_TOKEN

pytestmark = pytest.mark.django_db


def _get(*, remote: str = "127.0.0.1", auth: str | None = None) -> int:
    headers: dict[str, Any] = {"REMOTE_ADDR": remote}
    if auth is not None:
        headers["HTTP_AUTHORIZATION"] = auth
    return Client().get("/metrics", **headers).status_code


def test_nothing_configured_means_no_endpoint(metrics_settings) -> None:
    metrics_settings.METRICS_TOKEN = ""
    metrics_settings.METRICS_ALLOWED_NETWORKS = []
    assert _get() == 404
    assert _get(auth=f"Bearer {SCRAPE_TOKEN}") == 404


def test_the_token_is_required_when_set(metrics_settings) -> None:
    assert _get() == 403
    assert _get(auth="Bearer wrong") == 403
    assert _get(auth=f"Basic {SCRAPE_TOKEN}") == 403
    assert _get(auth=f"Bearer {SCRAPE_TOKEN}x") == 403
    assert _get(auth=f"Bearer {SCRAPE_TOKEN}") == 200
    assert _get(remote="203.0.113.9", auth=f"bearer {SCRAPE_TOKEN}") == 200  # no network rule set


def test_the_network_rule_alone(metrics_settings) -> None:
    metrics_settings.METRICS_TOKEN = ""
    metrics_settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "::1/128"]
    assert _get(remote="10.1.2.3") == 200
    assert _get(remote="::1") == 200
    assert _get(remote="192.168.1.1") == 403
    assert _get(remote="not-an-address") == 403


def test_token_and_network_both_hold_when_both_are_set(metrics_settings) -> None:
    metrics_settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert _get(remote="10.0.0.5", auth=f"Bearer {SCRAPE_TOKEN}") == 200
    assert _get(remote="10.0.0.5") == 403
    assert _get(remote="192.0.2.1", auth=f"Bearer {SCRAPE_TOKEN}") == 403


def test_only_get(metrics_settings) -> None:
    assert Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {SCRAPE_TOKEN}").status_code == 405


def test_a_refusal_does_not_echo_the_token(metrics_settings, caplog) -> None:
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer guessed-token-123456")
    assert response.status_code == 403
    assert b"guessed" not in response.content
    assert "guessed-token" not in caplog.text


def test_switched_off_the_endpoint_is_gone_and_hooks_wrap_nothing(metrics_settings) -> None:
    def view(request):
        return None

    with override_settings(METRICS_ENABLED=False):
        assert _get(auth=f"Bearer {SCRAPE_TOKEN}") == 404
        assert instruments.webhook_receiver(view) is view
        assert instruments.panel_timed("deal_panel", view) is view
        assert instruments.pipedrive_call(view) is view
        assert instruments.token_refresh(view) is view
    assert instruments.webhook_receiver(view) is not view


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/v2/deals/42", "/api/v2/deals/{id}"),
        ("/api/v1/users/me", "/api/v1/users/me"),
        ("/api/v2/dealFields", "/api/v2/dealFields"),
        ("/api/v1/webhooks/123", "/api/v1/webhooks/{id}"),
        ("/api/v2/leads/adf21080-0e10-11eb-879b-05d71fb426ec", "/api/v2/leads/{id}"),
        ("/api/v1/persons/search?term=mia@example.com", "/api/v1/persons/search"),
        ("/api/v1/persons/mia@example.com", "other"),
        ("/somewhere/else", "other"),
    ],
)
def test_endpoints_are_templated(path: str, template: str) -> None:
    assert instruments.endpoint_template(path) == template


def test_endpoint_labels_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(instruments, "_endpoints", {})
    seen = {instruments.endpoint_template(f"/api/v1/thing{n}/7") for n in range(instruments.MAX_ENDPOINTS * 3)}
    assert len(seen) <= instruments.MAX_ENDPOINTS + 1
    assert "other" in seen
