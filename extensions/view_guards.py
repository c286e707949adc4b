"""Decorators every extension view goes through: verify the JWT, build the ``PanelContext``, set the
headers that let Pipedrive frame the page, and turn any failure into a readable answer.

- ``extension_page``: HTML for an iframe (panels, settings page). Token from the query (Pipedrive
  appends it). Framable by ``EXTENSIONS_FRAME_ANCESTORS`` (plus the app's own origin while the
  sandbox is on); ``X-Frame-Options`` is left off for these views only.
- ``extension_json``: Pipedrive's server-to-server JSON panel request. Token from the query and/or
  the JSON panels' HTTP Basic credentials.
- ``extension_action``: a ``fetch`` POST from inside the iframe. Token from ``Authorization: Bearer``
  (a fresh one from the SDK's ``GET_SIGNED_TOKEN``). CSRF-exempt on purpose: no cookie is involved,
  so there is no ambient credential for another site to ride on; the JWT is the credential.

No view here reads or sets a cookie.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt

from pipedrive_app.core.parsing import ParseError, json_object_parse
from pipedrive_app.metrics import instruments as metrics

from .json_panels import json_error
from .panel_auth import (
    CompanyNotInstalled,
    PanelAuthError,
    PanelContext,
    bearer_token,
    json_panel_basic_auth_check,
    panel_context_resolve,
)

logger = logging.getLogger(__name__)

# An action's body is a handful of fields and a note of at most 10,000 characters.
ACTION_BODY_MAX_BYTES = 64 * 1024

View = Callable[..., HttpResponse]
JsonPanelView = Callable[..., tuple[int, dict[str, Any]]]  # (status, body)


# --- Content-Security-Policy (django-csp reads ``_csp_config`` off the response) ---------------------


def frame_ancestors() -> list[str]:
    """Who may frame a panel: Pipedrive, and the app's own origin when the local sandbox hosts it."""
    sources = list(settings.EXTENSIONS_FRAME_ANCESTORS)
    if settings.PIPEDRIVE_SANDBOX:
        parts = urlsplit(settings.APP_BASE_URL)
        sources.append(f"{parts.scheme}://{parts.netloc}")
    return sources


def _page_policy() -> dict[str, list[str]]:
    # Scripts and styles are files of our own (no inline code): the SDK bundle is vendored, not a CDN.
    return {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
        "frame-ancestors": frame_ancestors(),
    }


_DATA_POLICY = {"default-src": ["'none'"], "frame-ancestors": ["'none'"], "base-uri": ["'none'"]}


def _with_policy(response: HttpResponse, policy: dict[str, list[str]]) -> HttpResponse:
    response._csp_config = policy  # type: ignore[attr-defined]
    return response


# --- pages --------------------------------------------------------------------------------------------


def panel_language(panel: PanelContext) -> str:
    """The viewer's Pipedrive language (``users/me`` locale, e.g. ``de_DE``) as a Django language code:
    one language and one locale's formats for everything a view renders."""
    return translation.to_language(panel.locale or "en_US")


def state_page(
    request: HttpRequest, state: str, *, status: int, panel: PanelContext | None = None, **extra: Any
) -> HttpResponse:
    """A page that still initializes the SDK (so Pipedrive shows it) and says what is wrong."""
    theme = panel.theme if panel else ("dark" if request.GET.get("theme") == "dark" else "light")
    context = {
        "panel": panel,
        "theme": theme,
        "state": state,
        "install_url": f"{settings.APP_BASE_URL}/oauth/install",
        **extra,
    }
    response = render(request, "extensions/state.html", context, status=status)
    response.panel_outcome = state  # type: ignore[attr-defined]  # metrics: the state it showed
    return response


def extension_page(*, extension: str, resource: str | None, require_record: bool = True) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in {"GET", "HEAD"}:
                response: HttpResponse = HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
                return _with_policy(response, _page_policy())
            try:
                panel = panel_context_resolve(
                    token=request.GET.get("token"),
                    params=request.GET,
                    extensions=(extension,),
                    expected_resource=resource,
                    require_record=require_record,
                )
            except CompanyNotInstalled:
                response = state_page(request, "not_installed", status=200)
            except PanelAuthError as exc:
                logger.info("extension page %s refused: %s", request.path, exc.reason)
                response = state_page(request, "refused", status=exc.status, reason=exc.reason)
            else:
                with translation.override(panel_language(panel)):
                    try:
                        response = view(request, panel, *args, **kwargs)
                    except Exception:
                        logger.exception("extension page %s failed", request.path)
                        response = state_page(request, "error", status=200, panel=panel)
            return _with_policy(response, _page_policy())

        return metrics.panel_timed(extension, xframe_options_exempt(never_cache(wrapped)))

    return decorate


