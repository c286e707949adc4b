"""What webhooks does when installations change: receivers of ``installations.signals``,
connected in WebhooksConfig.ready()."""

from __future__ import annotations

import logging
from typing import Any

from pipedrive_app.installations.models import Installation

from . import services

logger = logging.getLogger(__name__)


def on_installation_activated(sender: object, *, installation_id: int, **kwargs: Any) -> None:
    """Runs after the install committed: provision (or re-own) the company's subscriptions."""
    company_id = Installation.objects.filter(pk=installation_id).values_list("company_id", flat=True).first()
    if company_id is not None:
        services.company_webhooks_reconcile_enqueue(company_id=company_id)


def on_company_settings_changed(sender: object, *, company_id: int, **kwargs: Any) -> None:
    services.company_webhooks_reconcile_enqueue(company_id=company_id)


def on_installation_uninstalled(sender: object, *, company_id: int, **kwargs: Any) -> None:
    """A user left but the company stays: if they owned the webhooks, another admin takes over."""
    services.company_webhooks_reconcile_enqueue(company_id=company_id)


def before_vendor_uninstall(sender: object, *, installation: Installation, **kwargs: Any) -> None:
    try:
        services.company_webhooks_release(installation=installation)
    except Exception:  # never block an uninstall
        logger.exception("installation %s: releasing webhooks failed", installation.pk)
