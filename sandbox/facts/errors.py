"""The bodies Pipedrive answers errors with.

API: ``{"success": false, "error": ..., "errorCode": <status>}`` (v1 webhooks add ``"status": "error"``
and per-field ``errors`` on validation). OAuth: ``{"error", "error_description"}`` (RFC 6749 §5.2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

UNAUTHORIZED_MESSAGE = "unauthorized access"
OVER_LIMIT_MESSAGE = "Request over limit"
BUDGET_EXHAUSTED_MESSAGE = "Daily token budget of the company exhausted"


def api_error(http_status: int, error: str, /, **extra: Any) -> dict[str, Any]:
    """``extra`` adds fields, e.g. ``status="error"`` as v1 webhooks answer."""
    return {"success": False, "error": error, "errorCode": http_status, **extra}


def unauthorized() -> dict[str, Any]:
    return api_error(401, UNAUTHORIZED_MESSAGE)


def over_limit() -> dict[str, Any]:
    return api_error(429, OVER_LIMIT_MESSAGE)


def scope_denied(accepted: Iterable[str]) -> dict[str, Any]:
    needed = " or ".join(sorted(accepted))
    return api_error(403, f"This token lacks the scope this request needs ({needed})", message="Forbidden")


def admin_required() -> dict[str, Any]:
    return api_error(403, "You do not have permission to manage webhooks")


def not_found(kind: str) -> dict[str, Any]:
    return api_error(404, f"{kind} not found")


def invalid_fields(errors: Mapping[str, list[str]]) -> dict[str, Any]:
    """A refused v1 webhook (400): the reasons per field."""
    return {"success": False, "status": "error", "errors": dict(errors)}


def webhook_not_found() -> dict[str, Any]:
    return {"success": False, "status": "error", "errors": {"id": ["Webhook not found"]}, "error": "Webhook not found"}


def oauth_error(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description}
