"""Every row lock and lease of the app, in one place, with one lock order.

The rules
---------

1. **Nothing waits on Pipedrive inside a transaction.** A transaction (and any row lock it holds)
   covers database work only: read, decide, write, commit. A call to Pipedrive happens before the
   transaction opens or after it has committed. :func:`outside_transaction` checks this at every
   call site that talks to Pipedrive (the token source, the token refresh); it raises in development
   and tests and logs an error in production.

2. **One lock order: Company → company-scoped rows → Installation.** A transaction that locks more
   than one of these rows locks them in this order, and at most one row of each kind (locks on
   several installations of one company are taken in primary-key order):

   ======  =============================================================================
   level   rows
   ======  =============================================================================
   1       ``installations.Company`` (:func:`lock_company`)
   2       rows that belong to one company: ``installations.CompanySettings``,
           ``webhooks.CompanyWebhookState`` (:func:`lock_company_row`)
   3       ``installations.Installation`` (:func:`lock_installation`)
   ======  =============================================================================

   Install, uninstall, the token store after a refresh and reconciliation's store all follow it, so
   two of them can wait for each other but never deadlock.

3. **Single flight without a lock across the network: leases.** Work that must run once at a time
   and calls Pipedrive (a token refresh) claims a *lease*: one conditional ``UPDATE`` of a
   ``…_lease_until`` column in autocommit (:func:`lease_claim`). The claim commits at once, so no
   lock is held while the holder calls Pipedrive; others see the lease and wait (bounded) or use
   what they already have. A lease expires by itself, so a holder that dies frees it. The holder
   stores its outcome in a short transaction and releases the lease there. Leases live in the
   database, so they work the same on SQLite and PostgreSQL, with or without Redis.

This module only names models by label (``apps.get_model``), so ``core`` imports no other app.
"""

from __future__ import annotations

import logging
import secrets
import sys
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

LOCK_ORDER = (
    "installations.Company",
    "installations.CompanySettings | webhooks.CompanyWebhookState",
    "installations.Installation",
)


class TransactionAroundCall(RuntimeError):
    """A call to Pipedrive was about to be made inside an open transaction (a bug)."""


def _model(label: str) -> type[models.Model]:
    return apps.get_model(label)


def _app_atomic_blocks(using: str | None = None) -> list[Any]:
    """The transaction blocks the app opened (a test case's own wrapping blocks do not count)."""
    connection = transaction.get_connection(using)
    return [block for block in connection.atomic_blocks if not getattr(block, "_from_testcase", False)]


def in_app_transaction(using: str | None = None) -> bool:
    return bool(_app_atomic_blocks(using))


def _strict() -> bool:
    configured = getattr(settings, "PIPEDRIVE_STRICT_CALL_GUARD", None)
    if configured is not None:
        return bool(configured)
    return bool(settings.DEBUG) or "pytest" in sys.modules


def outside_transaction(what: str) -> None:
    """Assert that no transaction is open before calling Pipedrive for ``what``."""
    if not in_app_transaction():
        return
    message = f"{what}: Pipedrive would be called inside an open database transaction"
    if _strict():
        raise TransactionAroundCall(message)
    logger.error("%s (lock order rule 1 in core/locks.py)", message)


def _require_transaction(what: str) -> None:
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError(f"{what} must be locked inside transaction.atomic()")


# --- level 1 ------------------------------------------------------------------------------------------


def lock_company(*, pk: int | None = None, pipedrive_company_id: int | None = None) -> Any:
    """Lock one Company row (level 1) and return it, or None when it does not exist."""
    _require_transaction("a company")
    manager = _model("installations.Company")._default_manager
    if pk is not None:
        return manager.select_for_update().filter(pk=pk).first()
    return manager.select_for_update().filter(pipedrive_company_id=pipedrive_company_id).first()


# --- level 2 ------------------------------------------------------------------------------------------


def lock_company_row(label: str, *, company_id: int, related: tuple[str, ...] = ()) -> Any:
    """Lock the one row of ``label`` (``CompanySettings``, ``CompanyWebhookState``) that belongs to a
    company (level 2); None when there is none. Lock the Company first if you need it too."""
    _require_transaction(label)
    queryset = _model(label)._default_manager.select_for_update(of=("self",) if related else ())
    if related:
        queryset = queryset.select_related(*related)
    return queryset.filter(company_id=company_id).first()


# --- level 3 ------------------------------------------------------------------------------------------


def lock_installation(*, pk: int, related: tuple[str, ...] = ()) -> Any:
    """Lock one Installation row (level 3) and return it, or None."""
    _require_transaction("an installation")
    queryset = _model("installations.Installation")._default_manager.select_for_update(of=("self",) if related else ())
    if related:
        queryset = queryset.select_related(*related)
    return queryset.filter(pk=pk).first()


def lock_installation_of_user(*, company_id: int, pipedrive_user_id: int) -> Any:
    _require_transaction("an installation")
    manager = _model("installations.Installation")._default_manager
    return manager.select_for_update().filter(company_id=company_id, pipedrive_user_id=pipedrive_user_id).first()


# --- leases -------------------------------------------------------------------------------------------


def lease_claim(queryset: models.QuerySet[Any], *, until_field: str, owner_field: str, seconds: float) -> str | None:
    """Claim the lease of the single row in ``queryset`` if it is free or expired.

    One conditional UPDATE, committed at once (autocommit outside a transaction); returns the lease
    id to pass to :func:`lease_release`, or None when someone else holds it.
    """
    now = timezone.now()
    lease_id = secrets.token_hex(8)
    free = models.Q(**{f"{until_field}__isnull": True}) | models.Q(**{f"{until_field}__lte": now})
    claimed = queryset.filter(free).update(**{until_field: now + timedelta(seconds=seconds), owner_field: lease_id})
    return lease_id if claimed else None


def lease_release(queryset: models.QuerySet[Any], *, lease_id: str, until_field: str, owner_field: str) -> bool:
    """Release a lease this caller holds (a lease taken over by someone else is left alone)."""
    return bool(queryset.filter(**{owner_field: lease_id}).update(**{until_field: None, owner_field: ""}))
