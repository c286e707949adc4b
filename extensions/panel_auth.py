"""Who is looking at a panel: the verified Pipedrive JWT, turned into one frozen ``PanelContext``.

Pipedrive appends ``token`` (a JWT signed with the extension's JWT secret or, without one, the
app's client secret) to every extension URL, and the SDK's ``GET_SIGNED_TOKEN`` hands the iframe a
fresh one for calls back to the app (docs/pipedrive-platform.md §3). Only the verified claims are
trusted; the plain ``userId``/``companyId`` query parameters must agree with them or the request is
refused. Nothing here reads or sets a cookie: inside Pipedrive's iframe third-party cookies are
blocked, so the JWT is the only credential.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from django.http import HttpRequest

from pipedrive_app.installations.models import Company, Installation

logger = logging.getLogger(__name__)

# HS256 is what Pipedrive signs with (platform guide §3); the list is the whole allow-list, so
# "none", HS512, RS256... are all refused by PyJWT before the signature is even looked at.
ALLOWED_ALGORITHMS = ["HS256"]
RESOURCES = ("deal", "person", "organization")
THEMES = ("light", "dark")
DEFAULT_LOCALE = "en_US"
DEFAULT_TIMEZONE = "UTC"


class PanelAuthError(Exception):
    """The request does not prove who is asking. ``reason`` is safe to log and to show."""

    status = 401

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PanelForbidden(PanelAuthError):
    """A valid token, but for something else (claims and query disagree)."""

    status = 403


class CompanyNotInstalled(PanelAuthError):
    """A valid token of a company that has no installation of the app."""

    status = 403


class PanelBadRequest(PanelAuthError):
    """The request is authenticated but malformed (unknown resource, bad record id)."""

    status = 400


@dataclass(frozen=True)
class PanelClaims:
    user_id: int
    company_id: int


@dataclass(frozen=True)
class PanelContext:
    """Everything an extension view may rely on, derived from the verified token only."""

    company: Company
    installation: Installation | None  # the viewer's own; None when the viewer never installed
    pipedrive_user_id: int
    pipedrive_company_id: int
    resource: str | None
    selected_id: int | None
    theme: str
    locale: str
    timezone_name: str
    is_shared: bool = False

    @property
    def viewer_installed(self) -> bool:
        return self.installation is not None and self.installation.status != Installation.Status.UNINSTALLED

    @property
    def viewer_is_admin(self) -> bool:
        return self.viewer_installed and self.installation is not None and self.installation.is_admin


def panel_token_verify(*, token: str | None) -> PanelClaims:
    """Verify signature, algorithm and expiry; return the user and company the token names."""
    if not token:
        raise PanelAuthError("missing token")
    secret = settings.PIPEDRIVE_JWT_SECRET
    if not secret:
        raise PanelAuthError("no JWT secret is configured")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=ALLOWED_ALGORITHMS,
            leeway=settings.EXTENSIONS_JWT_LEEWAY_SECONDS,
            # Pipedrive documents no audience or issuer; exp is the one claim every token must carry.
            options={"require": ["exp"], "verify_aud": False, "verify_iss": False},
        )
    except jwt.ExpiredSignatureError:
        raise PanelAuthError("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise PanelAuthError(f"invalid token ({type(exc).__name__})") from None
    user_id = _claim_id(claims, "userId", "user_id")
    company_id = _claim_id(claims, "companyId", "company_id")
    if user_id is None or company_id is None:
        raise PanelAuthError("token carries no user or company")
    return PanelClaims(user_id=user_id, company_id=company_id)


def _claim_id(claims: Mapping[str, Any], *names: str) -> int | None:
    """The claim names are unconfirmed (platform guide §3): accept both spellings, never a conflict."""
    values = {_as_id(claims.get(name)) for name in names if name in claims}
    if None in values or len(values) != 1:
        return None
    return values.pop()


def _as_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def bearer_token(request: HttpRequest) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def panel_context_resolve(
    *,
    token: str | None,
    params: Mapping[str, str],
    expected_resource: str | None = None,
    require_record: bool = False,
) -> PanelContext:
    """Verify ``token`` and build the context; ``params`` are the query (or an action's JSON body)."""
    claims = panel_token_verify(token=token)
    for names, claimed in ((("userId", "user_id"), claims.user_id), (("companyId", "company_id"), claims.company_id)):
        for name in names:
            if name in params and _as_id(params.get(name)) != claimed:
                raise PanelForbidden("the token does not match the request's user or company")

    resource = params.get("resource") or expected_resource
    if expected_resource is not None and resource != expected_resource:
        raise PanelBadRequest(f"this extension shows a {expected_resource}, not a {resource}")
    if resource is not None and resource not in RESOURCES:
        raise PanelBadRequest("unknown resource")
    selected_id = _selected_id(params.get("selectedIds", params.get("selectedId")))
    if require_record and selected_id is None:
        raise PanelBadRequest("no record selected")

    company = Company.objects.filter(pipedrive_company_id=claims.company_id).first()
    if company is None:
        raise CompanyNotInstalled("the company has not installed the app")
    installation = (
        Installation.objects.select_related("company")
        .filter(company=company, pipedrive_user_id=claims.user_id)
        .exclude(status=Installation.Status.UNINSTALLED)
        .first()
    )
    theme = params.get("theme", "light")
    return PanelContext(
        company=company,
        installation=installation,
        pipedrive_user_id=claims.user_id,
        pipedrive_company_id=claims.company_id,
        resource=resource,
        selected_id=selected_id,
        theme=theme if theme in THEMES else "light",
        locale=(installation.locale if installation else "") or DEFAULT_LOCALE,
        timezone_name=(installation.timezone_name if installation else "") or DEFAULT_TIMEZONE,
        is_shared=str(params.get("isShared", "")).lower() in {"1", "true", "yes"},
    )


def _selected_id(raw: Any) -> int | None:
    """``selectedIds`` is one id in a details view; tolerate a list and take the first."""
    if raw is None or raw == "":
        return None
    first = str(raw).split(",", 1)[0]
    value = _as_id(first)
    if value is None:
        raise PanelBadRequest("the selected record id is not a number")
    return value
