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
from datetime import datetime, timedelta

from django.db.models import F
from django.utils import timezone

from .facts.limits import BurstLimiter, LimitState
from .facts.operations import OPERATIONS
from .models import SandboxCompany

__all__ = ["OPERATIONS", "BurstLimiter", "LimitState", "burst_limiter", "operation_cost", "operation_scopes"]


def operation_cost(key: str) -> int:
    return OPERATIONS[key].cost()


def operation_scopes(key: str) -> tuple[str, ...]:
    return tuple(sorted(OPERATIONS[key].scopes()))


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
