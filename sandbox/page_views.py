"""The sandbox's own pages: what a Pipedrive user would click. Thin: parse, call, render."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import app_actions, conf, json_modal_host, selectors, services
from .custom_field_display import custom_fields_display
from .json_panel_host import extension_token as signed_extension_token
from .json_panel_host import json_panel_show
from .models import ChangeEvent, Deal, FieldDefinition, SandboxCompany, SandboxUser
from .oauth_views import direct_install_url

EXTENSION_HOST_TEMPLATE = "sandbox/_extension_host.html"


def _company(domain: str) -> SandboxCompany:
    company = selectors.company_by_domain(domain=domain)
    if company is None:
        raise Http404("No such sandbox company")
    return company


def _acting_user(request: HttpRequest, company: SandboxCompany) -> SandboxUser:
    """Who is "logged in" to the sandbox page: ``?as=<user id>``, else the company's first admin."""
    users = list(company.users.order_by("-is_admin", "pk"))
    if not users:
        raise Http404("The company has no users")
    wanted = request.POST.get("as") or request.GET.get("as")
    return next((user for user in users if str(user.pk) == wanted), users[0])


def _extension_host_available() -> bool:
    try:
        get_template(EXTENSION_HOST_TEMPLATE)
    except TemplateDoesNotExist:
        return False
    return True


def _panel_src(company: SandboxCompany, user: SandboxUser, resource: str, record_id: int) -> str:
    """The app's custom panel URL with exactly the parameters Pipedrive appends (platform guide §3),
    the token signed with that panel's JWT secret (else the fallback)."""
    query = urlencode(
        {
            "id": str(uuid.uuid4()),
            "userId": user.pk,
            "companyId": company.pk,
            "token": signed_extension_token(extension=f"{resource}_panel", company=company, user=user),
            "resource": resource,
            "view": "details",
            "selectedIds": record_id,
            "theme": "light",
        }
    )
    return f"{settings.APP_BASE_URL}/extensions/panels/{resource}/?{query}"


def _token_url(company: SandboxCompany, user: SandboxUser, extension: str) -> str:
    """Where the SDK host gets a fresh token for GET_SIGNED_TOKEN, signed for ``extension``."""
    return f"/sandbox/extensions/token?{urlencode({'company': company.pk, 'user': user.pk, 'extension': extension})}"


def _has_installed(company: SandboxCompany, user: SandboxUser) -> bool:
    return any(
        row.user.pk == user.pk and row.client_id == conf.client_id()
        for row in selectors.installed_apps(company=company)
    )


def _record_events(company: SandboxCompany, entity: str, record_id: int) -> list[ChangeEvent]:
    """This record's own changes: the entity type and the id must both match (deal 1 is not person 1)."""
    events = ChangeEvent.objects.filter(company=company, entity=entity, entity_id=record_id)
    return list(events.select_related("user").order_by("-pk")[:10])


def _record_context(request: HttpRequest, company: SandboxCompany, resource: str, record_id: int) -> dict[str, Any]:
    actor = _acting_user(request, company)
    return {
        "company": company,
        "actor": actor,
        "users": list(company.users.order_by("pk")),
        "resource": resource,
        "extension_host_available": _extension_host_available(),
        "extension_iframe_src": _panel_src(company, actor, resource, record_id),
        "extension_token_url": _token_url(company, actor, f"{resource}_panel"),
        "app_actions": app_actions.menu_entries(company=company, user=actor, resource=resource, record_id=record_id),
        "events": _record_events(company, resource, record_id),
    }


def _json_panel(request: HttpRequest, company: SandboxCompany, resource: str, record_id: int) -> Any:
    """The app's JSON panel for this record, fetched and rendered as Pipedrive would (GET only)."""
    if request.method != "GET":
        return None
    actor = _acting_user(request, company)
    return json_panel_show(
        company=company,
        user=actor,
        resource=resource,
        record_id=record_id,
        is_shared=not _has_installed(company, actor),
    )


def _form_data(request: HttpRequest, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: request.POST.get(name, "").strip() for name in names if name in request.POST}


