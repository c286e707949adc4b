"""Who is looking at a panel: the verified Pipedrive JWT, turned into one frozen ``PanelContext``.

Pipedrive appends ``token`` (a JWT signed with the extension's JWT secret or, without one, the
app's client secret) to every extension URL, and the SDK's ``GET_SIGNED_TOKEN`` hands the iframe a
fresh one for calls back to the app (docs/pipedrive-platform.md §3). Only the verified claims are
trusted; the plain ``userId``/``companyId`` query parameters must agree with them or the request is
refused. Nothing here reads or sets a cookie: inside Pipedrive's iframe third-party cookies are
blocked, so the JWT is the only credential.
"""

from __future__ import annotations

import base64
import hmac
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from django.core import signing
from django.http import HttpRequest

from pipedrive_app.core.parsing import id_or_none
from pipedrive_app.installations.models import Company, Installation
from pipedrive_app.installations.selectors import company_acting_installation

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
    # A shared JSON panel seen by a user who never installed: the company's installation whose token
    # reads Pipedrive for them (docs/company-wide-app-extensions). None everywhere else.
    shared_installation: Installation | None = None

    @property
    def viewer_installed(self) -> bool:
        return self.installation is not None and self.installation.status != Installation.Status.UNINSTALLED

    @property
    def reading_installation(self) -> Installation | None:
        """Whose token reads Pipedrive for this view: the viewer's own, else a shared panel's."""
        return self.installation if self.viewer_installed else self.shared_installation

    @property
    def viewer_is_admin(self) -> bool:
        return self.viewer_installed and self.installation is not None and self.installation.is_admin


def extension_jwt_secret(extension: str) -> str:
    """The secret Pipedrive signs ``extension``'s tokens with: its own JWT secret from Developer Hub
    (``PIPEDRIVE_JWT_SECRET_<NAME>``), else ``PIPEDRIVE_JWT_SECRET`` (which defaults to the client
    secret, Pipedrive's own fallback when an extension has no JWT secret)."""
    if extension not in settings.EXTENSION_NAMES:
        raise ValueError(f"unknown extension {extension!r}")
    return settings.PIPEDRIVE_EXTENSION_JWT_SECRETS.get(extension) or settings.PIPEDRIVE_JWT_SECRET


def panel_token_verify(*, token: str | None, extensions: tuple[str, ...]) -> PanelClaims:
    """Verify a token signed for one of ``extensions``; return the user and company it names.

    The policy (extensions/README.md "Token policy"): HS256 only; a valid signature with the
    extension's secret; ``userId`` and ``companyId`` required; ``exp`` checked when present (with
    leeway), not required; without ``exp``, ``iat`` bounds the age (``EXTENSIONS_JWT_MAX_AGE_SECONDS``)
    and may not lie in the future; a token with neither is accepted and logged, or refused when
    ``EXTENSIONS_JWT_REQUIRE_EXPIRY`` is on.
    """
    if not token:
        raise PanelAuthError("missing token")
    secrets = list(dict.fromkeys(secret for secret in map(extension_jwt_secret, extensions) if secret))
    if not secrets:
        raise PanelAuthError("no JWT secret is configured")
    leeway = settings.EXTENSIONS_JWT_LEEWAY_SECONDS
    claims: dict[str, Any] | None = None
    for secret in secrets:
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=ALLOWED_ALGORITHMS,
                leeway=leeway,
                # Pipedrive documents no audience or issuer; exp is verified by PyJWT only when present.
                options={"require": [], "verify_aud": False, "verify_iss": False, "verify_iat": False},
            )
            break
        except jwt.ExpiredSignatureError:
            raise PanelAuthError("token expired") from None
        except jwt.InvalidSignatureError:
            continue  # maybe another extension's secret (an action accepts tokens of two panels)
        except jwt.InvalidTokenError as exc:
            raise PanelAuthError(f"invalid token ({type(exc).__name__})") from None
    if claims is None:
        raise PanelAuthError("invalid token (InvalidSignatureError)")
    _check_age(claims, leeway=leeway)
    user_id = _claim_id(claims, "userId", "user_id")
    company_id = _claim_id(claims, "companyId", "company_id")
    if user_id is None or company_id is None:
        raise PanelAuthError("token carries no user or company")
    return PanelClaims(user_id=user_id, company_id=company_id)


def _check_age(claims: Mapping[str, Any], *, leeway: int) -> None:
    if "exp" in claims:
        return  # PyJWT verified it (a non-numeric exp is refused there)
    if "iat" not in claims:
        if settings.EXTENSIONS_JWT_REQUIRE_EXPIRY:
            raise PanelAuthError("token has no exp")
        logger.info("extension token without exp or iat accepted (EXTENSIONS_JWT_REQUIRE_EXPIRY is off)")
        return
    if settings.EXTENSIONS_JWT_REQUIRE_EXPIRY:
        raise PanelAuthError("token has no exp")
    issued = claims["iat"]
    if isinstance(issued, bool) or not isinstance(issued, (int, float)):
        raise PanelAuthError("invalid token (iat is not a number)")
    now = time.time()
    if issued > now + leeway:
        raise PanelAuthError("token issued in the future")
    if now - issued > settings.EXTENSIONS_JWT_MAX_AGE_SECONDS + leeway:
        raise PanelAuthError("token too old")


def _claim_id(claims: Mapping[str, Any], *names: str) -> int | None:
    """The claim names are unconfirmed (platform guide §3): accept both spellings, never a conflict."""
    values = {_as_id(claims.get(name)) for name in names if name in claims}
    if None in values or len(values) != 1:
        return None
    return values.pop()


