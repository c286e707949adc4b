"""OAuth scopes: what the registered app asks for and what an install grants.

Pipedrive's scopes are fixed per app in Developer Hub (no ``scope`` parameter); a user who is not an
admin can install the app, and then gets every scope but ``admin`` (docs/pipedrive-platform.md §1).
Which scope each operation needs is read from the OpenAPI files (``openapi.operation_scopes``).
"""

from __future__ import annotations

from collections.abc import Iterable

# users:read lets the panels name a record's owner who has not installed the app (GET /api/v1/users/{id});
# activities:full lets "Schedule a follow-up" create an activity (POST /api/v2/activities).
APP_SCOPES = "base,deals:full,contacts:full,activities:full,users:read,admin"
ADMIN = "admin"


def parse(raw: str | Iterable[str]) -> list[str]:
    """``"a,b c"`` or an iterable of scopes as a list, in order, without blanks."""
    parts = raw.replace(" ", ",").split(",") if isinstance(raw, str) else list(raw)
    return [part for part in parts if part]


def granted(app_scopes: str | Iterable[str], *, is_admin: bool) -> list[str]:
    """What an install by this user grants: the app's scopes, minus ``admin`` for a regular user."""
    scopes = parse(app_scopes)
    return scopes if is_admin else [scope for scope in scopes if scope != ADMIN]


def allows(granted_scopes: Iterable[str], accepted: Iterable[str]) -> bool:
    """An operation accepting ``accepted`` (any one suffices; none listed: any token) is allowed."""
    wanted = set(accepted)
    return not wanted or bool(wanted & set(granted_scopes))


def response_scope(scopes: Iterable[str]) -> str:
    """The token response's ``scope``: comma-separated."""
    return ",".join(scopes)


def admin_only(accepted: Iterable[str]) -> bool:
    """An operation only the ``admin`` scope opens (webhooks): it also needs the user to be an admin
    now. A user demoted after installing keeps the scope in their token but gets 403."""
    return set(accepted) == {ADMIN}
