"""Celery tasks for the dashboard: thin; the action row records the outcome (no automatic retry:
the operator sees the failure and can ask again)."""

from __future__ import annotations

from celery import shared_task

from .services import operator_action_execute


@shared_task
def run_operator_action(action_id: int) -> str:
    return operator_action_execute(action_id=action_id).status
