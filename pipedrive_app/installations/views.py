"""The landing page; OAuth install, callback and Pipedrive's uninstall notification. Thin: parse, call, render."""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from pipedrive_app.core.parsing import (
    ParseError,
    basic_credentials_parse,
    id_or_none,
    json_object_parse,
    oauth_code_parse,
    text_clean,
)

from .models import LifecycleEvent
from .selectors import installation_get, installations_overview
from .services import (
    InstallError,
    InvalidState,
    installation_create_from_code,
    installation_uninstall,
    oauth_client,
    oauth_state_consume,
    oauth_state_create,
)

logger = logging.getLogger(__name__)

BROWSER_COOKIE = "pd_oauth_browser"
_SUCCESS_SALT = "installations.oauth-installed"
_SUCCESS_MAX_AGE = 15 * 60


@never_cache
@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    """``/``: what to click, in order. In development it also lists who has installed the app.

    The list is for a newcomer watching an install appear and disappear, so it is rendered only
    while the sandbox or DEBUG is on, and it shows names and statuses, never a token.
    """
    sandbox = bool(settings.PIPEDRIVE_SANDBOX)
    show_installs = sandbox or bool(settings.DEBUG)
    base_url = str(settings.APP_BASE_URL).rstrip("/")
    return render(
        request,
        "landing.html",
        {
            "sandbox": sandbox,
            "show_installs": show_installs,
            "companies": installations_overview() if show_installs else [],
            "callback_url": f"{base_url}/oauth/callback",
            "install_url": f"{base_url}/oauth/install",
        },
    )


@never_cache
@require_GET
def oauth_install(request: HttpRequest) -> HttpResponse:
    """The Installation URL: issue a signed state bound to this browser (nothing is stored) and send
    it to Pipedrive's consent page."""
    browser_key = request.COOKIES.get(BROWSER_COOKIE) or secrets.token_urlsafe(32)
    state = oauth_state_create(browser_key=browser_key)
    response = redirect(oauth_client().authorization_url(state=state))
    response.set_cookie(
        BROWSER_COOKIE,
        browser_key,
        max_age=settings.PIPEDRIVE_OAUTH_STATE_TTL,
        path="/oauth/",
        secure=request.is_secure() or settings.APP_BASE_URL.startswith("https://"),
        httponly=True,
        samesite="Lax",
    )
    return response


def _problem(request: HttpRequest, *, title: str, message: str, status: int, retry: bool = True) -> HttpResponse:
    return render(
        request,
        "oauth/problem.html",
        {"title": title, "message": message, "retry": retry},
        status=status,
    )


_STATE_PROBLEMS = {
    "state expired": "The link has expired (installation links are valid for a few minutes).",
    "state already used": "The link was already used.",
    "state was issued to another browser": "The installation was started in another browser.",
    "unknown state": "The link was not issued by this app.",
}


@csrf_exempt
@never_cache
def oauth_callback(request: HttpRequest) -> HttpResponse:
    if request.method == "DELETE":
        return _uninstall_notification(request)
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET", "DELETE"])

    error = request.GET.get("error")
    if error:
        if error == "user_denied":
            return _problem(
                request,
                title="Installation cancelled",
                message="You chose not to install the app. Nothing was stored. You can install it any time.",
                status=200,
            )
        return _problem(
            request,
            title="Installation did not complete",
            message="Pipedrive reported a problem with the installation request. Nothing was stored.",
            status=400,
        )

    # A malformed code is refused before the state is consumed: bad input changes nothing.
    raw_code = request.GET.get("code")
    if raw_code:
        try:
            oauth_code_parse(value=raw_code)
        except ParseError:
            logger.warning("oauth callback rejected: malformed authorization code")
            return _problem(
                request,
                title="Installation did not complete",
                message="The authorization code in this link is not valid. Nothing was stored. "
                "Please start the installation again.",
                status=400,
            )

    state = request.GET.get("state") or ""
    if state:
        try:
            oauth_state_consume(state=state, browser_key=request.COOKIES.get(BROWSER_COOKIE))
        except InvalidState as exc:
            logger.warning("oauth callback rejected: %s", exc.reason)
            return _problem(
                request,
                title="This installation link is no longer valid",
                message=_STATE_PROBLEMS.get(exc.reason, _STATE_PROBLEMS["unknown state"])
                + " Nothing was stored. Please start the installation again.",
                status=400,
            )
    elif settings.PIPEDRIVE_REQUIRE_STATE:
        logger.warning("oauth callback rejected: no state and PIPEDRIVE_REQUIRE_STATE is on")
        return _problem(
            request,
            title="Please start the installation from the app",
            message="This app only accepts installations started from its own install link.",
            status=400,
        )

    if not raw_code:
        return _problem(
            request,
            title="Installation did not complete",
            message="Pipedrive did not send an authorization code. Nothing was stored.",
            status=400,
        )
    try:
        installation = installation_create_from_code(code=raw_code)
    except InstallError as exc:
        return _problem(
            request, title="Installation did not complete", message=exc.message, status=exc.status, retry=exc.retryable
        )

    token = signing.dumps({"installation": installation.pk}, salt=_SUCCESS_SALT)
    response = redirect(f"/oauth/installed/?t={token}")
    response.delete_cookie(BROWSER_COOKIE, path="/oauth/")
    return response


