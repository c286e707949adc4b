"""Extension views: thin. The guards in ``view_guards`` authenticate and frame; selectors read,
services write, templates show."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.csrf import csrf_exempt

from pipedrive_app.core.parsing import id_or_none
from pipedrive_app.installations.models import CompanySettings
from pipedrive_app.installations.services import MAX_RETENTION_DAYS, MIN_RETENTION_DAYS

from . import selectors, services
from .json_panels import json_panel_response
from .panel_auth import PanelContext
from .view_guards import action_answer, extension_action, extension_json, extension_page, state_page


def _panel_page(request: HttpRequest, panel: PanelContext, template: str, data: selectors.PanelData) -> HttpResponse:
    if data.state != selectors.PanelState.READY:
        return state_page(request, data.state.value, status=200, panel=panel, retry_after=data.retry_after)
    assert panel.resource is not None and panel.selected_id is not None
    history = selectors.panel_history_get(panel=panel, entity=panel.resource, entity_id=panel.selected_id)
    context = {
        "panel": panel,
        "theme": panel.theme,
        "facts": data.facts,
        "history": history,
        "note_url": "/extensions/actions/notes/",
    }
    return render(request, template, context)


ENTITY_PLURALS = {
    "deal": gettext_lazy("Deals"),
    "person": gettext_lazy("People"),
    "organization": gettext_lazy("Organizations"),
    "activity": gettext_lazy("Activities"),
    "note": gettext_lazy("Notes"),
    "product": gettext_lazy("Products"),
    "lead": gettext_lazy("Leads"),
    "pipeline": gettext_lazy("Pipelines"),
    "stage": gettext_lazy("Stages"),
}


@extension_page(extension="deal_panel", resource="deal")
def deal_panel(request: HttpRequest, panel: PanelContext) -> HttpResponse:
    return _panel_page(request, panel, "extensions/deal_panel.html", selectors.deal_panel_get(panel=panel))


@extension_page(extension="person_panel", resource="person")
def person_panel(request: HttpRequest, panel: PanelContext) -> HttpResponse:
    return _panel_page(request, panel, "extensions/person_panel.html", selectors.person_panel_get(panel=panel))


@extension_page(extension="organization_panel", resource="organization")
def organization_panel(request: HttpRequest, panel: PanelContext) -> HttpResponse:
    return _panel_page(
        request, panel, "extensions/organization_panel.html", selectors.organization_panel_get(panel=panel)
    )


@extension_json(extension="deal_json_panel", resource="deal")
def deal_json_panel(request: HttpRequest, panel: PanelContext) -> tuple[int, dict[str, Any]]:
    data = selectors.deal_panel_get(panel=panel)
    history = None
    if data.state == selectors.PanelState.READY and panel.selected_id is not None:
        history = selectors.panel_history_get(panel=panel, entity="deal", entity_id=panel.selected_id, limit=1)
    return json_panel_response(panel=panel, data=data, history=history)


@extension_json(extension="person_json_panel", resource="person")
def person_json_panel(request: HttpRequest, panel: PanelContext) -> tuple[int, dict[str, Any]]:
    return json_panel_response(panel=panel, data=selectors.person_panel_get(panel=panel))


@extension_json(extension="organization_json_panel", resource="organization")
def organization_json_panel(request: HttpRequest, panel: PanelContext) -> tuple[int, dict[str, Any]]:
    return json_panel_response(panel=panel, data=selectors.organization_panel_get(panel=panel))


@extension_action(extensions=("deal_panel", "person_panel", "organization_panel"), require_record=True)
def note_create(request: HttpRequest, panel: PanelContext, body: dict[str, Any]) -> HttpResponse:
    if panel.resource not in services.NOTE_TARGETS or panel.selected_id is None:
        return action_answer(
            ok=False, message=gettext("Notes can be added to deals, people and organizations only."), status=400
        )
    try:
        created = services.panel_note_create(
            panel=panel, resource=panel.resource, record_id=panel.selected_id, content=str(body.get("content", ""))
        )
    except services.ActionRefused as refused:
        return action_answer(ok=False, message=refused.message, status=refused.status, code=refused.code)
    return action_answer(ok=True, message=gettext("Note added."), note_id=created.note.id, status=201)


@extension_page(extension="settings_page", resource=None, require_record=False)
def settings_page(request: HttpRequest, panel: PanelContext) -> HttpResponse:
    if not panel.viewer_installed:
        return state_page(request, "not_installed", status=200, panel=panel)
    current = selectors.company_settings_for_panel(panel=panel)
    context = {
        "panel": panel,
        "theme": panel.theme,
        "can_edit": panel.viewer_is_admin and panel.installation is not None and panel.installation.is_active,
        "entities": [
            (entity, ENTITY_PLURALS.get(entity, f"{entity.capitalize()}s"), entity in current.tracked_entities)
            for entity in CompanySettings.TRACKABLE_ENTITIES
        ],
        "retention_days": current.history_retention_days,
        "min_days": MIN_RETENTION_DAYS,
        "max_days": MAX_RETENTION_DAYS,
        "save_url": "/extensions/settings/",
        "app_base_url": settings.APP_BASE_URL,
    }
    return render(request, "extensions/settings.html", context)


@extension_action(extensions=("settings_page",))
def settings_save(request: HttpRequest, panel: PanelContext, body: dict[str, Any]) -> HttpResponse:
    entities = body.get("tracked_entities")
    days = body.get("history_retention_days")
    if not isinstance(entities, list) or not all(isinstance(e, str) for e in entities):
        return action_answer(ok=False, message=gettext("Choose the entities to track."), status=400)
    if isinstance(days, str):  # ASCII digits only (core/parsing.py): "²" or 5,000 digits are refused
        days = id_or_none(value=days, allow_zero=True)
    if not isinstance(days, int) or isinstance(days, bool):
        return action_answer(ok=False, message=gettext("Enter the number of days to keep history."), status=400)
    try:
        saved = services.panel_settings_save(panel=panel, tracked_entities=entities, history_retention_days=days)
    except services.ActionRefused as refused:
        return action_answer(ok=False, message=refused.message, status=refused.status)
    return action_answer(
        ok=True,
        message=gettext("Settings saved."),
        tracked_entities=saved.tracked_entities,
        history_retention_days=saved.history_retention_days,
    )


@csrf_exempt  # only the POST branch needs it; it authenticates with the Bearer JWT, never a cookie
def settings_endpoint(request: HttpRequest) -> HttpResponse:
    """``/extensions/settings/``: GET is the settings page, POST saves it (from the page's fetch)."""
    if request.method == "POST":
        return settings_save(request)
    return settings_page(request)
