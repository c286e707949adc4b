"""Pipedrive's API limits, simulated (docs/pipedrive-platform.md §5).

- **Burst**: requests per access token over a rolling window (``facts.limits``; the company's plan
  sets how many). Kept in process memory: the sandbox is one development server.
- **Daily budget**: each operation costs its ``x-token-cost``, read from Pipedrive's OpenAPI files
  (``facts.openapi``), from the company's budget, shared by all its users.

Over either limit the API answers 429 with ``x-ratelimit-limit``, ``x-ratelimit-remaining``,
``x-ratelimit-reset`` (seconds) and ``Retry-After``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F
from django.utils import timezone

from .facts import openapi
from .facts.limits import BurstLimiter, LimitState
from .models import SandboxCompany

__all__ = ["OPERATIONS", "BurstLimiter", "LimitState", "burst_limiter", "operation_cost", "operation_scopes"]


@dataclass(frozen=True)
class Operation:
    spec: str  # "v1" or "v2"
    method: str
    template: str  # the path template in the spec file: its scopes and cost are read there


# The operations the sandbox implements.
OPERATIONS: dict[str, Operation] = {
    "users.list": Operation("v1", "get", "/users"),
    "users.me": Operation("v1", "get", "/users/me"),
    "users.get": Operation("v1", "get", "/users/{id}"),
    "notes.list": Operation("v1", "get", "/notes"),
    "notes.create": Operation("v1", "post", "/notes"),
    "leads.list": Operation("v1", "get", "/leads"),
    "leads.create": Operation("v1", "post", "/leads"),
    "leads.get": Operation("v1", "get", "/leads/{id}"),
    "leads.update": Operation("v1", "patch", "/leads/{id}"),
    "leads.delete": Operation("v1", "delete", "/leads/{id}"),
    "webhooks.list": Operation("v1", "get", "/webhooks"),
    "webhooks.create": Operation("v1", "post", "/webhooks"),
    "webhooks.delete": Operation("v1", "delete", "/webhooks/{id}"),
    "deals.list": Operation("v2", "get", "/deals"),
    "deals.create": Operation("v2", "post", "/deals"),
    "deals.get": Operation("v2", "get", "/deals/{id}"),
    "deals.update": Operation("v2", "patch", "/deals/{id}"),
    "deals.delete": Operation("v2", "delete", "/deals/{id}"),
    "persons.list": Operation("v2", "get", "/persons"),
    "persons.create": Operation("v2", "post", "/persons"),
    "persons.get": Operation("v2", "get", "/persons/{id}"),
    "persons.update": Operation("v2", "patch", "/persons/{id}"),
    "persons.delete": Operation("v2", "delete", "/persons/{id}"),
    "organizations.get": Operation("v2", "get", "/organizations/{id}"),
    "pipelines.list": Operation("v2", "get", "/pipelines"),
    "pipelines.get": Operation("v2", "get", "/pipelines/{id}"),
    "stages.list": Operation("v2", "get", "/stages"),
    "stages.get": Operation("v2", "get", "/stages/{id}"),
    "dealFields.list": Operation("v2", "get", "/dealFields"),
    "personFields.list": Operation("v2", "get", "/personFields"),
}


def operation_cost(key: str) -> int:
    operation = OPERATIONS[key]
    return openapi.operation_cost(operation.spec, operation.method, operation.template)


def operation_scopes(key: str) -> tuple[str, ...]:
    operation = OPERATIONS[key]
    return tuple(sorted(openapi.operation_scopes(operation.spec, operation.method, operation.template)))


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
