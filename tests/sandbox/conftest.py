"""Fixtures for the sandbox's tests.

- ``sandbox_world``: the seeded demo data (two companies, admin and regular users) in the
  ``sandbox`` database alias; tests that touch it use ``SANDBOX_DB`` (``databases=[...]``).
- ``grant``: runs the real consent page + token endpoint in-process (Django test client) and returns
  the token response for a user.
- ``api``: calls a company's REST API in-process with a Bearer token.
- ``receiver``: a loopback HTTP server that records webhook deliveries and answers as told.
- ``live_sandbox``: the app and the sandbox on pytest-django's ``live_server``, with the app's
  settings pointed at the sandbox (APP_BASE_URL, PIPEDRIVE_OAUTH_URL, the api_domain allow-list).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client

os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")

from sandbox import api_limits, webhook_sender  # noqa: E402
from sandbox.models import SandboxCompany, SandboxUser  # noqa: E402
from sandbox.seeding import sandbox_seed  # noqa: E402
from tests.app_in_process import IN_PROCESS_ORIGIN, DjangoClientAdapter, in_process_session  # noqa: E402

SANDBOX_DB = ["default", "sandbox"]
CLIENT_ID = "sandbox-test-client"
CLIENT_SECRET = "sandbox-test-secret-0123456789-abcdefghij"


@dataclass
class World:
    acme: SandboxCompany
    globex: SandboxCompany
    acme_admin: SandboxUser
    acme_regular: SandboxUser
    globex_admin: SandboxUser
    globex_regular: SandboxUser


@pytest.fixture(autouse=True)
def _sandbox_defaults(settings) -> Iterator[None]:
    """Known app credentials, in-process base URL, fresh limiter; no retry timer outlives a test."""
    settings.PIPEDRIVE_CLIENT_ID = CLIENT_ID
    settings.PIPEDRIVE_CLIENT_SECRET = CLIENT_SECRET
    settings.PIPEDRIVE_JWT_SECRET = CLIENT_SECRET
    settings.APP_BASE_URL = "http://testserver"
    settings.SANDBOX_WEBHOOK_DELAY_SCALE = 0.0
    api_limits.burst_limiter.reset()
    yield
    webhook_sender.pending_retries_cancel()
    api_limits.burst_limiter.reset()


@pytest.fixture(autouse=True)
def _json_panels_in_process(monkeypatch) -> DjangoClientAdapter:
    """The sandbox's pages call the app's JSON panels: served in-process for http://testserver."""
    from sandbox import json_panel_host

    adapter = DjangoClientAdapter()
    real = json_panel_host.http_session
    monkeypatch.setattr(
        json_panel_host,
        "http_session",
        lambda: in_process_session(adapter) if settings_app_base_url() == IN_PROCESS_ORIGIN else real(),
    )
    return adapter


def settings_app_base_url() -> str:
    from django.conf import settings

    return str(settings.APP_BASE_URL)


@pytest.fixture
def sandbox_world() -> World:
    sandbox_seed()
    acme = SandboxCompany.objects.get(domain="acme")
    globex = SandboxCompany.objects.get(domain="globex")
    return World(
        acme=acme,
        globex=globex,
        acme_admin=acme.users.get(is_admin=True),
        acme_regular=acme.users.get(is_admin=False),
        globex_admin=globex.users.get(is_admin=True),
        globex_regular=globex.users.get(is_admin=False),
    )


def basic(client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()


def authorize_code(
    client: Client, user: SandboxUser, *, state: str | None = "st4te", redirect_uri: str | None = None
) -> str:
    """Click "Allow" on the consent page as ``user``; return the code from the redirect."""
    params = {"client_id": CLIENT_ID, "redirect_uri": redirect_uri or "http://testserver/oauth/callback"}
    if state:
        params["state"] = state
    page = client.get("/sandbox/oauth/authorize", params)
    assert page.status_code == 200, page.content[:300]
    response = client.post(
        "/sandbox/oauth/authorize?" + "&".join(f"{k}={v}" for k, v in params.items()),
        {"user_id": user.pk, "decision": "allow"},
    )
    assert response.status_code == 302, response.content[:300]
    query = parse_qs(urlsplit(response["Location"]).query)
    if state:
        assert query["state"] == [state]
    return query["code"][0]


def token_request(client: Client, form: dict[str, str], *, authorization: str | None = None) -> Any:
    return client.post(
        "/sandbox/oauth/token",
        data="&".join(f"{k}={v}" for k, v in form.items()),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=authorization if authorization is not None else basic(),
    )


@pytest.fixture
def grant(client: Client) -> Callable[[SandboxUser], dict[str, Any]]:
    def issue(user: SandboxUser) -> dict[str, Any]:
        code = authorize_code(client, user)
        response = token_request(
            client,
            {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://testserver/oauth/callback"},
        )
        assert response.status_code == 200, response.content
        return response.json()

    return issue


@pytest.fixture
def api(client: Client) -> Callable[..., Any]:
    def call(method: str, domain: str, path: str, token: str | None, *, body: Any = None, query: Any = None) -> Any:
        url = f"/sandbox/{domain}{path}"
        extra: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        if method == "GET":
            return client.get(url, query or {}, **extra)
        if method == "DELETE":
            return client.delete(url, **extra)
        payload = json.dumps(body if body is not None else {})
        return client.generic(method, url, payload, content_type="application/json", **extra)

    return call


# --- a loopback webhook receiver -----------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class Receiver:
    origin: str
    url: str
    statuses: list[int] = field(default_factory=list)  # answered in order; then default_status
    default_status: int = 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, *, timeout: float = 10.0) -> list[Received]:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        with self.lock:
            return list(self.received)

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else self.default_status


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    import time

    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_DELETE(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            rec = state["receiver"]
            with rec.lock:
                rec.received.append(
                    Received(
                        self.command,
                        self.path,
                        dict(self.headers.items()),
                        json.loads(raw or b"null"),
                        time.monotonic(),
                    )
                )
            status = rec.next_status()
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec = Receiver(
        origin=f"http://127.0.0.1:{server.server_address[1]}",
        url=f"http://127.0.0.1:{server.server_address[1]}/hooks/pipedrive",
    )
    state["receiver"] = rec
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


# --- the app and the sandbox on a live server ------------------------------------------------------------


@dataclass
class LiveSandbox:
    url: str
    oauth_url: str

    def api_domain(self, domain: str) -> str:
        return f"{self.oauth_url}/{domain}"


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    """A browser for live-server tests. Closed afterwards: a kept-alive socket would hold a server
    thread (and its shared in-memory database connection) past the end of the session."""
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


@pytest.fixture
def live_sandbox(live_server, settings) -> LiveSandbox:
    url = live_server.url.rstrip("/")
    settings.APP_BASE_URL = url
    settings.PIPEDRIVE_REDIRECT_URI = f"{url}/oauth/callback"
    settings.PIPEDRIVE_OAUTH_URL = f"{url}/sandbox"
    settings.PIPEDRIVE_ALLOWED_API_DOMAINS = [f"{url}/sandbox/*"]
    settings.PIPEDRIVE_HTTP_TIMEOUT = 10.0
    settings.CSRF_TRUSTED_ORIGINS = [url]
    return LiveSandbox(url=url, oauth_url=f"{url}/sandbox")
