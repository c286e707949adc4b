"""Delete every cache entry whose key starts with a prefix (e.g. everything cached for one company).

Django's cache API has no "delete by prefix". For the two backends this app runs on it is done
directly: Redis (``CACHE_URL=redis://…``, Django's RedisCache) with ``SCAN MATCH`` and ``DEL`` in
batches, never ``KEYS``; the in-process LocMemCache by walking its keys under its lock. Any other
backend is left to expire its entries (logged).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")
_BATCH = 500


def cache_delete_prefixes(prefixes: Iterable[str], *, alias: str = "default") -> int:
    """Delete the entries of ``caches[alias]`` whose (unprefixed) key starts with one of
    ``prefixes``; return how many were deleted."""
    cache = caches[alias]
    wanted = [p for p in prefixes if p]
    if not wanted:
        return 0
    if isinstance(cache, RedisCache):
        return _redis_delete(cache, wanted)
    if isinstance(cache, LocMemCache):
        return _locmem_delete(cache, wanted)
    logger.warning("cache %s (%s) cannot delete by prefix; its entries expire by themselves", alias, type(cache))
    return 0


def _redis_delete(cache: RedisCache, prefixes: list[str]) -> int:
    client: Any = cache._cache.get_client(write=True)
    deleted = 0
    for prefix in prefixes:
        pattern = _GLOB_SPECIAL.sub(r"\\\1", cache.make_key(prefix)) + "*"
        batch: list[Any] = []
        for key in client.scan_iter(match=pattern, count=_BATCH):
            batch.append(key)
            if len(batch) >= _BATCH:
                deleted += int(client.delete(*batch))
                batch = []
        if batch:
            deleted += int(client.delete(*batch))
    return deleted


def _locmem_delete(cache: LocMemCache, prefixes: list[str]) -> int:
    made = tuple(cache.make_key(prefix) for prefix in prefixes)
    store: Any = cache  # its private dict and lock are not in the type stubs
    deleted = 0
    with store._lock:
        for key in [k for k in store._cache if k.startswith(made)]:
            deleted += int(store._delete(key))
    return deleted