# --- JSON panels -----------------------------------------------------------------------------------------


def _json(status: int, payload: dict[str, Any]) -> HttpResponse:
    return _with_policy(JsonResponse(payload, status=status, json_dumps_params={"ensure_ascii": False}), _DATA_POLICY)


def extension_json(*, extension: str, resource: str) -> Callable[[JsonPanelView], View]:
    """Pipedrive authenticates a JSON panel request with the JWT ``token`` (signed with the panel's
    JWT secret, else the client secret) and/or the HTTP Basic credentials set in Developer Hub
    (docs/json-panels-adding-a-panel, "JSON panel authentication"). Either one suffices; any
    credential that is present must be valid."""

    def decorate(view: JsonPanelView) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in {"GET", "HEAD"}:
                return _json(*json_error("Method not allowed", "This panel is read with GET.", status=405))
            basic = json_panel_basic_auth_check(request)
            try:
                if basic is False:
                    raise PanelAuthError("wrong HTTP Basic credentials")
                panel = panel_context_resolve(
                    token=request.GET.get("token") or bearer_token(request),
                    params=request.GET,
                    extensions=(extension,),
                    expected_resource=resource,
                    require_record=True,
                    basic_verified=basic is True,
                    allow_shared=True,
                )
            except CompanyNotInstalled:
                return _json(
                    *json_error("Install the app first", "Nobody in your company has installed this app.", status=403)
                )
            except PanelAuthError as exc:
                logger.info("JSON panel %s refused: %s", request.path, exc.reason)
                return _json(
                    *json_error(
                        "Bad request" if exc.status == 400 else "Not authorized",
                        "The request could not be verified as coming from Pipedrive.",
                        status=exc.status,
                    )
                )
            status: int
            payload: dict[str, Any]
            try:
                status, payload = view(request, panel, *args, **kwargs)
            except Exception:
                logger.exception("JSON panel %s failed", request.path)
                status, payload = json_error("Something went wrong", "The app could not build this panel.", status=502)
            return _json(status, payload)

        return metrics.panel_timed(extension, never_cache(wrapped))

    return decorate


# --- actions from inside the iframe ---------------------------------------------------------------------


def action_answer(*, ok: bool, message: str, status: int = 200, **extra: Any) -> HttpResponse:
    return _json(status, {"ok": ok, "message": message, **extra})


def extension_action(*, extensions: tuple[str, ...], require_record: bool = False) -> Callable[[View], View]:
    """``extensions``: the iframes whose SDK tokens may call this action (their secrets verify it)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method != "POST":
                return action_answer(ok=False, message="Use POST.", status=405)
            # No work for an anonymous caller: a bearer token of the right shape comes before the
            # body is read; the body is bounded in size and depth before it is parsed (core/parsing.py).
            if bearer_token(request) is None:
                logger.info("extension action %s refused: missing token", request.path)
                return action_answer(
                    ok=False, message="This request could not be verified. Reload the panel.", status=401
                )
            try:
                body = json_object_parse(body=request.body, max_bytes=ACTION_BODY_MAX_BYTES, allow_empty=True)
            except ParseError:
                return action_answer(ok=False, message="The request body must be a JSON object.", status=400)
            params = {
                key: str(value)
                for key, value in body.items()
                if isinstance(value, (str, int)) and not isinstance(value, bool)
            }
            try:
                panel = panel_context_resolve(
                    token=bearer_token(request),
                    params=params,
                    extensions=extensions,
                    require_record=require_record,
                )
            except CompanyNotInstalled:
                return action_answer(ok=False, message="Install the app in Pipedrive first.", status=403)
            except PanelAuthError as exc:
                logger.info("extension action %s refused: %s", request.path, exc.reason)
                return action_answer(
                    ok=False, message="This request could not be verified. Reload the panel.", status=exc.status
                )
            with translation.override(panel_language(panel)):
                try:
                    return view(request, panel, body, *args, **kwargs)
                except Exception:
                    logger.exception("extension action %s failed", request.path)
                    return action_answer(ok=False, message=gettext("Something went wrong. Try again."), status=502)

        return csrf_exempt(never_cache(wrapped))

    return decorate
