"""Pipedrive's numbers: lifetimes, page sizes, webhook rules, burst and daily-budget limits.

Sources: docs/pipedrive-platform.md (§1 OAuth, §4 webhooks, §5 rate limits), with links to Pipedrive's
pages. Token costs per operation are not here: they are read from the OpenAPI files (``openapi``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

AUTHORIZATION_CODE_LIFETIME_SECONDS = 5 * 60  # a code works once, for 5 minutes
ACCESS_TOKEN_LIFETIME_SECONDS = 3599
REFRESH_TOKEN_IDLE_DAYS = 60  # a refresh token dies after 60 days unused
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100
WEBHOOKS_PER_USER = 40  # per app user (docs/webhooks-for-apps)
WEBHOOK_TIMEOUT_SECONDS = 10.0
WEBHOOK_RETRY_DELAYS = (3, 30, 150)  # after attempts 1, 2, 3; attempt 4 is the last
WEBHOOK_BAN_AFTER_FAILED_FIRST_ATTEMPTS = 10
WEBHOOK_BAN_MINUTES = 30
WEBHOOK_REMOVE_AFTER_DAYS = 3
BURST_LIMIT = 80  # requests per token per rolling window (the plan decides; 80 is the lowest)
BURST_WINDOW_SECONDS = 2.0
DAILY_BUDGET = 30_000  # tokens per company per day


def webhook_limit_message() -> str:
    return f"The limit of {WEBHOOKS_PER_USER} webhooks per app user is reached"


@dataclass(frozen=True)
class LimitState:
    """Where a limit stands after a request; ``headers()`` are Pipedrive's rate-limit headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        headers = {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


class BurstLimiter:
    """A rolling-window counter per key (an access token or its digest), in process memory."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, *, limit: int, window: float, now: float | None = None) -> LimitState:
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                wait = hits[0] + window - now
                return LimitState(False, limit, 0, max(1, math.ceil(wait)))
            hits.append(now)
            wait = hits[0] + window - now
            return LimitState(True, limit, limit - len(hits), max(1, math.ceil(wait)))

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()
