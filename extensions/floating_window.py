"""The custom floating window: "Changes on your records", live as webhooks arrive.

What it shows (extensions/README.md, "Floating window"): the change-history lines of the records the
viewer owned when each change happened (the ``owner_id`` the webhook event carried, stored on every
history row as ``ChangeRecord.owner_user_id``), newest first, across deals, people, organizations and
the other tracked entities. Pipedrive's webhooks carry no followers, so "records they follow" is not
something the data supports; ownership is.

- ``GET /extensions/floating-window/``: the iframe Pipedrive opens from the apps dock, with ``id``,
  ``userId``, ``companyId``, ``token`` and ``theme`` (docs/pipedrive-platform.md §3). JWT verified with
  the ``floating_window`` extension's secret, like every panel.
- ``GET /extensions/floating-window/feed/?since=<id>&limit=<n>`` (``&unread=1`` for the badge): the
  JSON the window polls, authenticated by ``Authorization: Bearer <JWT>`` from the SDK's
  ``GET_SIGNED_TOKEN``. One indexed query per poll (``history_owner_feed``), a ``since`` cursor, a
  page limit, a database time budget; bad input is a 400, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache

from pipedrive_app.core.parsing import ParseError, bearer_token_parse, id_or_none
from pipedrive_app.history import selectors as history
from pipedrive_app.metrics import instruments as metrics

from .formatting import viewer_datetime, viewer_language, viewer_value_display, viewer_zone
from .panel_auth import CompanyNotInstalled, PanelAuthError, PanelContext, panel_context_resolve
from .view_guards import extension_page, state_page

if TYPE_CHECKING:
    from pipedrive_app.history.selectors import FeedEntry, HistoryEntry

logger = logging.getLogger(__name__)

EXTENSION = "floating_window"
FEED_URL = "/extensions/floating-window/feed/"
DEFAULT_LIMIT = 20
UNREAD_CAP = 99  # the badge says "99" at most; counting further is work nobody reads
# Pipedrive's REDIRECT_TO views for the records a line can open (SDK README, "Redirect to").
REDIRECT_VIEWS = {"deal": "deals", "person": "contacts", "organization": "organizations", "lead": "leads"}
_FEED_POLICY = {"default-src": ["'none'"], "frame-ancestors": ["'none'"], "base-uri": ["'none'"]}


class FeedRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _answer(status: int, payload: dict[str, Any]) -> HttpResponse:
    response = JsonResponse(payload, status=status, json_dumps_params={"ensure_ascii": False})
    response._csp_config = _FEED_POLICY  # type: ignore[attr-defined]  # django-csp, as view_guards
    return response


# --- the page ------------------------------------------------------------------------------------------


@extension_page(extension=EXTENSION, resource=None, require_record=False)
def floating_window_page(request: HttpRequest, panel: PanelContext) -> HttpResponse:
    if not panel.viewer_installed:
        return state_page(request, "not_installed", status=200, panel=panel)
    context = {
        "panel": panel,
        "theme": panel.theme,
        "feed_url": FEED_URL,
        "page_limit": DEFAULT_LIMIT,
        "poll_ms": int(settings.EXTENSIONS_FLOATING_POLL_SECONDS * 1000),
        "hidden_poll_ms": int(settings.EXTENSIONS_FLOATING_HIDDEN_POLL_SECONDS * 1000),
    }
    return render(request, "extensions/floating_window.html", context)


# --- the feed ------------------------------------------------------------------------------------------


def _feed_guard(view: Callable[[HttpRequest, PanelContext], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """GET with ``Authorization: Bearer <JWT>`` signed with the floating window's secret. The query's
    ``userId``/``companyId``, when sent, must agree with the token (as for every extension)."""

    @wraps(view)
    def wrapped(request: HttpRequest) -> HttpResponse:
        if request.method not in {"GET", "HEAD"}:
            response = _answer(405, {"error": "Use GET."})
            response["Allow"] = "GET, HEAD"
            return response
        try:
            token = bearer_token_parse(header=request.headers.get("Authorization"))
        except ParseError:
            logger.info("floating window feed refused: missing or malformed bearer token")
            return _answer(401, {"error": "This request could not be verified. Reload the window."})
        params = {key: request.GET[key] for key in ("userId", "companyId") if key in request.GET}
        try:
            panel = panel_context_resolve(token=token, params=params, extensions=(EXTENSION,))
        except CompanyNotInstalled:
            return _answer(403, {"error": "Install the app in Pipedrive first."})
        except PanelAuthError as exc:
            logger.info("floating window feed refused: %s", exc.reason)
            return _answer(exc.status, {"error": "This request could not be verified. Reload the window."})
        with translation.override(viewer_language(panel)):
            try:
                return view(request, panel)
            except FeedRefused as refused:
                return _answer(refused.status, {"error": refused.message})
            except Exception:
                logger.exception("floating window feed failed")
                return _answer(502, {"error": gettext("Something went wrong. Try again.")})

    return metrics.panel_timed(EXTENSION, never_cache(wrapped))


def _query_id(request: HttpRequest, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    value = id_or_none(value=raw, allow_zero=True)  # ASCII digits only: "²", "-1", 5,000 digits are refused
    if value is None or not low <= value <= high:
        raise FeedRefused(
            400,
            gettext("“%(name)s” must be a whole number from %(low)s to %(high)s.")
            % {
                "name": name,
                "low": low,
                "high": high,
            },
        )
    return value


def _within_budget(read: Callable[[], Any]) -> Any:
    """Run the feed's queries under a statement timeout on PostgreSQL (``SET LOCAL`` ends with the
    transaction); a query past the budget is a 503 the window retries on its next poll."""
    budget_ms = max(1, int(settings.EXTENSIONS_FLOATING_FEED_BUDGET_MS))
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL statement_timeout = %s", [budget_ms])
            return read()
    except DatabaseError:
        logger.warning("floating window feed over its %s ms budget (or the database failed)", budget_ms)
        raise FeedRefused(503, gettext("The app is busy. The window will try again.")) from None


def _summary(entry: HistoryEntry, panel: PanelContext) -> dict[str, str]:
    if entry.kind == "created":
        return {"what": gettext("Created"), "old": "", "new": ""}
    if entry.kind == "deleted":
        return {"what": gettext("Deleted"), "old": "", "new": ""}
    if entry.kind == "merged":
        return {"what": gettext("Merged"), "old": "", "new": entry.new_display}
    return {
        "what": entry.field_label or entry.field_key,
        "old": viewer_value_display(entry.old_value, entry.old_display, panel),
        "new": viewer_value_display(entry.new_value, entry.new_display, panel),
    }


ENTITY_NOUNS = {
    "deal": translation.gettext_lazy("Deal"),
    "person": translation.gettext_lazy("Person"),
    "organization": translation.gettext_lazy("Organization"),
    "activity": translation.gettext_lazy("Activity"),
    "note": translation.gettext_lazy("Note"),
    "product": translation.gettext_lazy("Product"),
    "lead": translation.gettext_lazy("Lead"),
    "pipeline": translation.gettext_lazy("Pipeline"),
    "stage": translation.gettext_lazy("Stage"),
}


def _items(rows: list[FeedEntry], panel: PanelContext) -> list[dict[str, Any]]:
    zone = viewer_zone(panel)
    items = []
    for row in rows:
        entry = row.entry
        noun = str(ENTITY_NOUNS.get(row.entity, row.entity.capitalize()))
        by_you = entry.actor_user_id == panel.pipedrive_user_id
        if by_you:
            actor = gettext("You")
        elif entry.actor_name:
            actor = entry.actor_name
        elif entry.actor_user_id:
            actor = gettext("User %(id)s") % {"id": entry.actor_user_id}
        else:
            actor = "Pipedrive"  # no user: an automation or integration of Pipedrive
        view = REDIRECT_VIEWS.get(row.entity)
        items.append(
            {
                "id": row.id,
                "entity": row.entity,
                "entity_id": row.entity_id,
                "entity_label": noun,
                "record": row.record_label or f"{noun} {row.entity_id}",
                "kind": entry.kind,
                **_summary(entry, panel),
                "actor": actor,
                "by_you": by_you,
                "when": viewer_datetime(entry.occurred_at, panel),
                "when_iso": entry.occurred_at.astimezone(zone).isoformat(),
                "open": {"view": view, "id": row.entity_id} if view and entry.kind != "deleted" else None,
            }
        )
    return items


@_feed_guard
def floating_window_feed(request: HttpRequest, panel: PanelContext) -> HttpResponse:
    if not panel.viewer_installed:
        raise FeedRefused(403, gettext("Install the app in Pipedrive first."))
    since = _query_id(request, "since", default=0, low=0, high=2**63 - 1)
    limit = _query_id(request, "limit", default=DEFAULT_LIMIT, low=1, high=settings.EXTENSIONS_FLOATING_FEED_MAX_LIMIT)
    unread_only = request.GET.get("unread", "") not in {"", "0"}
    company_id, owner = panel.company.pk, panel.pipedrive_user_id

    if unread_only:  # the hidden window's poll: a count for the badge, no rows, no rendering
        unread, cursor = _within_budget(
            lambda: history.owner_feed_unread(
                company_id=company_id,
                owner_user_id=owner,
                after_id=since,
                not_by_user_id=owner,
                cap=UNREAD_CAP,
            )
        )
        return _answer(200, {"unread": unread, "cursor": cursor})

    rows = _within_budget(
        lambda: history.owner_feed(company_id=company_id, owner_user_id=owner, after_id=since, limit=limit + 1)
    )
    page = rows[:limit]
    items = _items(page, panel)
    return _answer(
        200,
        {
            "items": items,
            "cursor": page[0].id if page else since,
            "more": len(rows) > limit,
            "unread": sum(1 for item in items if not item["by_you"]),
        },
    )
