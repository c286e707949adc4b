""" "Schedule a follow-up" on its surfaces (extensions/README.md, URL table):

- ``GET /extensions/modals/follow-up/``: the custom modal (iframe, SDK), opened by the panels with
  ``OPEN_MODAL {type: "custom_modal", action_id: "follow-up", data: {title}}`` or from Pipedrive's
  actions menu; its form posts to ``POST /extensions/actions/follow-up/`` with a Bearer token from
  ``GET_SIGNED_TOKEN``, then shows a snackbar and closes itself (``CLOSE_MODAL``).
- ``GET /extensions/links/follow-up/``: the link action; Pipedrive opens it in a new tab with a JWT.
  The same form as a page; it posts back to the same URL with a signed ticket (no token in the page).
- ``GET|POST /extensions/json-modals/follow-up/``: the JSON modal (Pipedrive draws it from
  ``json_modal_schemas/follow_up.json``; GET gives the blocks' initial values, POST creates).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import formats, translation
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from pipedrive_app.core.parsing import ParseError, json_body_parse, json_object_parse

from . import services
from .follow_up import ACTIVITY_TYPES, DEFAULT_TYPE, NOTE_MAX, SUBJECT_MAX, FollowUpInvalid, default_due_date
from .follow_up import follow_up_parse as parse_form
from .panel_auth import (
    CompanyNotInstalled,
    PanelAuthError,
    PanelContext,
    follow_up_ticket_issue,
    follow_up_ticket_read,
    panel_context_resolve,
)
from .view_guards import (
    ACTION_BODY_MAX_BYTES,
    _page_policy,
    _with_policy,
    action_answer,
    extension_action,
    extension_page,
    panel_language,
    state_page,
)

logger = logging.getLogger(__name__)

ACTION_ID = "follow-up"  # the custom modal's action_id in Developer Hub (OPEN_MODAL's action_id)
RECORD_NOUNS = {"deal": "deal", "person": "person", "organization": "organization"}
TITLE_MAX = 120


def _record(panel: PanelContext) -> tuple[str, int] | None:
    """The deal, person or organization the surface was opened for; None when the request names none
    (a 400 for the caller, never an assertion)."""
    if panel.resource not in RECORD_NOUNS or panel.selected_id is None:
        return None
    return panel.resource, panel.selected_id


def _no_record_message() -> str:
    return gettext("Follow-ups can be scheduled for deals, people and organizations only.")


def _record_title(raw: str | None) -> str:
    """The record's name the panel passed in the modal's ``data`` (stringified JSON): display only."""
    if not raw:
        return ""
    try:
        data = json_body_parse(body=raw, max_bytes=4096, max_depth=4)
    except ParseError:
        return ""
    title = data.get("title") if isinstance(data, dict) else None
    return " ".join(title.split())[:TITLE_MAX] if isinstance(title, str) else ""


def _form_context(panel: PanelContext, *, surface: str, values: dict[str, str] | None = None) -> dict[str, Any]:
    values = values or {}
    return {
        "panel": panel,
        "theme": panel.theme,
        "surface": surface,
        "types": ACTIVITY_TYPES,
        "subject_max": SUBJECT_MAX,
        "note_max": NOTE_MAX,
        "values": {
            "subject": values.get("subject", ""),
            "type": values.get("type", DEFAULT_TYPE),
            "due_date": values.get("due_date") or default_due_date(timezone_name=panel.timezone_name).isoformat(),
            "due_time": values.get("due_time", ""),
            "note": values.get("note", ""),
        },
        "timezone_name": panel.timezone_name,
        "action_url": "/extensions/actions/follow-up/",
    }


def _scheduled_message(activity_due: str | None) -> str:
    return (
        gettext("Follow-up scheduled.")
        if not activity_due
        else gettext("Follow-up scheduled for %(date)s.") % {"date": activity_due}
    )


def _due_text(panel: PanelContext, values: dict[str, str]) -> str:
    """The due date (and time) as the viewer typed it, in their locale's format."""
    try:
        day = formats.date_format(date.fromisoformat(values.get("due_date", "")), "DATE_FORMAT")
    except ValueError:
        return ""
    return f"{day} {values['due_time']}" if values.get("due_time") else day


