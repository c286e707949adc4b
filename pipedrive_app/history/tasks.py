"""Celery tasks for the change history."""

from __future__ import annotations

from celery import shared_task

from .services import history_purge_expired


@shared_task
def purge_expired_history() -> int:
    """Periodic: enforce each company's history retention."""
    return history_purge_expired()
