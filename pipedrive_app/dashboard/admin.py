from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from .access import operator_has_totp, session_passed_mfa
from .models import AuditEntry, OperatorAction


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Audit rows and action records are evidence: never added, changed or deleted by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OperatorAction)
class OperatorActionAdmin(_ReadOnlyAdmin):
    list_display = ("created_at", "kind", "status", "target_label", "pipedrive_company_id", "requested_by_email")
    list_filter = ("kind", "status")
    search_fields = ("target_label", "=pipedrive_company_id", "requested_by_email")


@admin.register(AuditEntry)
class AuditEntryAdmin(_ReadOnlyAdmin):
    list_display = ("created_at", "actor_email", "action", "target_type", "target_id", "target_label", "result")
    list_filter = ("action", "result", "target_type")
    search_fields = ("actor_email", "target_label", "=target_id")


# --- The Django admin is operator-only too --------------------------------------------------------
# Its own login form checks a password only; send sign-ins through allauth (which asks for the TOTP
# code) and let only staff sessions that passed MFA in. DASHBOARD_ADMIN_REQUIRES_MFA=False turns
# this off (for instance for a test that uses pytest-django's admin_client).
_plain_has_permission = admin.site.has_permission


def _admin_login(request: HttpRequest, extra_context: Any = None) -> HttpResponse:
    target = request.GET.get("next") or reverse("admin:index")
    return redirect(f"{reverse('account_login')}?{urlencode({'next': target})}")


def _admin_has_permission(request: HttpRequest) -> bool:
    if not _plain_has_permission(request):
        return False
    if not getattr(settings, "DASHBOARD_ADMIN_REQUIRES_MFA", True):
        return True
    return operator_has_totp(user=request.user) and session_passed_mfa(request=request)


admin.site.login = _admin_login  # type: ignore[method-assign]
admin.site.has_permission = _admin_has_permission  # type: ignore[method-assign]
