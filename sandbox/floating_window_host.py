"""The app's custom floating window as the sandbox's page chrome shows it (docs/pipedrive-platform.md
§3): a launcher in the top bar (Pipedrive's apps dock) with the notification badge, and the window,
an iframe of the app's floating window URL with the parameters Pipedrive appends to every custom UI
extension (``id``, ``userId``, ``companyId``, ``token``, ``theme``). The host side of the SDK protocol
is ``static/sandbox/extensions_host.js`` ("Floating window")."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from . import conf, selectors
from .json_panel_host import extension_token
from .models import SandboxCompany, SandboxUser

EXTENSION = "floating_window"
PATH = "/extensions/floating-window/"


def company_has_app(company: SandboxCompany) -> bool:
    """The dock shows the app once somebody in the company has installed it (the window itself says
    "install the app" to a viewer who has not)."""
    return any(row.client_id == conf.client_id() for row in selectors.installed_apps(company=company))


def floating_window_context(company: SandboxCompany, user: SandboxUser) -> dict[str, Any]:
    query = urlencode(
        {
            "id": str(uuid.uuid4()),
            "userId": user.pk,
            "companyId": company.pk,
            "token": extension_token(extension=EXTENSION, company=company, user=user),
            "theme": "light",
        }
    )
    token_query = urlencode({"company": company.pk, "user": user.pk, "extension": EXTENSION})
    return {
        "iframe_src": f"{settings.APP_BASE_URL}{PATH}?{query}",
        "signed_token_url": f"/sandbox/extensions/token?{token_query}",
    }
