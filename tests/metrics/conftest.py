"""Scraping ``/metrics`` in tests: the parsed samples, and a company that did one of everything."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.extensions.conftest import (  # noqa: F401  (fixtures for these tests)
    _extension_settings,
    install_user,
    seeded_company,
)

SCRAPE_TOKEN = "scrape-token-for-tests-0123456789"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value (0 when it is not there yet: a counter that never moved)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metrics_settings(settings) -> Iterator[Any]:
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = SCRAPE_TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    settings.METRICS_SCRAPE_CACHE_SECONDS = 0
    cache.clear()
    yield settings
    cache.clear()


@pytest.fixture
def scrape(metrics_settings) -> Callable[[], Samples]:
    def get() -> Samples:
        response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {SCRAPE_TOKEN}")
        assert response.status_code == 200, response.content[:300]
        assert response["Content-Type"].startswith("text/plain")
        return parse(response.content.decode())

    return get
