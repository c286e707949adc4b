"""``/sandbox/oauth/authorize``, ``/sandbox/oauth/token`` and ``/sandbox/oauth/revoke``. Thin: oauthlib decides."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from oauthlib.common import add_params_to_uri
from oauthlib.oauth2 import FatalClientError, OAuth2Error

from . import conf, oauth_server, selectors
from .routers import SANDBOX_DB

logger = logging.getLogger(__name__)


def _authorize_uri(request: HttpRequest) -> str:
    """Pipedrive's authorize URL carries no ``response_type``; oauthlib's code grant wants one."""
    params = request.GET.copy()
    params.setdefault("response_type", "code")
    return f"{request.build_absolute_uri(request.path)}?{params.urlencode()}"


def _problem(request: HttpRequest, *, title: str, message: str, status: int) -> HttpResponse:
    return render(request, "sandbox/problem.html", {"title": title, "message": message}, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest) -> HttpResponse:
    """The consent page: pick a company and user, then Allow (code) or Deny (``error=user_denied``)."""
    uri = _authorize_uri(request)
    server = oauth_server.build_server()
    try:
        _, credentials = server.validate_authorization_request(uri)
    except FatalClientError as exc:
        return _problem(
            request,
            title="This installation link is broken",
            message=f"The app's authorization request was refused ({exc.error}: {exc.description}). "
            "Check the client_id and that redirect_uri is exactly the registered callback URL.",
            status=400,
        )
    except OAuth2Error as exc:
        return HttpResponseRedirect(add_params_to_uri(conf.callback_url(), exc.twotuples))
    redirect_uri = str(credentials.get("redirect_uri") or conf.callback_url())
    state = credentials.get("state")
    companies = selectors.companies_with_users()
    context = {
        "companies": companies,
        "scopes": conf.app_scopes(),
        "redirect_uri": redirect_uri,
        "has_state": bool(state),
        "client_id": credentials.get("client_id"),
        "app_name": conf.app_name(),
        "error": "",
    }
    if request.method == "GET":
        return render(request, "sandbox/consent.html", context)

    if request.POST.get("decision") != "allow":
        params = [("error", "user_denied")] + ([("state", str(state))] if state else [])
        return HttpResponseRedirect(add_params_to_uri(redirect_uri, params))
    try:
        user = selectors.user_get(user_id=int(request.POST.get("user_id", "")))
    except ValueError:
        user = None
    if user is None:
        context["error"] = "Choose the user who installs the app."
        return render(request, "sandbox/consent.html", context, status=400)
    with transaction.atomic(using=SANDBOX_DB):
        headers, _, _ = server.create_authorization_response(
            uri, http_method="GET", scopes=oauth_server.scopes_for(user), credentials={"sandbox_user": user}
        )
    return HttpResponseRedirect(headers["Location"])


def _oauth_response(result: tuple[dict[str, str], str, int]) -> HttpResponse:
    headers, body, status = result
    response = HttpResponse(body or "", status=status, content_type=headers.pop("Content-Type", "application/json"))
    for name, value in headers.items():
        response[name] = value
    return response


def _oauth_headers(request: HttpRequest) -> dict[str, str]:
    return {
        "Authorization": request.headers.get("Authorization", ""),
        "Content-Type": request.headers.get("Content-Type", ""),
    }


@csrf_exempt
@never_cache
@require_POST
def token(request: HttpRequest) -> HttpResponse:
    """Code exchange and refresh. Errors are JSON ``{"error", "error_description"}``: 400, or 401 for
    ``invalid_client`` (Basic credentials wrong or missing), as RFC 6749 §5.2 allows."""
    return _oauth_response(
        oauth_server.token_response(
            uri=request.build_absolute_uri(),
            body=request.body.decode("utf-8", "replace"),
            headers=_oauth_headers(request),
        )
    )


@csrf_exempt
@never_cache
@require_POST
def revoke(request: HttpRequest) -> HttpResponse:
    """RFC 7009: 200 for a revoked or unknown token; 401 only when the client itself is wrong."""
    return _oauth_response(
        oauth_server.revocation_response(
            uri=request.build_absolute_uri(),
            body=request.body.decode("utf-8", "replace"),
            headers=_oauth_headers(request),
        )
    )


def direct_install_url() -> str:
    """Where the Marketplace sends a user when the app has no Installation URL: consent, no state."""
    query = urlencode({"client_id": conf.client_id(), "redirect_uri": conf.callback_url()})
    return f"/sandbox/oauth/authorize?{query}"
