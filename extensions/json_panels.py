"""The panels' facts in Pipedrive's JSON panel format (``json_panel_format``; docs/pipedrive-platform.md §3).

Every response must match the data structure uploaded in Developer Hub exactly; those files live in
``json_panel_schemas/`` (Pipedrive's template format) and the tests validate every response shape
against them. Object ids are numerical, as in every Pipedrive template. Failures use Pipedrive's
error format, ``{"error": {"title", "subtitle"}}`` with a status above 300 and a title of at most
30 characters.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .json_panel_format import ERROR_TITLE_MAX, MAX_OBJECTS
from .panel_auth import PanelContext
from .selectors import DealFacts, OpenDeal, OrganizationFacts, PanelData, PanelHistory, PanelState, PersonFacts

MAX_TEXT = 255
STATUS_LABELS = {
    "open": ("blue", "Open"),
    "won": ("green", "Won"),
    "lost": ("red", "Lost"),
    "deleted": ("grey", "Deleted"),
}


def _text(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"


def _money(value: Decimal | None, currency: str | None) -> dict[str, Any] | None:
    if value is None or not currency:
        return None
    number = float(value)
    return {"code": currency.upper(), "value": int(number) if number.is_integer() else number}


def _without_empty(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None and value != ""}


def json_error(title: str, subtitle: str, *, status: int) -> tuple[int, dict[str, Any]]:
    assert status > 300 and 0 < len(title) <= ERROR_TITLE_MAX, (status, title)
    return status, {"error": {"title": title, "subtitle": subtitle}}


def deal_json_panel(facts: DealFacts, history: PanelHistory) -> dict[str, Any]:
    status_color, status_label = STATUS_LABELS.get(facts.status or "", ("grey", (facts.status or "").title()))
    latest = history.rows[0] if history.rows else None
    deal = _without_empty(
        {
            "id": facts.id,
            "header": _text(facts.title or f"Deal {facts.id}"),
            "value": _money(facts.value, facts.currency),
            "pipeline": _text(facts.pipeline_name) if facts.pipeline_name else None,
            "stage": _text(facts.stage_name) if facts.stage_name else None,
            "status": {"color": status_color, "label": status_label} if status_label else None,
            "owner": _text(facts.owner_name) if facts.owner_name else None,
            "person": _text(facts.person_name) if facts.person_name else None,
            "organization": _text(facts.org_name) if facts.org_name else None,
            "expected_close_date": facts.expected_close_date.isoformat() if facts.expected_close_date else None,
            "days_since_last_change": facts.days_since_change(),
            "last_change": _text(_describe_change(latest)) if latest else None,
            "last_change_at": latest.when_iso if latest else None,
        }
    )
    return {"data": [deal]}


def _describe_change(row: Any) -> str:
    if row.kind == "changed":
        return f"{row.field_label}: {row.old_display or '—'} → {row.new_display or '—'} ({row.actor or 'someone'})"
    return f"{row.kind.capitalize()} by {row.actor or 'someone'}"


def person_json_panel(facts: PersonFacts) -> dict[str, Any]:
    person = _without_empty(
        {
            "id": facts.id,
            "header": _text(facts.name or f"Person {facts.id}"),
            "email": _primary(facts.emails),
            "phone": _primary(facts.phones),
            "organization": _text(facts.org_name) if facts.org_name else None,
            "owner": _text(facts.owner_name) if facts.owner_name else None,
            "open_deals": len(facts.open_deals),
        }
    )
    return {"data": [person, *_deal_objects(facts.open_deals)][:MAX_OBJECTS]}


def _deal_objects(deals: tuple[OpenDeal, ...]) -> list[dict[str, Any]]:
    return [
        _without_empty(
            {
                "id": deal.id,
                "header": _text(deal.title or f"Deal {deal.id}"),
                "deal_value": _money(deal.value, deal.currency),
                "stage": _text(deal.stage_name) if deal.stage_name else None,
            }
        )
        for deal in deals
    ]


def organization_json_panel(facts: OrganizationFacts) -> dict[str, Any]:
    organization = _without_empty(
        {
            "id": facts.id,
            "header": _text(facts.name or f"Organization {facts.id}"),
            "address": _text(facts.address) if facts.address else None,
            "owner": _text(facts.owner_name) if facts.owner_name else None,
            "open_deals": len(facts.open_deals),
            "people": len(facts.people),
        }
    )
    return {"data": [organization, *_deal_objects(facts.open_deals)][:MAX_OBJECTS]}


def _primary(points: tuple[Any, ...]) -> str | None:
    for point in points:
        if point.primary:
            return str(point.value)
    return str(points[0].value) if points else None


def json_panel_response(
    *, panel: PanelContext, data: PanelData, history: PanelHistory | None = None
) -> tuple[int, dict[str, Any]]:
    """Status and body for a panel outcome."""
    resource = panel.resource or "record"
    if data.state == PanelState.READY and isinstance(data.facts, DealFacts):
        return 200, deal_json_panel(data.facts, history or PanelHistory(tracked=False))
    if data.state == PanelState.READY and isinstance(data.facts, PersonFacts):
        return 200, person_json_panel(data.facts)
    if data.state == PanelState.READY and isinstance(data.facts, OrganizationFacts):
        return 200, organization_json_panel(data.facts)
    if data.state == PanelState.NOT_FOUND:
        # Not an error: the record is gone or not visible to this user; Pipedrive shows "no data".
        return 200, {"data": []}
    if data.state == PanelState.NOT_INSTALLED:
        if panel.is_shared:
            return json_error(
                "App not connected",
                "Nobody in your company has a working installation of the app. An admin can install it again.",
                status=403,
            )
        return json_error(
            "Install the app first",
            "This panel shows Pipedrive data with your own permissions, so it needs your own installation.",
            status=403,
        )
    if data.state == PanelState.NEEDS_REAUTH:
        return json_error(
            "Reconnect the app",
            "Pipedrive no longer accepts this app's access for you. Install the app again to reconnect.",
            status=401,
        )
    if data.state == PanelState.FORBIDDEN:
        return json_error("No access", f"You do not have permission to see this {resource} in Pipedrive.", status=403)
    if data.state == PanelState.RATE_LIMITED:
        wait = f" in about {max(1, round(data.retry_after))} seconds" if data.retry_after else " in a minute"
        return json_error("Pipedrive is busy", f"The API rate limit was reached. Try again{wait}.", status=429)
    if data.state == PanelState.SLOW:
        return json_error("Pipedrive is slow", "Pipedrive did not answer in time. Retry in a few seconds.", status=503)
    return json_error("Pipedrive could not be reached", "Try again in a moment.", status=503)
