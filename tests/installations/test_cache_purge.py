"""Uninstall purges what the cache holds for the company: cached panels (deal titles), looked-up
names. Uses the configured cache: Redis when ``CACHE_URL`` points at it, else the in-process one.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.test import Client

from tests.extensions.conftest import JWT_SECRET, panel_query

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit work runs as in production

TITLE = "Confidential merger of Acme"
OTHER_TITLE = "Deal of another company"


def _raw_values() -> list[bytes]:
    """Every value the cache holds for this app, as stored (pickled bytes)."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        client: Any = backend._cache.get_client()
        keys = list(client.scan_iter(match=backend.make_key("*"), count=500))
        return [v for v in client.mget(keys) if v is not None] if keys else []
    if isinstance(backend, LocMemCache):
        locmem: Any = backend  # its lock and store are private (not in the stubs)
        with locmem._lock:
            return [bytes(v) for v in locmem._cache.values()]
    pytest.skip(f"unsupported cache backend {type(backend)}")


def _cached(text: str) -> int:
    return sum(1 for value in _raw_values() if text.encode() in value)


def _uninstall(client: Client, pipedrive, company_id: int, user_id: int) -> None:
    auth = "Basic " + base64.b64encode(f"{pipedrive.client_id}:{pipedrive.client_secret}".encode()).decode()
    body = {"client_id": pipedrive.client_id, "company_id": company_id, "user_id": user_id, "timestamp": "1"}
    response = client.generic(
        "DELETE", "/oauth/callback", json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth
    )
    assert response.status_code == 200


def _view_panel(client: Client, company_id: int, user_id: int, deal_id: int, title: str) -> None:
    query = panel_query(company_id=company_id, user_id=user_id, record_id=deal_id)
    response = client.get(f"/extensions/panels/deal/?{query}")
    assert response.status_code == 200 and title in response.content.decode()


def test_uninstall_purges_the_company_s_cached_panels_and_names(pipedrive, install_user, settings) -> None:
    settings.PIPEDRIVE_JWT_SECRET = JWT_SECRET
    cache.clear()
    install_user(1001, 501)
    install_user(1001, 502)
    install_user(2002, 601)
    deal = pipedrive.add_deal(1001, title=TITLE)
    other = pipedrive.add_deal(2002, title=OTHER_TITLE)
    client = Client()
    _view_panel(client, 1001, 501, deal["id"], TITLE)
    _view_panel(client, 1001, 502, deal["id"], TITLE)
    _view_panel(client, 2002, 601, other["id"], OTHER_TITLE)
    cache.set(f"history:name:1001:deal:{deal['id']}", TITLE, 300)  # a name the history looked up
    assert _cached(TITLE) == 3 and _cached(OTHER_TITLE) == 1

    # One user leaves: their cached panel goes, the colleague's stays.
    _uninstall(client, pipedrive, 1001, 502)
    assert _cached(TITLE) == 2

    # The last user leaves: the company's data is purged, from the database and from the cache.
    _uninstall(client, pipedrive, 1001, 501)
    assert _cached(TITLE) == 0
    assert _cached(OTHER_TITLE) == 1  # other companies are untouched
    cache.clear()
