"""The app's actions as the sandbox's "Developer Hub" registers them: what Pipedrive shows in a record's
actions menu (docs/pipedrive-platform.md §3, app actions), and where each one points.

The registered app is the app itself (sandbox/README.md), so the URLs are the app's own
(``APP_BASE_URL``) and each action is signed with its own extension's JWT secret
(``extensions/README.md``), exactly as Pipedrive would.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings

from .json_panel_host import extension_token
from .models import SandboxCompany, SandboxUser

RESOURCES = ("deal", "person", "organization")


@dataclass(frozen=True)
class AppAction:
    id: str  # the action_id (custom modal, JSON modal) or the sandbox's name for a link action
    kind: str  # "custom_modal" | "link" | "json_modal"
    label: str
    path: str  # on the app
    extension: str  # whose JWT secret signs its token

    @property
    def url(self) -> str:
        return f"{settings.APP_BASE_URL}{self.path}"


APP_ACTIONS = (
    AppAction("follow-up", "custom_modal", "Schedule a follow-up", "/extensions/modals/follow-up/", "follow_up_modal"),
    AppAction(
        "follow-up-link", "link", "Schedule a follow-up (new tab)", "/extensions/links/follow-up/", "follow_up_link"
    ),
    AppAction(
        "follow-up-quick",
        "json_modal",
        "Quick follow-up",
        "/extensions/json-modals/follow-up/",
        "follow_up_json_modal",
    ),
)


def app_action(action_id: str) -> AppAction | None:
    return next((action for action in APP_ACTIONS if action.id == action_id), None)


def selection_params(
    *, company: SandboxCompany, user: SandboxUser, action: AppAction, resource: str, record_id: int
) -> dict[str, str]:
    """The parameters Pipedrive adds for an action on one record, with a token signed for it."""
    return {
        "resource": resource,
        "view": "details",
        "userId": str(user.pk),
        "companyId": str(company.pk),
        "selectedIds": str(record_id),
        "token": extension_token(extension=action.extension, company=company, user=user),
    }


def link_target(*, company: SandboxCompany, user: SandboxUser, action: AppAction, resource: str, record_id: int) -> str:
    """Where a link action sends the new tab: the app's URL with the selection and a signed token."""
    params = selection_params(company=company, user=user, action=action, resource=resource, record_id=record_id)
    return f"{action.url}?{urlencode(params)}"


def menu_entries(*, company: SandboxCompany, user: SandboxUser, resource: str, record_id: int) -> list[dict[str, str]]:
    """What the record page's actions menu and the SDK host need about each action (no token: the
    host fetches one from ``token_url`` when it opens a custom modal; a link goes through the
    sandbox's redirect, which signs at click time)."""
    domain = company.domain
    entries = []
    for action in APP_ACTIONS:
        entry = {"id": action.id, "kind": action.kind, "label": action.label}
        if action.kind == "custom_modal":
            entry["url"] = action.url
            query = urlencode({"company": company.pk, "user": user.pk, "extension": action.extension})
            entry["token_url"] = f"/sandbox/extensions/token?{query}"
        else:
            query = urlencode({"as": user.pk, "resource": resource, "id": record_id})
            entry["url"] = f"/sandbox/{domain}/apps/actions/{action.id}/?{query}"
        entries.append(entry)
    return entries