def _as_id(value: Any) -> int | None:
    """A positive id of at most 19 ASCII digits (core/parsing.py): never "²", never 5,000 digits."""
    return id_or_none(value=value)


def bearer_token(request: HttpRequest) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def json_panel_basic_auth_configured() -> bool:
    return bool(settings.EXTENSIONS_JSON_PANEL_HTTP_AUTH_USER and settings.EXTENSIONS_JSON_PANEL_HTTP_AUTH_PASSWORD)


def json_panel_basic_auth_check(request: HttpRequest) -> bool | None:
    """Developer Hub's HTTP Basic credentials of the JSON panels: None when the request carries no
    Basic credentials, else whether they are the configured ones (constant-time compare)."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    if not json_panel_basic_auth_configured():
        return False
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    expected_user = settings.EXTENSIONS_JSON_PANEL_HTTP_AUTH_USER.encode()
    expected_password = settings.EXTENSIONS_JSON_PANEL_HTTP_AUTH_PASSWORD.encode()
    user_ok = hmac.compare_digest(user.encode(), expected_user)
    password_ok = hmac.compare_digest(password.encode(), expected_password)
    return bool(sep) and user_ok and password_ok


def _claims_from_query(params: Mapping[str, str]) -> PanelClaims:
    """Basic-only requests: the user and company are the ``userId``/``companyId`` Pipedrive appends."""
    user_id = _as_id(params.get("userId"))
    company_id = _as_id(params.get("companyId"))
    if user_id is None or company_id is None:
        raise PanelBadRequest("userId and companyId are required")
    return PanelClaims(user_id=user_id, company_id=company_id)


def panel_context_resolve(
    *,
    token: str | None,
    params: Mapping[str, str],
    extensions: tuple[str, ...],
    expected_resource: str | None = None,
    require_record: bool = False,
    basic_verified: bool = False,
    allow_shared: bool = False,
    verified_claims: PanelClaims | None = None,
) -> PanelContext:
    """Verify the request and build the context; ``params`` are the query (or an action's JSON body).

    ``token`` must verify against the secret of one of ``extensions``. ``basic_verified``: the request
    already proved itself with the JSON panels' HTTP Basic credentials, so a token is optional (when
    one is sent it must still verify). ``allow_shared``: a JSON panel, where ``isShared=true`` lets a
    user who never installed see the company's data through an installed user's token.
    ``verified_claims``: the caller already proved the user and company another way (the link
    action page's signed form ticket, ``follow_up_ticket_read``); no token is read.
    """
    if verified_claims is not None:
        claims = verified_claims
    elif token or not basic_verified:
        claims = panel_token_verify(token=token, extensions=extensions)
    else:
        claims = _claims_from_query(params)
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
    is_shared = str(params.get("isShared", "")).lower() in {"1", "true", "yes"}
    shared_installation = None
    if allow_shared and is_shared and installation is None:
        shared_installation = company_shared_installation(company=company)
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
        is_shared=is_shared,
        shared_installation=shared_installation,
    )


# --- the link action page's form ticket ---------------------------------------------------------------
# A link action opens the app's page in a new tab with a JWT in its URL (docs/pipedrive-platform.md §3).
# The page has no SDK to ask for fresh tokens, and tokens stay out of pages, so after verifying the
# JWT it hands its form a ticket of its own: the verified user, company and record, signed with the
# app's SECRET_KEY and valid for TICKET_MAX_AGE_SECONDS. It is a credential for that one form only.

TICKET_SALT = "extensions.follow-up-link"
TICKET_MAX_AGE_SECONDS = 30 * 60


def follow_up_ticket_issue(panel: PanelContext) -> str:
    payload = {
        "u": panel.pipedrive_user_id,
        "c": panel.pipedrive_company_id,
        "r": panel.resource,
        "i": panel.selected_id,
        "t": panel.theme,
    }
    return signing.dumps(payload, salt=TICKET_SALT, compress=True)


def follow_up_ticket_read(ticket: str | None) -> tuple[PanelClaims, dict[str, str]]:
    """The claims and the context parameters a ticket carries; ``PanelAuthError`` when it is missing,
    forged, expired or malformed."""
    if not ticket or len(ticket) > 1024:
        raise PanelAuthError("missing or oversized form ticket")
    try:
        payload = signing.loads(ticket, salt=TICKET_SALT, max_age=TICKET_MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise PanelAuthError("form ticket expired") from None
    except signing.BadSignature:
        raise PanelAuthError("invalid form ticket") from None
    if not isinstance(payload, dict):
        raise PanelAuthError("invalid form ticket")
    user_id, company_id = _as_id(payload.get("u")), _as_id(payload.get("c"))
    record_id = _as_id(payload.get("i"))
    if user_id is None or company_id is None or record_id is None or payload.get("r") not in RESOURCES:
        raise PanelAuthError("invalid form ticket")
    params = {"resource": str(payload["r"]), "selectedIds": str(record_id), "theme": str(payload.get("t", "light"))}
    return PanelClaims(user_id=user_id, company_id=company_id), params


def company_shared_installation(*, company: Company) -> Installation | None:
    """The installation that reads Pipedrive for a shared panel's non-installed viewers: an active
    one of the company, admins first (they see the most of the company's records), oldest first."""
    return company_acting_installation(company_id=company.pk)


def _selected_id(raw: Any) -> int | None:
    """``selectedIds`` is one id in a details view; tolerate a list and take the first."""
    if raw is None or raw == "":
        return None
    first = str(raw).split(",", 1)[0]
    value = _as_id(first)
    if value is None:
        raise PanelBadRequest("the selected record id is not a number")
    return value
