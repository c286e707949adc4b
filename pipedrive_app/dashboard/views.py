"""Thin views: parse, check the operator, call one selector or service, render or redirect."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from pipedrive_app.metrics import live

from . import selectors, services
from .access import operator_required
from .forms import AuditFilterForm, CompanyFilterForm, EventFilterForm


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _querystring_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@require_GET
@operator_required
def overview(request: HttpRequest) -> HttpResponse:
    context = {"nav": "overview", **selectors.overview_stats(), **live.dashboard_context()}
    return render(request, "dashboard/overview.html", context)


@require_GET
@operator_required
def company_list(request: HttpRequest) -> HttpResponse:
    form = CompanyFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    page, rows = selectors.company_list_page(
        search=data.get("q", ""),
        status=data.get("status", ""),
        health=data.get("health", ""),
        page=request.GET.get("page", 1),
    )
    return render(
        request,
        "dashboard/company_list.html",
        {
            "nav": "companies",
            "form": form,
            "page": page,
            "rows": rows,
            "querystring": _querystring_without_page(request),
        },
    )


def _company_or_404(company_id: int):
    company = selectors.company_get(company_id=company_id)
    if company is None:
        raise Http404("No such company (it may have been uninstalled).")
    return company


@require_GET
@operator_required
def company_detail(request: HttpRequest, company_id: int) -> HttpResponse:
    detail = selectors.company_detail(company=_company_or_404(company_id))
    return render(
        request, "dashboard/company_detail.html", {"nav": "companies", "d": detail, "company": detail.company}
    )


_COMPANY_ACTIONS = {
    "refresh-tokens": services.company_tokens_refresh_request,
    "reconcile-webhooks": services.company_webhooks_reconcile_request,
    "replay-dead-events": services.company_dead_events_replay_request,
}


@require_POST
@operator_required
def company_action(request: HttpRequest, company_id: int, action: str) -> HttpResponse:
    company = _company_or_404(company_id)
    if action == "uninstall":
        try:
            operator_action = services.company_uninstall_request(
                company=company,
                operator=request.user,
                confirmation=request.POST.get("confirmation", ""),
                ip_address=_client_ip(request),
            )
        except services.ActionRefused as refused:
            messages.error(request, refused.message)
            return redirect("dashboard:company", company_id=company.pk)
    else:
        request_action = _COMPANY_ACTIONS.get(action)
        if request_action is None:
            raise Http404("Unknown action.")
        operator_action = request_action(company=company, operator=request.user, ip_address=_client_ip(request))
    operator_action.refresh_from_db()
    messages.info(
        request,
        f"{operator_action.get_kind_display()}: {operator_action.get_status_display().lower()}"
        + (f" ({operator_action.result})" if operator_action.result else ""),
    )
    if selectors.company_get(company_id=company.pk) is None:
        return redirect("dashboard:audit")  # the company is gone (uninstalled): its page no longer exists
    return redirect(f"{reverse('dashboard:company', kwargs={'company_id': company.pk})}#actions")


@require_GET
@operator_required
def event_list(request: HttpRequest) -> HttpResponse:
    form = EventFilterForm(request.GET or None)
    page = selectors.event_list_page(page=request.GET.get("page", 1), **form.filters())
    return render(
        request,
        "dashboard/event_list.html",
        {"nav": "inbox", "form": form, "page": page, "querystring": _querystring_without_page(request)},
    )


def _event_or_404(event_id: int):
    event = selectors.event_get(event_id=event_id)
    if event is None:
        raise Http404("No such event.")
    return event


@require_GET
@operator_required
def event_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    detail = selectors.event_detail(event=_event_or_404(event_id))
    return render(request, "dashboard/event_detail.html", {"nav": "inbox", "d": detail, "event": detail.event})


@require_POST
@operator_required
def event_replay(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _event_or_404(event_id)
    try:
        action = services.event_replay_request(event=event, operator=request.user, ip_address=_client_ip(request))
    except services.ActionRefused as refused:
        messages.error(request, refused.message)
        return redirect("dashboard:event", event_id=event.pk)
    action.refresh_from_db()
    messages.info(
        request, f"Replay: {action.get_status_display().lower()}" + (f" ({action.result})" if action.result else "")
    )
    return redirect("dashboard:event", event_id=event.pk)


@require_GET
@operator_required
def audit_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    page = selectors.audit_list_page(
        page=request.GET.get("page", 1), actor=data.get("actor", ""), action=data.get("action", "")
    )
    return render(
        request,
        "dashboard/audit_list.html",
        {"nav": "audit", "form": form, "page": page, "querystring": _querystring_without_page(request)},
    )


@require_GET
@operator_required
def action_status(request: HttpRequest, action_id: int) -> HttpResponse:
    """A tiny fragment page the company page links to; it refreshes itself while the action runs."""
    action = selectors.operator_action_get(action_id=action_id)
    if action is None:
        raise Http404("No such action.")
    return render(request, "dashboard/action_status.html", {"nav": "audit", "action": action})
