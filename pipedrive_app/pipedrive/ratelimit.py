"""Client-side limits on calls to Pipedrive, shared by every process that calls it.

Pipedrive limits an app two ways (docs/pipedrive-platform.md §5): a **burst** limit per token (80
requests in any rolling 2 s for the smallest plan) and a **daily token budget** per company, shared
by all its users, from which each operation's ``x-token-cost`` is charged. ``PipedriveClient`` asks
its ``RequestLimiter`` before every request:

- ``burst``: a sliding window per token key. A request holds its slot while it is in flight and
  then for one window after its response arrived (Pipedrive counts a request when it arrives, which
  is somewhere between our send and its answer, so stamping the slot at send time could let a slow
  request and the next window's requests land inside one of Pipedrive's windows). Over the limit the
  caller sleeps until a slot frees, so N workers together stay under the limit instead of each
  receiving 429s.
- ``budget``: the operation's cost is charged to the company's budget for the current UTC day,
  atomically and only if it fits under a ceiling: the whole budget for interactive calls (panels),
  the budget less a reserve for background work. When it does not fit, ``PipedriveBudgetExhausted``
  (a ``PipedriveRateLimited``) says how long until the budget resets; background tasks retry then.
  A response that states what is left (``x-daily-tokens-left`` / ``x-daily-requests-left``) moves
  the local count up to Pipedrive's (other integrations spend the same budget).

Two stores implement the shared state: ``RedisRateStore`` (one Lua script per decision, so checks
and updates are atomic across processes; the burst window uses Redis's clock) and
``LocalRateStore`` (one process, for development and tests without Redis). This module knows
nothing of Django; the installations service wires it up (``installation_client``).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import PipedriveBudgetExhausted

logger = logging.getLogger(__name__)

DAY = 86_400
# Operation costs (x-token-cost in Pipedrive's OpenAPI files, v1.yaml/v2.yaml) of the calls this app
# makes; tests/pipedrive/test_ratelimit.py holds this table to the files. Unknown calls cost 10.
_COSTS: tuple[tuple[str, str, int], ...] = (
    ("GET", r"/api/v1/users/me", 2),
    ("GET", r"/api/v1/users/\d+", 2),
    ("GET", r"/api/v2/(deals|persons|organizations|pipelines|stages)/\d+", 1),
    ("GET", r"/api/v2/(deals|persons)", 10),
    ("GET", r"/api/v2/(deal|person|organization|product|activity)Fields", 10),
    ("GET", r"/api/v1/notes", 20),
    ("POST", r"/api/v1/notes", 10),
    ("GET", r"/api/v1/webhooks", 10),
    ("POST", r"/api/v1/webhooks", 10),
    ("DELETE", r"/api/v1/webhooks/\d+", 6),
)
_COMPILED = tuple((method, re.compile(pattern), cost) for method, pattern, cost in _COSTS)
DEFAULT_COST = 10
_LEFT_HEADERS = ("x-daily-tokens-left", "x-daily-requests-left")
# The wall clock that decides the budget's day (UTC); tests replace it.
wall_clock: Callable[[], float] = time.time


def operation_cost(method: str, path: str) -> int:
    for op_method, pattern, cost in _COMPILED:
        if op_method == method.upper() and pattern.fullmatch(path):
            return cost
    return DEFAULT_COST


# A slot held by a request in flight counts as "in the window" for at most this long, so a process
# that dies mid-request cannot hold a slot for ever.
IN_FLIGHT_HOLD = 60.0
# While every slot is held by requests still in flight, poll this often for one to finish.
IN_FLIGHT_POLL = 0.05


class RateStore(Protocol):
    def take_burst_slot(self, key: str, *, limit: int, window: float, member: str | None = None) -> float:
        """Take a slot if fewer than ``limit`` are held: 0.0; else seconds to wait before asking again.

        With ``member`` the slot is held as in flight until ``finish_burst_slot``; without, it is
        stamped now (a request whose end is not tracked).
        """
        ...

    def finish_burst_slot(self, key: str, member: str) -> None:
        """The request ended: its slot stays in the window for one window from now."""
        ...

    def spend(self, key: str, cost: int, *, ceiling: int, ttl: int) -> bool:
        """Add ``cost`` to the counter if the result stays within ``ceiling``; False (nothing added) if not."""
        ...

    def raise_to(self, key: str, used: int, *, ttl: int) -> None:
        """Set the counter to ``used`` if that is more than it holds."""
        ...


# --- in-process store -----------------------------------------------------------------------------


class LocalRateStore:
    """Shared by the threads of one process (module-level ``local_store()``)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        # key -> {member: time the slot leaves the window's reckoning (its stamp)}
        self._windows: dict[str, dict[str, float]] = {}
        self._counters: dict[str, int] = {}

    def take_burst_slot(self, key: str, *, limit: int, window: float, member: str | None = None) -> float:
        with self._lock:
            now = self._monotonic()
            slots = self._windows.setdefault(key, {})
            for stale in [m for m, stamp in slots.items() if stamp <= now - window]:
                del slots[stale]
            if len(slots) < limit:
                slots[member or uuid.uuid4().hex] = now + IN_FLIGHT_HOLD if member else now
                return 0.0
            oldest = min(slots.values())
            if oldest > now:  # every slot is held by a request still in flight
                return IN_FLIGHT_POLL
            return max(0.001, oldest + window - now)

    def finish_burst_slot(self, key: str, member: str) -> None:
        with self._lock:
            slots = self._windows.get(key)
            if slots is not None and member in slots:
                slots[member] = self._monotonic()

    def spend(self, key: str, cost: int, *, ceiling: int, ttl: int) -> bool:
        with self._lock:
            used = self._counters.get(key, 0)
            if used + cost > ceiling:
                return False
            self._counters[key] = used + cost
            return True

    def raise_to(self, key: str, used: int, *, ttl: int) -> None:
        with self._lock:
            self._counters[key] = max(self._counters.get(key, 0), used)


