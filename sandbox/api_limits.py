"""Pipedrive's API limits, simulated (docs/pipedrive-platform.md §5).

- **Burst**: requests per access token over a rolling window (2 s by default; the company's plan
  sets how many). Kept in process memory: the sandbox is one development server.
- **Daily budget**: each operation costs its ``x-token-cost`` (read from Pipedrive's OpenAPI files,
  with a fallback table when they are absent) from the company's budget, shared by all its users.

Over either limit the API answers 429 with ``x-ratelimit-limit``, ``x-ratelimit-remaining``,
``x-ratelimit-reset`` (seconds) and ``Retry-After``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from django.db.models import F
from django.utils import timezone

from . import conf
from .models import SandboxCompany

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Operation:
    spec: str  # "v1" or "v2"
    method: str
    template: str  # the path template in the spec file
    cost: int  # fallback x-token-cost
    scopes: tuple[str, ...]  # fallback: any one of them suffices


# The operations the sandbox implements. Costs and scopes are overwritten from the OpenAPI files.
OPERATIONS: dict[str, Operation] = {
    "users.me": Operation("v1", "get", "/users/me", 2, ("base",)),
    "users.list": Operation("v1", "get", "/users", 20, ("users:read",)),
    "users.get": Operation("v1", "get", "/users/{id}", 2, ("users:read",)),
    "notes.list": Operation("v1", "get", "/notes", 20, ("deals:read", "deals:full", "contacts:read", "contacts:full")),
    "notes.create": Operation("v1", "post", "/notes", 10, ("deals:full", "contacts:full")),
    "webhooks.list": Operation("v1", "get", "/webhooks", 10, ("admin",)),
    "webhooks.create": Operation("v1", "post", "/webhooks", 10, ("admin",)),
    "webhooks.delete": Operation("v1", "delete", "/webhooks/{id}", 6, ("admin",)),
    "deals.list": Operation("v2", "get", "/deals", 10, ("deals:read", "deals:full")),
    "deals.create": Operation("v2", "post", "/deals", 5, ("deals:full",)),
    "deals.get": Operation("v2", "get", "/deals/{id}", 1, ("deals:read", "deals:full")),
    "deals.update": Operation("v2", "patch", "/deals/{id}", 5, ("deals:full",)),
    "deals.delete": Operation("v2", "delete", "/deals/{id}", 3, ("deals:full",)),
    "persons.list": Operation("v2", "get", "/persons", 10, ("contacts:read", "contacts:full")),
    "persons.create": Operation("v2", "post", "/persons", 5, ("contacts:full",)),
    "persons.get": Operation("v2", "get", "/persons/{id}", 1, ("contacts:read", "contacts:full")),
    "persons.update": Operation("v2", "patch", "/persons/{id}", 5, ("contacts:full",)),
    "persons.delete": Operation("v2", "delete", "/persons/{id}", 3, ("contacts:full",)),
    "organizations.get": Operation("v2", "get", "/organizations/{id}", 1, ("contacts:read", "contacts:full")),
    "pipelines.list": Operation("v2", "get", "/pipelines", 5, ("deals:read", "deals:full", "admin")),
    "pipelines.get": Operation("v2", "get", "/pipelines/{id}", 1, ("deals:read", "deals:full", "admin")),
    "stages.list": Operation("v2", "get", "/stages", 5, ("deals:read", "deals:full", "admin")),
    "stages.get": Operation("v2", "get", "/stages/{id}", 1, ("deals:read", "deals:full", "admin")),
    "dealFields.list": Operation(
        "v2", "get", "/dealFields", 10, ("deals:read", "deals:full", "admin", "deal-fields:full")
    ),
    "personFields.list": Operation(
        "v2", "get", "/personFields", 10, ("contacts:read", "contacts:full", "admin", "contact-fields:full")
    ),
}

_spec_lock = threading.Lock()


@cache
def _from_spec() -> dict[str, tuple[int, tuple[str, ...]]]:
    """(cost, scopes) per operation from v1.yaml/v2.yaml; empty when the files cannot be read."""
    directory = conf.openapi_dir()
    try:
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        documents = {}
        for name in ("v1", "v2"):
            with open(directory / f"{name}.yaml", encoding="utf-8") as handle:
                documents[name] = yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader
    except (ImportError, OSError, ValueError) as exc:
        logger.info("sandbox: OpenAPI files not read (%s); using the fallback cost table", type(exc).__name__)
        return {}
    found: dict[str, tuple[int, tuple[str, ...]]] = {}
    for key, operation in OPERATIONS.items():
        node = documents[operation.spec].get("paths", {}).get(operation.template, {}).get(operation.method)
        if not isinstance(node, dict):
            continue
        cost = node.get("x-token-cost", operation.cost)
        scopes: list[str] = []
        for requirement in node.get("security") or []:
            scopes.extend(requirement.get("oauth2") or [])
        found[key] = (int(cost), tuple(scopes) or operation.scopes)
    return found


def operation_cost(key: str) -> int:
    with _spec_lock:
        overlay = _from_spec()
    return overlay.get(key, (OPERATIONS[key].cost, ()))[0]


def operation_scopes(key: str) -> tuple[str, ...]:
    with _spec_lock:
        overlay = _from_spec()
    return overlay.get(key, (0, OPERATIONS[key].scopes))[1]


# --- burst limit ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitState:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        headers = {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


class BurstLimiter:
    """A rolling-window counter per key (an access token's digest)."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, *, limit: int, window: float, now: float | None = None) -> LimitState:
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                wait = hits[0] + window - now
                return LimitState(False, limit, 0, max(1, math.ceil(wait)))
            hits.append(now)
            wait = hits[0] + window - now
            return LimitState(True, limit, limit - len(hits), max(1, math.ceil(wait)))

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()


burst_limiter = BurstLimiter()


# --- daily budget ----------------------------------------------------------------------------------------


def _seconds_to_midnight(now: datetime) -> int:
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((tomorrow - now).total_seconds()))


def company_budget_charge(*, company_id: int, cost: int) -> LimitState:
    """Take ``cost`` tokens from today's budget (UTC days) if there are enough left."""
    now = timezone.now()
    today = now.date()
    SandboxCompany.objects.filter(pk=company_id).exclude(budget_day=today).update(budget_day=today, budget_used=0)
    company = SandboxCompany.objects.only("daily_budget", "budget_used").get(pk=company_id)
    charged = SandboxCompany.objects.filter(
        pk=company_id, budget_day=today, budget_used__lte=company.daily_budget - cost
    ).update(budget_used=F("budget_used") + cost)
    company.refresh_from_db(fields=["budget_used"])
    remaining = max(0, company.daily_budget - company.budget_used)
    return LimitState(bool(charged), company.daily_budget, remaining, _seconds_to_midnight(now))
