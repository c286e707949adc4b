"""The one way this app builds an outbound HTTP session: default timeout and safe retries."""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_TIMEOUT = 15.0
# Only requests that are safe to repeat are retried automatically; a POST that timed out may have
# been applied, so it is never re-sent behind the caller's back.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class _TimeoutAdapter(HTTPAdapter):
    def __init__(self, *args: Any, timeout: float, **kwargs: Any) -> None:
        self._timeout = timeout
        super().__init__(*args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def build_retry(*, total: int = 3, backoff_factor: float = 0.5) -> Retry:
    """Back off on connection errors and 5xx for idempotent methods; 429 is handled by the caller."""
    return Retry(
        total=total,
        connect=total,
        read=total,
        status=total,
        backoff_factor=backoff_factor,
        backoff_jitter=0.25,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=IDEMPOTENT_METHODS,
        respect_retry_after_header=False,
        raise_on_status=False,
    )


def mount_defaults(
    session: requests.Session, *, timeout: float = DEFAULT_TIMEOUT, retry: Retry | None = None
) -> requests.Session:
    adapter = _TimeoutAdapter(timeout=timeout, max_retries=retry if retry is not None else Retry(0))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def build_session(
    *, timeout: float = DEFAULT_TIMEOUT, retry: Retry | None = None, user_agent: str = "pipedrive-django-app"
) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    # Never pick up credentials from ~/.netrc or proxies from the environment for Pipedrive calls.
    session.trust_env = False
    return mount_defaults(session, timeout=timeout, retry=retry if retry is not None else build_retry())
