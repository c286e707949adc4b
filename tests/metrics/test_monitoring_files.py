"""The shipped alert rules and Grafana dashboard: valid, tested by promtool, and about metrics that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from pipedrive_app.metrics import collectors
from tests.conftest import _service_missing

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "prometheus-rules.yml"
RULE_TESTS = MONITORING / "prometheus-rules.test.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
NAME = re.compile(r"\bpipedrive_app_[a-z0-9_]+")


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        _service_missing("promtool is not installed (Debian: apt-get install prometheus; `make monitoring-tools`)")
    return str(found)


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    done = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def exposed_names(db) -> set[str]:
    """Every series name /metrics can serve: the instruments' families and the scrape-time gauges."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum"}
        else:
            names.add(family.name)
    names |= {f"{collectors.PREFIX}_{gauge.name}" for gauge in collectors.compute()}
    names.add(f"{collectors.PREFIX}_celery_queue_length")  # served only with a Redis broker
    return names


def test_every_metric_the_rules_and_the_dashboard_use_exists(exposed_names: set[str]) -> None:
    used = set(NAME.findall(RULES.read_text())) | set(NAME.findall(DASHBOARD.read_text()))
    assert used, "no pipedrive_app_ metric referenced"
    assert used <= exposed_names, sorted(used - exposed_names)
    # And each red state of the runbook has its alert.
    rules = RULES.read_text()
    for alert in (
        "PipedriveAppInstallationsNeedReauth",
        "PipedriveAppTokenRefreshFailing",
        "PipedriveAppWebhooksUnavailable",
        "PipedriveAppWebhooksUnhealthy",
        "PipedriveAppDeadEvents",
        "PipedriveAppPendingEventsGrowing",
        "PipedriveAppDatabaseUnreachable",
        "PipedriveAppBrokerUnreachable",
    ):
        assert f"alert: {alert}" in rules, alert


def test_the_dashboard_is_importable_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 20
    for panel in panels:
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_deployment_guide_links_both_files() -> None:
    guide = (ROOT / "docs" / "deployment.md").read_text()
    for path in ("deploy/monitoring/prometheus-rules.yml", "deploy/monitoring/grafana-dashboard.json"):
        assert f"](../{path})" in guide, path  # relative to docs/
    for name in ("METRICS_TOKEN", "METRICS_ALLOWED_NETWORKS", "PROMETHEUS_MULTIPROC_DIR", "METRICS_ENABLED"):
        assert name in guide, name
        assert name in (ROOT / ".env.example").read_text(), name
