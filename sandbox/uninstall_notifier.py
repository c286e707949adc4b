"""Tell the app that a user uninstalled it, as Pipedrive does (docs/pipedrive-platform.md §2).

``DELETE {callback_url}`` with JSON ``{client_id, company_id, user_id, timestamp}`` and HTTP Basic
``client_id:client_secret``. Pipedrive ignores the answer and does not retry; so does the sandbox.
"""

from __future__ import annotations

import logging

import requests
from django.utils import timezone

from . import conf
from .facts import wire

logger = logging.getLogger(__name__)


def app_notify_uninstalled(*, company_id: int, user_id: int, client_id: str) -> int | None:
    """Send the notification; return the app's HTTP status (None when it could not be reached)."""
    body = wire.uninstall_notice(client_id=client_id, company_id=company_id, user_id=user_id, at=timezone.now())
    session = requests.Session()
    session.trust_env = False
    try:
        response = session.delete(
            conf.callback_url(),
            json=body,
            auth=(conf.client_id(), conf.client_secret()),
            timeout=conf.WEBHOOK_TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        logger.warning("sandbox: uninstall notification for user %s failed (%s)", user_id, type(exc).__name__)
        return None
    finally:
        session.close()
    logger.info("sandbox: uninstall notification for user %s answered HTTP %s", user_id, response.status_code)
    return response.status_code
