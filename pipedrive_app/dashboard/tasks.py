"""Celery tasks for the dashboard: thin; the action row records the outcome (no automatic retry:
the operator sees the failure and can ask again)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from .inbox_counts import inbox_hours_count
from .services import operator_action_execute


@shared_task
def run_operator_action(action_id: int) -> str:
    return operator_action_execute(action_id=action_id).status


@shared_task
def count_inbox_hours() -> int:
    """Count the webhook deliveries of each hour that is over (the overview's chart; inbox_counts.py)."""
    return inbox_hours_count(start=timezone.now() - timedelta(days=8))