# --- index and marketplace ---------------------------------------------------------------------------------


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "sandbox/index.html",
        {
            "companies": selectors.companies_with_users(),
            "base_url": conf.base_url(),
            "app_base_url": settings.APP_BASE_URL,
        },
    )


@require_GET
def marketplace(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "sandbox/marketplace.html",
        {
            "install_url": f"{settings.APP_BASE_URL}/oauth/install",
            "direct_install_url": direct_install_url(),
            "client_id": conf.client_id(),
            "app_name": conf.app_name(),
            "callback_url": conf.callback_url(),
            "scopes": conf.app_scopes(),
        },
    )


@require_GET
def webhooks_page(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "sandbox/webhooks.html",
        {
            "webhooks": selectors.webhooks_overview(),
            "deliveries": selectors.deliveries_recent(limit=100),
            "now": timezone.now(),
        },
    )


# --- a company ----------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def company_page(request: HttpRequest, domain: str) -> HttpResponse:
    company = _company(domain)
    actor = _acting_user(request, company)
    if request.method == "POST":
        data = _form_data(request, ("title", "value", "currency", "person_id"))
        try:
            deal = services.deal_create(company=company, actor=actor, data=data, source=ChangeEvent.Source.APP)
        except services.RecordInputError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Deal “{deal.title}” created.")
        return redirect(f"/sandbox/{company.domain}/?as={actor.pk}")
    return render(
        request,
        "sandbox/company.html",
        {
            "company": company,
            "actor": actor,
            "users": list(company.users.order_by("pk")),
            "deals": selectors.company_deals(company=company),
            "persons": selectors.company_persons(company=company),
            "leads": selectors.company_leads(company=company),
            "pipelines": selectors.company_pipelines(company=company),
            "events": selectors.events_recent(company=company, limit=15),
        },
    )


@require_http_methods(["GET", "POST"])
def deal_page(request: HttpRequest, domain: str, deal_id: int) -> HttpResponse:
    company = _company(domain)
    deal = selectors.deal_get(company=company, deal_id=deal_id)
    if deal is None:
        raise Http404("No such deal")
    context = _record_context(request, company, "deal", deal.pk)
    if request.method == "POST":
        if request.POST.get("action") == "delete":
            services.deal_delete(deal=deal, actor=context["actor"], source=ChangeEvent.Source.APP)
            messages.success(request, "Deal deleted.")
            return redirect(f"/sandbox/{company.domain}/?as={context['actor'].pk}")
        data = _form_data(
            request, ("title", "value", "currency", "status", "stage_id", "person_id", "expected_close_date")
        )
        try:
            services.deal_update(deal=deal, actor=context["actor"], data=data, source=ChangeEvent.Source.APP)
        except services.RecordInputError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Deal saved.")
        return redirect(f"/sandbox/{company.domain}/deals/{deal.pk}/?as={context['actor'].pk}")
    context.update(
        {
            "deal": deal,
            "stages": selectors.deal_stages(deal=deal),
            "persons": selectors.company_persons(company=company),
            "statuses": Deal.Status.choices,
            "notes": selectors.record_notes(deal=deal),
            "activities": selectors.record_activities(deal=deal),
            "custom_fields": custom_fields_display(
                company=company, entity=FieldDefinition.Entity.DEAL, values=deal.custom_fields
            ),
            "json_panel": _json_panel(request, company, "deal", deal.pk),
        }
    )
    return render(request, "sandbox/deal.html", context)


@require_http_methods(["GET", "POST"])
def person_page(request: HttpRequest, domain: str, person_id: int) -> HttpResponse:
    company = _company(domain)
    person = selectors.person_get(company=company, person_id=person_id)
    if person is None:
        raise Http404("No such person")
    context = _record_context(request, company, "person", person.pk)
    if request.method == "POST":
        data = _form_data(request, ("name", "job_title"))
        if "email" in request.POST:
            data["emails"] = [request.POST["email"].strip()] if request.POST["email"].strip() else []
        if "phone" in request.POST:
            data["phones"] = [request.POST["phone"].strip()] if request.POST["phone"].strip() else []
        try:
            services.person_update(person=person, actor=context["actor"], data=data, source=ChangeEvent.Source.APP)
        except services.RecordInputError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Person saved.")
        return redirect(f"/sandbox/{company.domain}/persons/{person.pk}/?as={context['actor'].pk}")
    context.update(
        {
            "person": person,
            "email": next((p["value"] for p in person.emails or [] if p.get("value")), ""),
            "phone": next((p["value"] for p in person.phones or [] if p.get("value")), ""),
            "deals": selectors.person_deals(person=person),
            "notes": selectors.record_notes(person=person),
            "activities": selectors.record_activities(person=person),
            "custom_fields": custom_fields_display(
                company=company, entity=FieldDefinition.Entity.PERSON, values=person.custom_fields
            ),
            "json_panel": _json_panel(request, company, "person", person.pk),
        }
    )
    return render(request, "sandbox/person.html", context)


