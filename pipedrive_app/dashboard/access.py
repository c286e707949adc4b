"""Who may open the dashboard (and the Django admin): signed-in staff who passed TOTP two-factor.

A staff user without TOTP is sent to set it up. A session signed in without the second factor
(for example through a password-only login form) is sent back to allauth's sign-in, which asks for
the TOTP code: the dashboard trusts only sessions whose allauth record shows an MFA step.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY, record_authentication
from allauth.mfa.models import Authenticator
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect


def operator_has_totp(*, user: Any) -> bool:
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def session_passed_mfa(*, request: HttpRequest) -> bool:
    methods = request.session.get(AUTHENTICATION_METHODS_SESSION_KEY) or []
    return any(isinstance(m, dict) and m.get("method") == "mfa" for m in methods)


def record_totp_activation(
    sender: Any, request: HttpRequest, user: Any, authenticator: Authenticator, **kwargs: Any
) -> None:
    """Activating TOTP proves the code, so the session counts as passed MFA (no sign-in again)."""
    if authenticator.type == Authenticator.Type.TOTP and request is not None:
        record_authentication(request, user, "mfa", type=authenticator.type, activated=True)


def record_sign_in_as_recent(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """A password typed at sign-in a moment ago is a recent authentication: setting up TOTP right after
    the first sign-in must not ask for the password a second time (allauth counts only an explicit
    re-authentication as recent, ACCOUNT_REAUTHENTICATION_TIMEOUT)."""
    if request is None:
        return
    methods = request.session.get(AUTHENTICATION_METHODS_SESSION_KEY) or []
    last = methods[-1] if methods and isinstance(methods[-1], dict) else {}
    if last.get("method") == "password" and not last.get("reauthenticated"):
        record_authentication(request, user, "password", reauthenticated=True)


def operator_check(request: HttpRequest) -> HttpResponse | None:
    """None when the request may go on; otherwise the response that refuses or redirects it."""
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not (user.is_active and user.is_staff):
        raise PermissionDenied("The dashboard is for operators (staff) only.")
    if not operator_has_totp(user=user):
        return redirect("mfa_activate_totp")
    if not session_passed_mfa(request=request):
        logout(request)
        return redirect_to_login(request.get_full_path())
    return None


def operator_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refusal = operator_check(request)
        if refusal is not None:
            return refusal
        return view(request, *args, **kwargs)

    return wrapper