_local_store = LocalRateStore()


def local_store() -> LocalRateStore:
    return _local_store


# --- Redis store ----------------------------------------------------------------------------------

# KEYS[1] sorted set of slots scored by stamp (µs): the end of a finished request, or now + hold for
# one in flight; ARGV limit, window µs, member, hold µs (0: stamp now). Redis's own clock, so every
# process measures the same window.
_BURST_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
local hold = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + hold, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil((window + hold) / 1000) + 1000)
  return 0
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
if oldest > now then return tonumber(ARGV[5]) end
return math.max(1, oldest + window - now)
"""
# KEYS[1] the slots; ARGV member. Re-stamp a finished request's slot with the time it ended.
_FINISH_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then redis.call('ZADD', KEYS[1], now, ARGV[1]) end
return 0
"""
# KEYS[1] counter; ARGV cost, ceiling, ttl s. 1 if charged.
_SPEND_LUA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
_RAISE_LUA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > used then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 0
"""


class RedisRateStore:
    """State in Redis, shared by every web and worker process. If Redis cannot be reached the limiter
    lets the call through (Pipedrive's own 429 handling still applies) and logs a warning."""

    def __init__(self, client: Any, *, prefix: str = "pdlimit:") -> None:
        self._redis = client
        self._prefix = prefix
        self._burst = client.register_script(_BURST_LUA)
        self._finish = client.register_script(_FINISH_LUA)
        self._spend = client.register_script(_SPEND_LUA)
        self._raise = client.register_script(_RAISE_LUA)

    @classmethod
    def from_url(cls, url: str) -> RedisRateStore:
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0))

    def take_burst_slot(self, key: str, *, limit: int, window: float, member: str | None = None) -> float:
        hold = int(IN_FLIGHT_HOLD * 1_000_000) if member else 0
        args = [limit, int(window * 1_000_000), member or uuid.uuid4().hex, hold, int(IN_FLIGHT_POLL * 1_000_000)]
        try:
            waited = self._burst(keys=[self._prefix + key], args=args)
        except Exception as exc:  # redis.RedisError, OSError: fail open
            logger.warning("rate limiter: Redis unavailable (%s); not limiting this call", type(exc).__name__)
            return 0.0
        return int(waited) / 1_000_000

    def finish_burst_slot(self, key: str, member: str) -> None:
        try:
            self._finish(keys=[self._prefix + key], args=[member])
        except Exception as exc:
            logger.warning("rate limiter: Redis unavailable (%s)", type(exc).__name__)

    def spend(self, key: str, cost: int, *, ceiling: int, ttl: int) -> bool:
        try:
            return bool(self._spend(keys=[self._prefix + key], args=[cost, ceiling, ttl]))
        except Exception as exc:
            logger.warning("rate limiter: Redis unavailable (%s); budget not charged", type(exc).__name__)
            return True

    def raise_to(self, key: str, used: int, *, ttl: int) -> None:
        try:
            self._raise(keys=[self._prefix + key], args=[used, ttl])
        except Exception as exc:
            logger.warning("rate limiter: Redis unavailable (%s)", type(exc).__name__)