# --- the custom modal -------------------------------------------------------------------------------------


@extension_page(extension="follow_up_modal", resource=None, require_record=True)
def follow_up_modal(request: HttpRequest, panel: PanelContext) -> HttpResponse:
    if _record(panel) is None:
        return state_page(request, "refused", status=400, panel=panel, reason="no deal, person or organization")
    if not panel.viewer_installed:
        return state_page(request, "not_installed", status=200, panel=panel)
    context = _form_context(panel, surface="modal")
    context["record_title"] = _record_title(request.GET.get("data"))
    return render(request, "extensions/follow_up.html", context)


@extension_action(extensions=("follow_up_modal",), require_record=True)
def follow_up_action(request: HttpRequest, panel: PanelContext, body: dict[str, Any]) -> HttpResponse:
    """The modal's fetch: create the activity as the viewer. 400 names each wrong field."""
    record = _record(panel)
    if record is None:
        return action_answer(ok=False, message=_no_record_message(), status=400)
    values = {name: body.get(name) for name in ("subject", "type", "due_date", "due_time", "note")}
    try:
        follow_up = parse_form(values, timezone_name=panel.timezone_name)
    except FollowUpInvalid as invalid:
        return action_answer(ok=False, message=invalid.message, status=400, errors=invalid.errors)
    try:
        created = services.follow_up_create(panel=panel, resource=record[0], record_id=record[1], follow_up=follow_up)
    except services.ActionRefused as refused:
        return action_answer(ok=False, message=refused.message, status=refused.status, code=refused.code)
    due = _due_text(panel, {k: v for k, v in values.items() if isinstance(v, str)})
    return action_answer(ok=True, message=_scheduled_message(due), activity_id=created.activity.id, status=201)


# --- the link action --------------------------------------------------------------------------------------


@extension_page(extension="follow_up_link", resource=None, require_record=True)
def _follow_up_link_page(request: HttpRequest, panel: PanelContext) -> HttpResponse:
    if "," in request.GET.get("selectedIds", ""):
        return state_page(request, "one_record", status=200, panel=panel)
    if _record(panel) is None:
        return state_page(request, "refused", status=400, panel=panel, reason="no deal, person or organization")
    if not panel.viewer_installed:
        return state_page(request, "not_installed", status=200, panel=panel)
    context = _form_context(panel, surface="page")
    context["ticket"] = follow_up_ticket_issue(panel)
    return render(request, "extensions/follow_up.html", context)


def _follow_up_link_submit(request: HttpRequest) -> HttpResponse:
    """The page's form POST: a classic form (works without JavaScript), authenticated by its ticket."""
    if len(request.body) > ACTION_BODY_MAX_BYTES:
        return _with_policy(state_page(request, "refused", status=413, reason="form too large"), _page_policy())
    try:
        claims, params = follow_up_ticket_read(request.POST.get("ticket"))
        panel = panel_context_resolve(token=None, params=params, extensions=(), verified_claims=claims)
    except CompanyNotInstalled:
        return _with_policy(state_page(request, "not_installed", status=403), _page_policy())
    except PanelAuthError as exc:
        logger.info("follow-up link form refused: %s", exc.reason)
        return _with_policy(state_page(request, "expired", status=exc.status), _page_policy())
    values = {name: request.POST.get(name, "") for name in ("subject", "type", "due_date", "due_time", "note")}
    with translation.override(panel_language(panel)):
        context = _form_context(panel, surface="page", values=values)
        context["ticket"] = request.POST.get("ticket")
        status = 200
        try:
            follow_up = parse_form(values, timezone_name=panel.timezone_name)
            record = _record(panel)
            if record is None:  # a ticket always names a record (follow_up_ticket_read); kept for safety
                raise services.ActionRefused(_no_record_message())
            created = services.follow_up_create(
                panel=panel, resource=record[0], record_id=record[1], follow_up=follow_up
            )
        except FollowUpInvalid as invalid:
            context["errors"] = invalid.errors
            status = 400
        except services.ActionRefused as refused:
            context["refusal"] = refused.message
            status = refused.status
        except Exception:
            logger.exception("follow-up link form failed")
            context["refusal"] = gettext("Something went wrong. Try again.")
            status = 502
        else:
            context["done"] = _scheduled_message(_due_text(panel, values))
            context["activity_id"] = created.activity.id
        response = render(request, "extensions/follow_up.html", context, status=status)
    return _with_policy(response, _page_policy())


