"""A ``requests`` adapter that answers ``http://testserver/...`` with the Django test client, in-process.

The sandbox calls the app's JSON panel URL server-side (sandbox/json_panel_host.py). In tests that run
without a live server, ``APP_BASE_URL`` is ``http://testserver``: this adapter serves those calls
without any network (not even a name lookup). Any other URL is refused, never sent.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from django.test import Client
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

IN_PROCESS_ORIGIN = "http://testserver"


class DjangoClientAdapter(BaseAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = str(request.url)
        if not url.startswith(IN_PROCESS_ORIGIN + "/"):
            raise requests.ConnectionError(f"in-process adapter: {urlsplit(url).netloc} is not served")
        parts = urlsplit(url)
        self.calls.append(parts.path)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in {"host", "content-length"}}
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        answer = Client().generic(
            str(request.method),
            f"{parts.path}?{parts.query}" if parts.query else parts.path,
            data=body,
            headers=headers,
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response._content = answer.content
        response.headers = CaseInsensitiveDict(dict(answer.headers.items()))
        response.url = url
        response.request = request
        return response

    def close(self) -> None:
        pass


def in_process_session(adapter: DjangoClientAdapter) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