@require_GET
def organization_page(request: HttpRequest, domain: str, org_id: int) -> HttpResponse:
    """An organization as Pipedrive shows it: its people and deals, notes, and the app's panels."""
    company = _company(domain)
    org = selectors.organization_get(company=company, org_id=org_id)
    if org is None:
        raise Http404("No such organization")
    context = _record_context(request, company, "organization", org.pk)
    context.update(
        {
            "org": org,
            "people": selectors.organization_people(org=org),
            "deals": selectors.organization_deals(org=org),
            "notes": selectors.record_notes(org=org),
            "activities": selectors.record_activities(org=org),
            "json_panel": _json_panel(request, company, "organization", org.pk),
        }
    )
    return render(request, "sandbox/organization.html", context)


@require_POST
def note_add(request: HttpRequest, domain: str) -> HttpResponse:
    company = _company(domain)
    actor = _acting_user(request, company)
    data = _form_data(request, ("content", "deal_id", "person_id", "org_id"))
    try:
        services.note_create(company=company, actor=actor, data=data, source=ChangeEvent.Source.APP)
    except services.RecordInputError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Note added.")
    back = request.POST.get("next", "")
    return redirect(back if back.startswith(f"/sandbox/{company.domain}/") else f"/sandbox/{company.domain}/")


@require_POST
def lead_add(request: HttpRequest, domain: str) -> HttpResponse:
    company = _company(domain)
    actor = _acting_user(request, company)
    try:
        lead = services.lead_create(
            company=company,
            actor=actor,
            data=_form_data(request, ("title", "person_id")),
            source=ChangeEvent.Source.APP,
        )
    except services.RecordInputError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Lead “{lead.title}” created.")
    return redirect(f"/sandbox/{company.domain}/?as={actor.pk}")


@require_POST
def stage_add(request: HttpRequest, domain: str) -> HttpResponse:
    company = _company(domain)
    actor = _acting_user(request, company)
    pipeline = next(
        (p for p in selectors.company_pipelines(company=company) if str(p.pk) == request.POST.get("pipeline_id")), None
    )
    name = request.POST.get("name", "").strip()
    if pipeline is None or not name:
        messages.error(request, "Choose a pipeline and name the stage.")
    else:
        services.stage_create(pipeline=pipeline, actor=actor, name=name, source=ChangeEvent.Source.APP)
        messages.success(request, f"Stage “{name}” added to {pipeline.name}.")
    return redirect(f"/sandbox/{company.domain}/?as={actor.pk}")


