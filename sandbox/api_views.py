"""The REST subset under each company's api_domain: ``/sandbox/<domain>/api/v1/...`` and ``.../api/v2/...``.

Every call is Bearer-authenticated through oauthlib's resource endpoint; a token used at another
company's api_domain is 401, a token without one of the operation's scopes 403. Then the burst
limit and the company's daily budget apply (``api_limits``). Bodies follow Pipedrive's OpenAPI
files (tests/sandbox/test_contract.py checks every operation).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from . import api_limits, conf, representations, selectors, services
from .facts import errors, wire
from .facts import scopes as scope_facts
from .models import AccessToken, ChangeEvent, FieldDefinition, SandboxCompany, SandboxUser
from .oauth_server import build_server

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiCall:
    request: HttpRequest
    company: SandboxCompany
    user: SandboxUser
    token: AccessToken

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.GET

    def json_body(self) -> dict[str, Any]:
        try:
            payload = json.loads(self.request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise services.RecordInputError("The body must be JSON") from None
        if not isinstance(payload, dict):
            raise services.RecordInputError("The body must be a JSON object")
        return payload


def _error(http_status: int, error: str, **extra: Any) -> JsonResponse:
    return JsonResponse(errors.api_error(http_status, error, **extra), status=http_status)


def _with_headers(response: HttpResponse, headers: Mapping[str, str]) -> HttpResponse:
    for name, value in headers.items():
        response[name] = value
    return response


def api_operation(key: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Authenticate, check scopes and limits for operation ``key``, then run the handler."""

    def decorate(handler: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(handler)
        def view(request: HttpRequest, domain: str, **kwargs: Any) -> HttpResponse:
            company = selectors.company_by_domain(domain=domain)
            if company is None:
                return _error(404, "Company not found")
            headers = {"Authorization": request.headers.get("Authorization", "")}
            _, oauth_request = build_server().verify_request(
                request.build_absolute_uri(),
                http_method=request.method or "GET",
                body=None,
                headers=headers,
                scopes=list(api_limits.operation_scopes(key)),
            )
            token: AccessToken | None = getattr(oauth_request, "sandbox_access", None)
            if token is None or token.company_id != company.pk:
                unauthorized = JsonResponse(errors.unauthorized(), status=401)
                unauthorized["WWW-Authenticate"] = 'Bearer realm="pipedrive-sandbox"'
                return unauthorized
            burst = api_limits.burst_limiter.hit(
                token.token_hash, limit=company.burst_limit, window=conf.burst_window_seconds()
            )
            if not burst.allowed:
                return _with_headers(JsonResponse(errors.over_limit(), status=429), burst.headers())
            if getattr(oauth_request, "sandbox_denial", None) == "scope":
                denied = errors.scope_denied(api_limits.operation_scopes(key))
                return _with_headers(JsonResponse(denied, status=403), burst.headers())
            if scope_facts.admin_only(api_limits.operation_scopes(key)) and not token.user.is_admin:
                return _with_headers(JsonResponse(errors.admin_required(), status=403), burst.headers())
            budget = api_limits.company_budget_charge(company_id=company.pk, cost=api_limits.operation_cost(key))
            if not budget.allowed:
                return _with_headers(_error(429, errors.BUDGET_EXHAUSTED_MESSAGE), budget.headers())
            call = ApiCall(request=request, company=company, user=token.user, token=token)
            response: HttpResponse
            try:
                response = handler(call, **kwargs)
            except services.RecordInputError as exc:
                response = _error(exc.status, exc.message, **({"errors": exc.errors} if exc.errors else {}))
            except selectors.BadListQuery as exc:
                response = _error(400, str(exc))
            return _with_headers(response, burst.headers())

        return csrf_exempt(view)

    return decorate


def _method_router(**handlers: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """One URL, one handler per HTTP method (each already wrapped by ``api_operation``)."""

    @csrf_exempt
    def route(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        handler = handlers.get((request.method or "GET").lower())
        if handler is None:
            response = _error(405, "Method not allowed")
            response["Allow"] = ", ".join(method.upper() for method in handlers)
            return response
        return handler(request, **kwargs)

    return route


def _ok(data: Any, *, http_status: int = 200, **extra: Any) -> JsonResponse:
    return JsonResponse({"success": True, "data": data, **extra}, status=http_status)


def _source() -> str:
    return ChangeEvent.Source.API


# --- users ---------------------------------------------------------------------------------------------


@api_operation("users.me")
def _users_me(call: ApiCall) -> HttpResponse:
    return _ok(representations.user_me(call.user))


@api_operation("users.get")
def _user_get(call: ApiCall, user_id: int) -> HttpResponse:
    user = selectors.company_user_get(company=call.company, user_id=user_id)
    if user is None:
        return _error(404, "User not found")
    return _ok(representations.user_v1(user, viewer_id=call.user.pk))


@api_operation("users.list")
def _users_list(call: ApiCall) -> HttpResponse:
    """``GET /api/v1/users``: every user of the token's company (scope ``users:read``)."""
    rows = selectors.company_users(company=call.company)
    return _ok([representations.user_v1(row, viewer_id=call.user.pk) for row in rows])


users = _method_router(get=_users_list)
users_me = _method_router(get=_users_me)
user = _method_router(get=_user_get)


# --- deals (v2) --------------------------------------------------------------------------------------------


def _cursor_response(page: selectors.CursorPage, render: Callable[[Any], dict[str, Any]]) -> JsonResponse:
    return JsonResponse(wire.cursor_page([render(item) for item in page.items], page.next_cursor))


@api_operation("deals.list")
def _deals_list(call: ApiCall) -> HttpResponse:
    return _cursor_response(selectors.deals_list(company=call.company, query=call.query), representations.deal_v2)


@api_operation("deals.create")
def _deals_create(call: ApiCall) -> HttpResponse:
    deal = services.deal_create(company=call.company, actor=call.user, data=call.json_body(), source=_source())
    return _ok(representations.deal_v2(deal))


@api_operation("deals.get")
def _deal_get(call: ApiCall, deal_id: int) -> HttpResponse:
    deal = selectors.deal_get(company=call.company, deal_id=deal_id)
    return _ok(representations.deal_v2(deal)) if deal else _error(404, "Deal not found")


@api_operation("deals.update")
def _deal_update(call: ApiCall, deal_id: int) -> HttpResponse:
    deal = selectors.deal_get(company=call.company, deal_id=deal_id)
    if deal is None:
        return _error(404, "Deal not found")
    deal = services.deal_update(deal=deal, actor=call.user, data=call.json_body(), source=_source())
    return _ok(representations.deal_v2(deal))


@api_operation("deals.delete")
def _deal_delete(call: ApiCall, deal_id: int) -> HttpResponse:
    deal = selectors.deal_get(company=call.company, deal_id=deal_id)
    if deal is None:
        return _error(404, "Deal not found")
    services.deal_delete(deal=deal, actor=call.user, source=_source())
    return _ok({"id": deal_id})


deals = _method_router(get=_deals_list, post=_deals_create)
deal = _method_router(get=_deal_get, patch=_deal_update, delete=_deal_delete)


# --- persons (v2) --------------------------------------------------------------------------------------------


@api_operation("persons.list")
def _persons_list(call: ApiCall) -> HttpResponse:
    return _cursor_response(selectors.persons_list(company=call.company, query=call.query), representations.person_v2)


@api_operation("persons.create")
def _persons_create(call: ApiCall) -> HttpResponse:
    person = services.person_create(company=call.company, actor=call.user, data=call.json_body(), source=_source())
    return _ok(representations.person_v2(person))


@api_operation("persons.get")
def _person_get(call: ApiCall, person_id: int) -> HttpResponse:
    person = selectors.person_get(company=call.company, person_id=person_id)
    return _ok(representations.person_v2(person)) if person else _error(404, "Person not found")


@api_operation("persons.update")
def _person_update(call: ApiCall, person_id: int) -> HttpResponse:
    person = selectors.person_get(company=call.company, person_id=person_id)
    if person is None:
        return _error(404, "Person not found")
    person = services.person_update(person=person, actor=call.user, data=call.json_body(), source=_source())
    return _ok(representations.person_v2(person))


@api_operation("persons.delete")
def _person_delete(call: ApiCall, person_id: int) -> HttpResponse:
    person = selectors.person_get(company=call.company, person_id=person_id)
    if person is None:
        return _error(404, "Person not found")
    services.person_delete(person=person, actor=call.user, source=_source())
    return _ok({"id": person_id})


persons = _method_router(get=_persons_list, post=_persons_create)
person = _method_router(get=_person_get, patch=_person_update, delete=_person_delete)


# --- organizations, pipelines and stages (v2; the panels name what a deal or person points at) ----------


@api_operation("organizations.get")
def _organization_get(call: ApiCall, org_id: int) -> HttpResponse:
    org = selectors.organization_get(company=call.company, org_id=org_id)
    return _ok(representations.organization_v2(org)) if org else _error(404, "Organization not found")


@api_operation("pipelines.list")
def _pipelines_list(call: ApiCall) -> HttpResponse:
    return _cursor_response(
        selectors.pipelines_list(company=call.company, query=call.query), representations.pipeline_v2
    )


@api_operation("pipelines.get")
def _pipeline_get(call: ApiCall, pipeline_id: int) -> HttpResponse:
    pipeline = selectors.pipeline_get(company=call.company, pipeline_id=pipeline_id)
    return _ok(representations.pipeline_v2(pipeline)) if pipeline else _error(404, "Pipeline not found")


@api_operation("stages.list")
def _stages_list(call: ApiCall) -> HttpResponse:
    return _cursor_response(selectors.stages_list(company=call.company, query=call.query), representations.stage_v2)


@api_operation("stages.get")
def _stage_get(call: ApiCall, stage_id: int) -> HttpResponse:
    stage = selectors.stage_get(company=call.company, stage_id=stage_id)
    return _ok(representations.stage_v2(stage)) if stage else _error(404, "Stage not found")


organization = _method_router(get=_organization_get)
pipelines = _method_router(get=_pipelines_list)
pipeline = _method_router(get=_pipeline_get)
stages = _method_router(get=_stages_list)
stage = _method_router(get=_stage_get)


# --- fields (v2) ----------------------------------------------------------------------------------------------


@api_operation("dealFields.list")
def _deal_fields(call: ApiCall) -> HttpResponse:
    definitions = selectors.field_definitions(company=call.company, entity=FieldDefinition.Entity.DEAL)
    return _ok(representations.fields_v2(FieldDefinition.Entity.DEAL, definitions), additional_data={})


@api_operation("personFields.list")
def _person_fields(call: ApiCall) -> HttpResponse:
    definitions = selectors.field_definitions(company=call.company, entity=FieldDefinition.Entity.PERSON)
    return _ok(representations.fields_v2(FieldDefinition.Entity.PERSON, definitions), additional_data={})


deal_fields = _method_router(get=_deal_fields)
person_fields = _method_router(get=_person_fields)


# --- notes (v1) --------------------------------------------------------------------------------------------------


@api_operation("notes.list")
def _notes_list(call: ApiCall) -> HttpResponse:
    page = selectors.notes_list(company=call.company, query=call.query)
    items = [representations.note_v1(note, viewer_id=call.user.pk) for note in page.items]
    return JsonResponse(wire.offset_page(items, start=page.start, limit=page.limit, more=page.more))


@api_operation("notes.create")
def _notes_create(call: ApiCall) -> HttpResponse:
    note = services.note_create(company=call.company, actor=call.user, data=call.json_body(), source=_source())
    return _ok(representations.note_v1(note, viewer_id=call.user.pk))


notes = _method_router(get=_notes_list, post=_notes_create)


# --- activities (v2) -----------------------------------------------------------------------------------------


@api_operation("activities.list")
def _activities_list(call: ApiCall) -> HttpResponse:
    return _cursor_response(
        selectors.activities_list(company=call.company, query=call.query), representations.activity_v2
    )


@api_operation("activities.create")
def _activities_create(call: ApiCall) -> HttpResponse:
    activity = services.activity_create(company=call.company, actor=call.user, data=call.json_body())
    return _ok(representations.activity_v2(activity))


activities = _method_router(get=_activities_list, post=_activities_create)


# --- leads (v1; UUID ids) --------------------------------------------------------------------------------------


def _lead_or_none(call: ApiCall, lead_id: str) -> Any:
    return selectors.lead_get(company=call.company, lead_id=lead_id)


@api_operation("leads.list")
def _leads_list(call: ApiCall) -> HttpResponse:
    page = selectors.leads_list(company=call.company, query=call.query)
    items = [representations.lead_v1(lead) for lead in page.items]
    return JsonResponse(wire.offset_page(items, start=page.start, limit=page.limit, more=page.more))


@api_operation("leads.create")
def _leads_create(call: ApiCall) -> HttpResponse:
    lead = services.lead_create(company=call.company, actor=call.user, data=call.json_body(), source=_source())
    return _ok(representations.lead_v1(lead), http_status=201)


@api_operation("leads.get")
def _lead_get(call: ApiCall, lead_id: str) -> HttpResponse:
    lead = _lead_or_none(call, lead_id)
    return _ok(representations.lead_v1(lead)) if lead else _error(404, "Lead not found")


@api_operation("leads.update")
def _lead_update(call: ApiCall, lead_id: str) -> HttpResponse:
    lead = _lead_or_none(call, lead_id)
    if lead is None:
        return _error(404, "Lead not found")
    lead = services.lead_update(lead=lead, actor=call.user, data=call.json_body(), source=_source())
    return _ok(representations.lead_v1(lead))


@api_operation("leads.delete")
def _lead_delete(call: ApiCall, lead_id: str) -> HttpResponse:
    lead = _lead_or_none(call, lead_id)
    if lead is None:
        return _error(404, "Lead not found")
    services.lead_delete(lead=lead, actor=call.user, source=_source())
    return _ok({"id": str(lead.pk)})


leads = _method_router(get=_leads_list, post=_leads_create)
lead = _method_router(get=_lead_get, patch=_lead_update, delete=_lead_delete)


# --- webhooks (v1, scope admin) -------------------------------------------------------------------------------------


@api_operation("webhooks.list")
def _webhooks_list(call: ApiCall) -> HttpResponse:
    rows = selectors.app_webhooks(company=call.company, client_id=call.token.client_id)
    return _ok([representations.webhook_v1(row) for row in rows], status="ok")


@api_operation("webhooks.create")
def _webhooks_create(call: ApiCall) -> HttpResponse:
    try:
        webhook = services.webhook_create(
            company=call.company, owner=call.user, client_id=call.token.client_id, data=call.json_body()
        )
    except services.WebhookLimitReached as exc:
        return _error(422, exc.message, status="error")
    except services.RecordInputError as exc:
        return JsonResponse(errors.invalid_fields(exc.errors or {"body": [exc.message]}), status=400)
    return JsonResponse({"success": True, "status": "ok", "data": representations.webhook_v1(webhook)}, status=201)


@api_operation("webhooks.delete")
def _webhook_delete(call: ApiCall, webhook_id: int) -> HttpResponse:
    found = next(
        (w for w in selectors.app_webhooks(company=call.company, client_id=call.token.client_id) if w.pk == webhook_id),
        None,
    )
    if found is None:
        return JsonResponse(errors.webhook_not_found(), status=404)
    services.webhook_remove(webhook=found, reason="Deleted through the API")
    return JsonResponse({"success": True, "status": "ok", "data": {"id": webhook_id}})


webhooks = _method_router(get=_webhooks_list, post=_webhooks_create)
webhook = _method_router(delete=_webhook_delete)


@csrf_exempt
def not_implemented(request: HttpRequest, domain: str, rest: str) -> HttpResponse:
    """Anything else under an api_domain: say so plainly rather than a Django HTML 404."""
    if settings.DEBUG:
        logger.info("sandbox: %s %s is not implemented", request.method, request.path)
    return _error(404, f"The sandbox does not implement {request.method} /{rest}")
