"""The webhook receiver: authenticate, bound, parse, store, answer. No Pipedrive call here."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from pipedrive_app.core.parsing import ParseError, basic_credentials_parse

from .payloads import InvalidDelivery, delivery_parse
from .selectors import webhook_state_for_key
from .services import CompanyGone, inbox_event_receive, webhook_credentials_check

logger = logging.getLogger(__name__)


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    """Strict and bounded (core/parsing.py): anything but well-formed Basic credentials is None."""
    try:
        return basic_credentials_parse(header=request.META.get("HTTP_AUTHORIZATION"))
    except ParseError:
        return None


def _refusal(status: int, reason: str) -> JsonResponse:
    response = JsonResponse({"error": reason}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="webhooks"'
    return response


@csrf_exempt
@require_POST
def pipedrive_webhook(request: HttpRequest, key: str) -> HttpResponse:
    state = webhook_state_for_key(url_key=key)
    if state is None:
        return _refusal(404, "unknown webhook URL")
    credentials = _basic_credentials(request)
    if credentials is None or not webhook_credentials_check(
        state=state, username=credentials[0], password=credentials[1]
    ):
        return _refusal(401, "wrong or missing credentials")
    limit = settings.WEBHOOKS_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _refusal(400, "bad Content-Length")
    if declared > limit:
        return _refusal(413, f"body larger than {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:
        return _refusal(413, f"body larger than {limit} bytes")
    try:
        try:
            delivery = delivery_parse(body)
        except InvalidDelivery:
            raise
        except Exception:  # a payload shape the reader did not foresee: a clear 400, never a 500
            logger.exception("webhook for company %s: payload not readable", state.company_id)
            raise InvalidDelivery("the payload could not be read") from None
        result = inbox_event_receive(state=state, delivery=delivery, body=body.decode("utf-8"))
    except InvalidDelivery as exc:
        logger.info("webhook for company %s refused: %s", state.company_id, exc.reason)
        return _refusal(400, exc.reason)
    except CompanyGone:
        return _refusal(404, "unknown webhook URL")
    return JsonResponse({"ok": True, "duplicate": result.duplicate})
