from __future__ import annotations

import logging
from types import SimpleNamespace

from celery import signals
from django.test import Client

from pipedrive_app.core.request_id import (
    HEADER,
    RequestIdFilter,
    bind_request_id,
    current_request_id,
    reset_request_id,
)


def test_response_echoes_a_sane_incoming_request_id(client: Client) -> None:
    response = client.get("/healthz", headers={HEADER: "edge-1234abcd"})
    assert response[HEADER] == "edge-1234abcd"


def test_an_unsafe_incoming_id_is_replaced(client: Client) -> None:
    response = client.get("/healthz", headers={HEADER: "bad id\nwith newline"})
    assert response[HEADER] != "bad id\nwith newline" and len(response[HEADER]) == 32


def test_log_records_carry_the_request_id() -> None:
    token = bind_request_id("req-abcdef12")
    try:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
        RequestIdFilter().filter(record)
    finally:
        reset_request_id(token)
    assert getattr(record, "request_id", None) == "req-abcdef12"


def test_request_id_travels_into_a_task_through_message_headers() -> None:
    headers: dict[str, str] = {}
    token = bind_request_id("req-into-task")
    try:
        signals.before_task_publish.send(sender="some.task", headers=headers, body=None)
    finally:
        reset_request_id(token)
    assert headers["request_id"] == "req-into-task"

    # In the worker: the header becomes the task's request attribute, bound while it runs.
    task = SimpleNamespace(request=SimpleNamespace(request_id="req-into-task", headers=None))
    assert current_request_id() is None
    signals.task_prerun.send(sender="t", task=task, task_id="1")
    assert current_request_id() == "req-into-task"
    signals.task_postrun.send(sender="t", task=task, task_id="1")
    assert current_request_id() is None
