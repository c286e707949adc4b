"""``GET /metrics``: Prometheus' text format, for scrapers only.

Access: ``METRICS_TOKEN`` (``Authorization: Bearer <token>``) and/or ``METRICS_ALLOWED_NETWORKS``
(the connecting address, ``REMOTE_ADDR``: proxies' ``X-Forwarded-For`` is not trusted here). With
both set, both must hold. Nothing configured (or ``METRICS_ENABLED`` off): 404, the endpoint does
not exist. A scraper that fails either check: 403.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from collections.abc import Iterable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from . import live
from .collectors import ScrapeTimeCollector

logger = logging.getLogger(__name__)


def multiprocess_dir() -> str | None:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return path if path and os.path.isdir(path) else None


class _ThisProcess(Collector):
    """The default registry (this process's metrics, plus process_* and python_*), in single-process mode."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def registry(*, scrape_time: bool = True) -> CollectorRegistry:
    """What a scrape reads: every process's files in multiprocess mode, else this process."""
    built = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        multiprocess.MultiProcessCollector(built, path=path)
    else:
        built.register(_ThisProcess())
    if scrape_time:
        built.register(ScrapeTimeCollector())
    return built


def _client_allowed(request: HttpRequest) -> bool:
    networks = settings.METRICS_ALLOWED_NETWORKS
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net.strip(), strict=False) for net in networks)


def _token_ok(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    if not expected:
        return True
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), expected.encode())


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_ENABLED or not (settings.METRICS_TOKEN or settings.METRICS_ALLOWED_NETWORKS):
        raise Http404("no such page")
    if not (_client_allowed(request) and _token_ok(request)):
        logger.info("metrics: scrape refused for %s", request.META.get("REMOTE_ADDR", "?"))
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    families = list(registry().collect())
    live.snapshots_update(families=families)  # the dashboard's "last minutes" read these snapshots
    return HttpResponse(generate_latest(_Collected(families)), content_type=CONTENT_TYPE_LATEST)


class _Collected(Collector):
    """Families already collected, served as a registry (``generate_latest`` only calls ``collect``)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return iter(self._families)
