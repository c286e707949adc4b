from collections.abc import Iterator

import pytest
from django.core.cache import cache

from tests.webhooks.conftest import install_user, post_event, webhook_company  # noqa: F401


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Record names are cached per Pipedrive company id, which every test here shares (1001)."""
    cache.clear()
    yield
    cache.clear()