# --- the app's actions (a record's actions menu) ---------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def app_action_open(request: HttpRequest, domain: str, action_id: str) -> HttpResponse:
    """An app action chosen in a record's menu, as Pipedrive runs it for the user who chose it.

    - link: the new tab lands here and, when the user has installed the app, is sent on to the app's
      URL with the selection and a freshly signed token ("Link actions": the redirect happens only
      for an active installation);
    - JSON modal: GET answers the page's script with the schema and the app's initial data, POST
      sends the blocks' values to the app (``json_modal_host``); JSON modals need the user's own
      installation ("JSON modals don't work for shared apps").
    """
    company = _company(domain)
    actor = _acting_user(request, company)
    action = app_actions.app_action(action_id)
    resource = request.GET.get("resource", "")
    record_id = request.GET.get("id", "")
    if action is None or resource not in app_actions.RESOURCES or not re.fullmatch(r"[0-9]{1,18}", record_id):
        raise Http404("No such action or record")
    installed = _has_installed(company, actor)
    if action.kind == "link" and request.method == "GET":
        if not installed:
            return render(
                request,
                "sandbox/problem.html",
                {
                    "title": "Install the app first",
                    "message": f"{actor.name} has not installed the app, so Pipedrive does not open its link action.",
                },
                status=403,
            )
        target = app_actions.link_target(
            company=company, user=actor, action=action, resource=resource, record_id=int(record_id)
        )
        return redirect(target)
    if action.kind != "json_modal":
        raise Http404("This action does not open here")
    if not installed:
        return JsonResponse({"ok": False, "message": "Install the app to use its JSON modals."}, status=403)
    record = int(record_id)
    if request.method == "GET":
        opened = json_modal_host.json_modal_open(
            company=company, user=actor, action_id=action.id, resource=resource, record_id=record
        )
        return JsonResponse(opened)
    try:
        values = json.loads(request.body or b"{}")
    except ValueError:
        values = None
    if not isinstance(values, dict) or len(request.body) > 64 * 1024:
        return JsonResponse({"ok": False, "message": "The modal's values must be a JSON object."}, status=400)
    submitted = json_modal_host.json_modal_submit(
        company=company, user=actor, action_id=action.id, resource=resource, record_id=record, values=values
    )
    return JsonResponse(submitted)


# --- installed apps ------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def installed_apps_page(request: HttpRequest, domain: str) -> HttpResponse:
    company = _company(domain)
    if request.method == "POST":
        user = company.users.filter(pk=request.POST.get("user_id") or 0).first()
        if user is None:
            raise Http404("No such user")
        client_id = request.POST.get("client_id") or conf.client_id()
        if request.POST.get("action") == "expire":
            count = services.access_tokens_expire(user=user)
            messages.success(request, f"{count} access token(s) of {user.name} expired; the app must refresh.")
        else:
            services.app_uninstall(
                user=user, client_id=client_id, reason="App uninstalled by the user", notify_app=True
            )
            messages.success(request, f"App uninstalled for {user.name}; the app was notified (DELETE callback).")
        return redirect(f"/sandbox/{company.domain}/apps/")
    return render(
        request,
        "sandbox/installed_apps.html",
        {
            "company": company,
            "installs": selectors.installed_apps(company=company),
            "callback_url": conf.callback_url(),
            "app_client_id": conf.client_id(),
            "app_name": conf.app_name(),
        },
    )


@require_GET
def app_settings_page(request: HttpRequest, domain: str) -> HttpResponse:
    """Pipedrive's page for the app's settings: it frames the app's custom UI for app settings with
    the parameters Pipedrive appends (``id``, ``userId``, ``companyId``, ``token``, ``theme``)."""
    company = _company(domain)
    actor = _acting_user(request, company)
    query = urlencode(
        {
            "id": str(uuid.uuid4()),
            "userId": actor.pk,
            "companyId": company.pk,
            "token": signed_extension_token(extension="settings_page", company=company, user=actor),
            "theme": "light",
        }
    )
    return render(
        request,
        "sandbox/app_settings.html",
        {
            "company": company,
            "actor": actor,
            "users": list(company.users.order_by("pk")),
            "installed": _has_installed(company, actor),
            "extension_host_available": _extension_host_available(),
            "settings_iframe_src": f"{settings.APP_BASE_URL}/extensions/settings/?{query}",
            "settings_token_url": _token_url(company, actor, "settings_page"),
        },
    )


@never_cache
@require_GET
def extension_token(request: HttpRequest) -> HttpResponse:
    """A fresh signed token for the SDK's ``GET_SIGNED_TOKEN`` command (valid 5 minutes), signed
    with the JWT secret of the extension that asks (``extension``; a record panel by default)."""
    user = selectors.user_get(user_id=int(request.GET.get("user", "0") or 0))
    if user is None or str(user.company_id) != request.GET.get("company"):
        raise Http404("No such user in that company")
    extension = request.GET.get("extension") or "deal_panel"
    if extension not in settings.EXTENSION_NAMES:
        raise Http404("No such extension")
    return JsonResponse({"token": signed_extension_token(extension=extension, company=user.company, user=user)})
