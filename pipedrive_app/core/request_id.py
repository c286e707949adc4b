"""A request id that follows a request into the log lines and into the Celery tasks it enqueues.

The id comes from the reverse proxy's ``X-Request-ID`` when it looks sane, else a new UUID; it is
echoed in the response header, attached to every log record (``request_id``) and carried to tasks
in a message header, so one id ties the web request to the worker's log lines.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
TASK_HEADER = "request_id"
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SANE = re.compile(r"[A-Za-z0-9._:-]{8,128}")


def current_request_id() -> str | None:
    return _current.get()


def bind_request_id(value: str | None) -> contextvars.Token[str | None]:
    return _current.set(value)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _current.reset(token)


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        supplied = request.headers.get(HEADER, "")
        request_id = supplied if _SANE.fullmatch(supplied) else uuid.uuid4().hex
        token = bind_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response[HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id() or "-"
        return True


def connect_celery_signals() -> None:
    """Carry the id from the publishing request into the task's own context."""
    from celery import signals

    def publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
        request_id = current_request_id()
        if headers is not None and request_id and TASK_HEADER not in headers:
            headers[TASK_HEADER] = request_id

    def prerun(task: Any = None, **_: Any) -> None:
        request_id = getattr(getattr(task, "request", None), TASK_HEADER, None)
        if request_id is None and task is not None:
            request_id = (getattr(task.request, "headers", None) or {}).get(TASK_HEADER)
        task._request_id_token = bind_request_id(request_id) if request_id else None

    def postrun(task: Any = None, **_: Any) -> None:
        token = getattr(task, "_request_id_token", None)
        if token is not None:
            reset_request_id(token)
            task._request_id_token = None

    signals.before_task_publish.connect(publish, weak=False)
    signals.task_prerun.connect(prerun, weak=False)
    signals.task_postrun.connect(postrun, weak=False)
