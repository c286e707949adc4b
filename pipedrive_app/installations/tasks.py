"""Celery tasks for installations: thin wrappers that own the retry policy."""

from __future__ import annotations

import logging

from celery import shared_task

from .services import (
    InstallationNotActive,
    TokenRefreshFailed,
    installation_token_refresh,
    installations_due_for_idle_refresh,
    oauth_states_purge_expired,
)

logger = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(TokenRefreshFailed,),
    retry_backoff=30,
    retry_backoff_max=30 * 60,
    retry_jitter=True,
    max_retries=5,
)
def refresh_installation_token(installation_id: int) -> None:
    """Refresh one installation's tokens now; failures are recorded on the installation."""
    try:
        installation_token_refresh(installation_id=installation_id, force=True)
    except InstallationNotActive:
        # Needs re-auth (recorded by the service) or uninstalled meanwhile: nothing to retry.
        logger.info("installation %s: not refreshed, not active", installation_id)


@shared_task
def refresh_idle_refresh_tokens() -> int:
    """Use every refresh token idle for PIPEDRIVE_REFRESH_IDLE_DAYS before Pipedrive's 60-day limit."""
    due = installations_due_for_idle_refresh()
    for installation_id in due:
        refresh_installation_token.delay(installation_id)
    logger.info("idle token refresh: %d installation(s) queued", len(due))
    return len(due)


@shared_task
def purge_expired_oauth_states() -> int:
    return oauth_states_purge_expired()
