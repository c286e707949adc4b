"""Headless Chromium for the browser tests, and the loopback sites they load.

- The browser is Debian's Chromium (/usr/bin/chromium, `make browsers`), driven by the Python
  ``playwright`` package's own driver; never `playwright install`. When Chromium (or the package)
  is missing the tests skip, unless REQUIRE_SERVICES is on: then they fail (CI's second pass).
- Nothing but loopback: Chromium runs with its background services off and a host resolver that
  knows no name but loopback, and every browser context aborts any request to another host.
- ``page`` saves a screenshot when its test fails; ``save_screenshot(page, name)`` saves named ones.
  Both go to test-artifacts/screenshots/ (gitignored).
- Playwright's sync API keeps an asyncio loop running on the main thread while it is started,
  which Django would take for async context (SynchronousOnlyOperation). So browser tests run
  last in the session and DJANGO_ALLOW_ASYNC_UNSAFE is set only while the browser is up.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-default-browser-check",
    "--disable-dev-shm-usage",
    # Any name other than loopback fails to resolve, whatever a page asks for.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
# Static files as the app serves them: the project's static/ and the sandbox app's static/.
STATIC_DIRS = [ROOT / "static", ROOT / "sandbox" / "static"]

# Same reading of REQUIRE_SERVICES as tests/conftest.py.
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES", "").lower() in {"1", "true", "yes", "on"}


def _service_missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES is on but {reason}")
    pytest.skip(reason)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last (stable otherwise): no ORM test runs while Playwright's loop is up."""
    items[:] = [i for i in items if i.get_closest_marker("browser") is None] + [
        i for i in items if i.get_closest_marker("browser") is not None
    ]


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


def save_screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as test-artifacts/screenshots/<name>.png and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    path = SCREENSHOTS / f"{safe}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _service_missing(f"Chromium is not installed at {CHROMIUM} (run `make browsers`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _service_missing("the playwright package is not installed (pip install -r requirements-dev.txt)")

    # Playwright gives every launch a new temporary profile (user-data dir) and deletes it at close;
    # HOME and XDG dirs point into this session's temp dir so nothing of the user's is read or kept.
    home = tmp_path_factory.mktemp("chromium-home")
    env: dict[str, str | float | bool] = {**os.environ, "HOME": str(home)}
    env.update(XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"))
    previous_flag = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    playwright = sync_playwright().start()
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, env=env)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()
        if previous_flag is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous_flag
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page in a fresh context; a screenshot is saved if the test fails; only loopback is reachable."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    blocked: list[str] = []

    def only_loopback(route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in LOOPBACK_HOSTS:
            blocked.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.blocked_requests = blocked
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            with contextlib.suppress(Exception):  # a dead page must not hide the test's own failure
                save_screenshot(page, f"FAILED-{request.node.name}")
        context.close()


class LoopbackSite:
    """A tiny HTTP server on 127.0.0.1: registered pages, JSON endpoints and the static dirs."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, bytes]] = {}
        self.json_routes: dict[str, Callable[[], Any]] = {}
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                site.requests.append(self.path)
                if path in site.pages:
                    content_type, body = site.pages[path]
                    self._send(200, content_type, body)
                elif path in site.json_routes:
                    self._send(200, "application/json", json.dumps(site.json_routes[path]()).encode())
                elif path.startswith("/static/") and (found := site.static_file(path[len("/static/") :])):
                    content_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
                    self._send(200, content_type, found.read_bytes())
                else:
                    self._send(404, "text/plain", b"not found")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                textual = content_type.startswith("text/") or content_type.endswith("javascript")
                self.send_header("Content-Type", f"{content_type}; charset=utf-8" if textual else content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.origin = self.base_url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def static_file(relative: str) -> Path | None:
        for directory in STATIC_DIRS:
            candidate = (directory / relative).resolve()
            if candidate.is_relative_to(directory.resolve()) and candidate.is_file():
                return candidate
        return None

    def add_page(self, path: str, html: str) -> str:
        self.pages[path] = ("text/html", html.encode())
        return self.base_url + path

    def add_json(self, path: str, produce: Callable[[], Any]) -> str:
        self.json_routes[path] = produce
        return self.base_url + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def host_site() -> Iterator[LoopbackSite]:
    """Plays Pipedrive's origin: serves the host page."""
    site = LoopbackSite()
    yield site
    site.close()


@pytest.fixture
def app_site() -> Iterator[LoopbackSite]:
    """Plays the app's origin (another port, so another origin): serves the panel and the SDK."""
    site = LoopbackSite()
    yield site
    site.close()


@pytest.fixture
def screenshot(page: Any) -> Callable[[str], Path]:
    """``screenshot("name")`` saves test-artifacts/screenshots/name.png of the current page."""
    return lambda name: save_screenshot(page, name)
