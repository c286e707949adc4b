"""Run a panel's independent Pipedrive calls at the same time, so a panel costs about one round trip.

A small pool per request: each call runs on its own thread and its outcome (value or exception) is
collected, never raised across threads. Pipedrive calls do not touch the database once the access
token is fresh (the panel refreshes it on the request thread first), but a 401 mid-flight makes the
token source refresh from a worker thread; Django opens a connection per thread, so each worker
closes its own connections when its call ends instead of leaking one per panel view.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.db import connections


@dataclass(frozen=True)
class CallOutcome:
    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _capture(call: Callable[[], Any]) -> CallOutcome:
    try:
        return CallOutcome(value=call())
    except Exception as exc:
        return CallOutcome(error=exc)


def _on_worker(call: Callable[[], Any]) -> CallOutcome:
    try:
        return _capture(call)
    finally:
        connections.close_all()  # this worker thread's connections only


def calls_run(*, calls: Mapping[str, Callable[[], Any]], workers: int) -> dict[str, CallOutcome]:
    """Run ``calls`` (name -> zero-argument callable) with up to ``workers`` threads at once.

    ``workers <= 1`` runs them one after another on the calling thread (the benchmark's baseline).
    """
    if not calls:
        return {}
    if workers <= 1 or len(calls) == 1:
        return {name: _capture(call) for name, call in calls.items()}
    with ThreadPoolExecutor(max_workers=min(workers, len(calls)), thread_name_prefix="panel-call") as pool:
        futures = {name: pool.submit(_on_worker, call) for name, call in calls.items()}
        return {name: future.result() for name, future in futures.items()}
