"""The landing page; OAuth install, callback and Pipedrive's uninstall notification. Thin: parse, call, render."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import secrets
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

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

    code = request.GET.get("code") or ""
    if not code:
        return _problem(
            request,
            title="Installation did not complete",
            message="Pipedrive did not send an authorization code. Nothing was stored.",
            status=400,
        )
    try:
        installation = installation_create_from_code(code=code)
    except InstallError as exc:
        return _problem(
            request, title="Installation did not complete", message=exc.message, status=502, retry=exc.retryable
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


def _basic_credentials_match(request: HttpRequest) -> bool:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return False
    try:
        supplied = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{settings.PIPEDRIVE_CLIENT_ID}:{settings.PIPEDRIVE_CLIENT_SECRET}".encode()
    return hmac.compare_digest(supplied, expected)


def _as_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.isdigit():
        return int(value) or None
    return None


def _uninstall_notification(request: HttpRequest) -> HttpResponse:
    if not _basic_credentials_match(request):
        response = JsonResponse({"error": "invalid client credentials"}, status=401)
        response["WWW-Authenticate"] = 'Basic realm="pipedrive-uninstall"'
        return response
    try:
        body = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"error": "body must be JSON"}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"error": "body must be a JSON object"}, status=400)
    company_id, user_id = _as_id(body.get("company_id")), _as_id(body.get("user_id"))
    problems = []
    if body.get("client_id") != settings.PIPEDRIVE_CLIENT_ID:
        problems.append("client_id does not match this app")
    if company_id is None:
        problems.append("company_id must be a positive integer")
    if user_id is None:
        problems.append("user_id must be a positive integer")
    if not isinstance(body.get("timestamp"), (str, int)) or isinstance(body.get("timestamp"), bool):
        problems.append("timestamp is required")
    if problems or company_id is None or user_id is None:
        return JsonResponse({"error": "; ".join(problems)}, status=400)

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