@csrf_exempt  # the POST's credential is the signed ticket in its body, never a cookie
@never_cache
def follow_up_link(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _follow_up_link_submit(request)
    return _follow_up_link_page(request)


# --- the JSON modal ---------------------------------------------------------------------------------------


def _json(status: int, payload: dict[str, Any]) -> HttpResponse:
    response = JsonResponse(payload, status=status, json_dumps_params={"ensure_ascii": False})
    return _with_policy(response, {"default-src": ["'none'"], "frame-ancestors": ["'none'"]})


def _json_modal_error(message: str, status: int, **extra: Any) -> HttpResponse:
    # Pipedrive's example app answers a refused submit with {"error": {"message"}} (docs §3, app actions).
    return _json(status, {"error": {"message": message, **extra}})


@csrf_exempt  # authenticated by the JWT in the query (Pipedrive's), never a cookie
@never_cache
def follow_up_json_modal(request: HttpRequest) -> HttpResponse:
    """GET: the blocks' initial values; POST: the primary action's submit (block values by key)."""
    if request.method not in {"GET", "POST"}:
        return _json_modal_error("Use GET or POST.", 405)
    try:
        panel = panel_context_resolve(
            token=request.GET.get("token"),
            params=request.GET,
            extensions=("follow_up_json_modal",),
            require_record=True,
        )
    except CompanyNotInstalled:
        return _json_modal_error("Install the app in Pipedrive first.", 403)
    except PanelAuthError as exc:
        logger.info("JSON modal refused: %s", exc.reason)
        return _json_modal_error("The request could not be verified as coming from Pipedrive.", exc.status)
    with translation.override(panel_language(panel)):
        if not panel.viewer_installed:
            return _json_modal_error(gettext("Install the app in Pipedrive first."), 403)
        record = _record(panel)
        if record is None:
            return _json_modal_error(_no_record_message(), 400)
        if request.method == "GET":
            due = default_due_date(timezone_name=panel.timezone_name).isoformat()
            blocks = {"follow_up_type": {"value": DEFAULT_TYPE}, "follow_up_due_date": {"value": due}}
            return _json(200, {"data": {"blocks": blocks, "actions": {}}})
        try:
            body = json_object_parse(body=request.body, max_bytes=ACTION_BODY_MAX_BYTES)
        except ParseError:
            return _json_modal_error(gettext("The request body must be a JSON object."), 400)
        values = {
            "subject": body.get("follow_up_subject"),
            "type": body.get("follow_up_type"),
            "due_date": body.get("follow_up_due_date"),
            "due_time": body.get("follow_up_due_time"),
            "note": body.get("follow_up_note"),
        }
        try:
            follow_up = parse_form(values, timezone_name=panel.timezone_name)
            services.follow_up_create(panel=panel, resource=record[0], record_id=record[1], follow_up=follow_up)
        except FollowUpInvalid as invalid:
            return _json_modal_error(invalid.message, 400)
        except services.ActionRefused as refused:
            return _json_modal_error(refused.message, refused.status)
        except Exception:
            logger.exception("JSON modal submit failed")
            return _json_modal_error(gettext("Something went wrong. Try again."), 502)
        message = _scheduled_message(_due_text(panel, {k: v for k, v in values.items() if isinstance(v, str)}))
        return _json(200, {"success": {"message": message, "type": "snackbar"}})