@never_cache
@require_GET
def oauth_installed(request: HttpRequest) -> HttpResponse:
    try:
        payload = signing.loads(request.GET.get("t", ""), salt=_SUCCESS_SALT, max_age=_SUCCESS_MAX_AGE)
        installation = installation_get(installation_id=int(payload["installation"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        installation = None
    if installation is None:
        return _problem(
            request,
            title="Nothing to show",
            message="This confirmation link has expired. If you installed the app, it is ready in Pipedrive.",
            status=404,
            retry=False,
        )
    return render(request, "oauth/installed.html", {"installation": installation, "company": installation.company})


# --- Uninstall notification (platform guide §2) ----------------------------------------------------
#
# Pipedrive sends ``DELETE <callback URL>`` with HTTP Basic client_id:client_secret and a JSON body of
# client_id, company_id, user_id and timestamp (docs/app-uninstallation). It never reads the reply
# and never sends the notice again, so an authenticated notice that names a company and a user is
# carried out whatever else is odd about it (a missing or unusual timestamp, another client_id in the
# body, fields we do not know): the oddities are logged (names and types, never values of secrets),
# not refused. Only an unauthenticated request (401) or a body naming no company and user (400) is
# turned away.

_UNINSTALL_FIELDS = frozenset({"client_id", "company_id", "user_id", "timestamp"})
_UNINSTALL_MAX_BYTES = 64 * 1024


def _basic_credentials_match(request: HttpRequest) -> bool:
    try:
        username, password = basic_credentials_parse(header=request.META.get("HTTP_AUTHORIZATION"))
    except ParseError:
        return False
    user_ok = hmac.compare_digest(username.encode(), str(settings.PIPEDRIVE_CLIENT_ID).encode())
    secret_ok = hmac.compare_digest(password.encode(), str(settings.PIPEDRIVE_CLIENT_SECRET).encode())
    return user_ok and secret_ok


def _is_time(value: Any) -> bool:
    """Whether ``value`` reads as a point in time (ISO 8601 text, or epoch seconds / milliseconds)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value > 0
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return False
    text = value.strip()
    try:
        return float(text) > 0
    except ValueError:
        pass
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _uninstall_oddities(body: dict[str, Any]) -> list[str]:
    """What is unusual about an authenticated notice, in words safe to log."""
    odd = []
    if body.get("client_id") != settings.PIPEDRIVE_CLIENT_ID:
        odd.append(f"client_id in the body is not this app's ({type(body.get('client_id')).__name__})")
    timestamp = body.get("timestamp")
    if "timestamp" not in body:
        odd.append("no timestamp")
    elif not _is_time(timestamp):
        odd.append(f"timestamp is not a time ({type(timestamp).__name__})")
    unknown = sorted(text_clean(str(key))[:40] for key in body if key not in _UNINSTALL_FIELDS)
    if unknown:
        odd.append(f"unexpected fields: {', '.join(unknown[:10])}")
    return odd


def _uninstall_notification(request: HttpRequest) -> HttpResponse:
    if not _basic_credentials_match(request):
        response = JsonResponse({"error": "invalid client credentials"}, status=401)
        response["WWW-Authenticate"] = 'Basic realm="pipedrive-uninstall"'
        return response
    try:
        body = json_object_parse(body=request.body, max_bytes=_UNINSTALL_MAX_BYTES)
    except ParseError as exc:
        logger.warning("uninstall notification refused: %s", exc)
        return JsonResponse({"error": str(exc)}, status=400)
    company_id = id_or_none(value=body.get("company_id"))
    user_id = id_or_none(value=body.get("user_id"))
    if company_id is None or user_id is None:
        missing = [name for name, value in (("company_id", company_id), ("user_id", user_id)) if value is None]
        logger.warning("uninstall notification refused: %s not a positive integer id", " and ".join(missing))
        return JsonResponse({"error": f"{' and '.join(missing)} must be a positive integer id"}, status=400)
    odd = _uninstall_oddities(body)
    if odd:
        logger.warning(
            "uninstall notification for company %s user %s carried out despite: %s", company_id, user_id, "; ".join(odd)
        )

    result = installation_uninstall(
        pipedrive_company_id=company_id, pipedrive_user_id=user_id, source=LifecycleEvent.Source.PIPEDRIVE
    )
    logger.info(
        "uninstall notification: company %s user %s (found=%s, purged=%s)",
        company_id,
        user_id,
        result.installation_found,
        result.company_purged,
    )
    return JsonResponse({"status": "ok", "company_purged": result.company_purged})
