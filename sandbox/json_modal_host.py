"""The sandbox plays Pipedrive for the app's JSON modal (docs/pipedrive-platform.md §3, app actions):
it draws the modal from the schema the app uploads (``extensions/json_modal_schemas/``), GETs the
action's URL for the blocks' initial values and POSTs the blocks' values on the primary action, each
time with the selection parameters and a token signed with the action's own JWT secret.

The host page's script (``static/sandbox/record_page.js``) renders the blocks; this module talks to
the app server-side, as Pipedrive does, and answers the page with what the app said.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

import requests

from . import app_actions, json_panel_host
from .json_panel_host import TIMEOUT_SECONDS
from .models import SandboxCompany, SandboxUser

logger = logging.getLogger(__name__)

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "extensions" / "json_modal_schemas"
SCHEMAS = {"follow-up-quick": "follow_up.json"}
BLOCK_KINDS = ("text", "input", "textarea", "select", "datepicker", "radio-group", "checkbox-group", "separator")
MAX_BLOCKS = 10  # Pipedrive's limit per modal (Component library)


@cache
def json_modal_schema(action_id: str) -> dict[str, Any]:
    with open(SCHEMA_DIR / SCHEMAS[action_id], encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


def schema_problems(schema: dict[str, Any]) -> list[str]:
    """What Pipedrive's component library would refuse in an uploaded schema."""
    problems = []
    blocks = schema.get("properties", {}).get("blocks", {}).get("properties", {})
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks (at most {MAX_BLOCKS})")
    for key, block in blocks.items():
        kind = str(block.get("$ref", "")).removeprefix("#/definitions/element-")
        if kind not in BLOCK_KINDS:
            problems.append(f"block {key}: unknown type {block.get('$ref')!r}")
    actions = schema.get("properties", {}).get("actions", {}).get("properties", {})
    for key, action in actions.items():
        if action.get("$ref") not in ("#/definitions/action-primary", "#/definitions/action-secondary"):
            problems.append(f"action {key}: unknown type {action.get('$ref')!r}")
        if action.get("options", {}).get("handler") not in ("request", "cancel"):
            problems.append(f"action {key}: handler must be request or cancel")
    return problems


def _call(
    method: str, *, company: SandboxCompany, user: SandboxUser, action_id: str, resource: str, record_id: int, body: Any
) -> tuple[int, Any]:
    action = app_actions.app_action(action_id)
    assert action is not None and action.kind == "json_modal"
    params = app_actions.selection_params(
        company=company, user=user, action=action, resource=resource, record_id=record_id
    )
    session = json_panel_host.http_session()  # tests replace it, as for the JSON panels
    try:
        response = session.request(
            method,
            action.url,
            params=params,
            json=body,
            timeout=TIMEOUT_SECONDS,
            headers={"Accept": "application/json"},
        )
    except requests.RequestException as exc:
        logger.info("sandbox: JSON modal %s unreachable: %s", action.url, type(exc).__name__)
        return 0, None
    finally:
        session.close()
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def json_modal_open(
    *, company: SandboxCompany, user: SandboxUser, action_id: str, resource: str, record_id: int
) -> dict[str, Any]:
    """The schema and the app's initial data, or the error Pipedrive would show in the modal."""
    schema = json_modal_schema(action_id)
    problems = schema_problems(schema)
    status, body = _call(
        "GET", company=company, user=user, action_id=action_id, resource=resource, record_id=record_id, body=None
    )
    data = body.get("data") if isinstance(body, dict) else None
    if status != 200 or not isinstance(data, dict) or not isinstance(data.get("blocks", {}), dict):
        error = (body or {}).get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        return {"ok": False, "status": status, "message": message or "The app's data could not be loaded."}
    return {"ok": not problems, "status": status, "schema": schema, "data": data, "problems": problems}


def json_modal_submit(
    *, company: SandboxCompany, user: SandboxUser, action_id: str, resource: str, record_id: int, values: dict[str, Any]
) -> dict[str, Any]:
    """POST the blocks' values to the app; its ``success`` (snackbar) or its error message."""
    status, body = _call(
        "POST", company=company, user=user, action_id=action_id, resource=resource, record_id=record_id, body=values
    )
    success = body.get("success") if isinstance(body, dict) else None
    if status == 200 and isinstance(success, dict) and isinstance(success.get("message"), str):
        return {"ok": True, "status": status, "success": success}
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return {"ok": False, "status": status, "message": message or "The app did not complete the action."}