_redis_stores: dict[str, RedisRateStore] = {}
_redis_stores_lock = threading.Lock()


def redis_store(url: str) -> RedisRateStore:
    """One store (one connection pool) per URL and process."""
    with _redis_stores_lock:
        store = _redis_stores.get(url)
        if store is None:
            store = _redis_stores[url] = RedisRateStore.from_url(url)
        return store


# --- the limiter a client consults ------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    burst_limit: int = 80
    burst_window: float = 2.0
    daily_budget: int = 30_000
    reserve: int = 3_000  # kept for interactive calls; background work stops below it


class RequestLimiter:
    """Limits for one client: ``token_key`` (burst) and ``company_key`` (daily budget)."""

    def __init__(
        self,
        store: RateStore,
        *,
        token_key: str,
        company_key: str,
        limits: Limits,
        interactive: bool = False,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._token_key = token_key
        self._company_key = company_key
        self._limits = limits
        self._interactive = interactive
        self._clock = clock if clock is not None else (lambda: wall_clock())
        self._sleep = sleep

    def _budget_key(self) -> tuple[str, float]:
        """The counter of today (UTC) and the seconds until it resets."""
        now = self._clock()
        day = int(now // DAY)
        return f"budget:{self._company_key}:{day}", (day + 1) * DAY - now

    def before_request(self, method: str, path: str) -> str:
        """Charge the budget (or raise PipedriveBudgetExhausted), then wait for a burst slot.

        Returns the slot's handle, to be given to ``request_done`` when the request has ended.
        """
        cost = operation_cost(method, path)
        key, until_reset = self._budget_key()
        ceiling = self._limits.daily_budget - (0 if self._interactive else self._limits.reserve)
        if not self._store.spend(key, cost, ceiling=ceiling, ttl=2 * DAY):
            kind = "interactive" if self._interactive else "background"
            raise PipedriveBudgetExhausted(
                f"{method} {path}: daily token budget spent for {kind} calls; resets in {until_reset:.0f} s",
                retry_after=until_reset,
            )
        slot = uuid.uuid4().hex
        while True:
            wait = self._store.take_burst_slot(
                f"burst:{self._token_key}",
                limit=self._limits.burst_limit,
                window=self._limits.burst_window,
                member=slot,
            )
            if wait <= 0:
                return slot
            self._sleep(wait)

    def request_done(self, slot: str) -> None:
        """The request answered (or failed): from now its slot counts for one more window."""
        self._store.finish_burst_slot(f"burst:{self._token_key}", slot)

    def after_response(self, headers: Mapping[str, str]) -> None:
        """Adopt Pipedrive's count of what is left today, when the response states it."""
        for name in _LEFT_HEADERS:
            value = headers.get(name)
            if value is None:
                continue
            try:
                left = int(float(value))
            except ValueError:
                continue
            key, _ = self._budget_key()
            self._store.raise_to(key, max(0, self._limits.daily_budget - left), ttl=2 * DAY)
            return
