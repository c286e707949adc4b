"""Hold HTTP exchanges with Pipedrive to Pipedrive's own OpenAPI files (v1.yaml, v2.yaml).

The double (and any test) describes a request or response it saw with the loopback paths the app
uses (``/api/v1/x``, ``/api/v2/x``, ``/oauth/token``); this module maps them onto the servers the
files declare and asks openapi-core whether they validate. Every problem comes back as a short,
token-free message; an empty list means the exchange honours the contract.

The files are big (2.8 MB together): each is parsed once per process and shared.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.security.exceptions import SecurityProviderError
from openapi_core.security.factories import SecurityProviderFactory
from openapi_core.security.providers import BaseProvider
from openapi_core.templating.responses.exceptions import ResponseNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

from pipedrive_app.core.logging import redact

_REPO_ROOT = Path(__file__).resolve().parents[2]
# Pipedrive's published files, vendored with their provenance (vendor/pipedrive-openapi/); the
# project's contract. PIPEDRIVE_OPENAPI_DIR points elsewhere.
_SPEC_DIR_CANDIDATES = (_REPO_ROOT / "vendor" / "pipedrive-openapi",)
API_HOST = "https://api.pipedrive.com"
OAUTH_HOST = "https://oauth.pipedrive.com"
# Paths Pipedrive serves that the files do not describe (RFC 7009 revocation, from the OAuth guide).
UNDESCRIBED_PATHS = frozenset({"/oauth/revoke"})


def spec_dir() -> Path:
    """Where v1.yaml and v2.yaml live: $PIPEDRIVE_OPENAPI_DIR, else the first known location."""
    configured = os.environ.get("PIPEDRIVE_OPENAPI_DIR")
    if configured:
        return Path(configured)
    for candidate in _SPEC_DIR_CANDIDATES:
        if (candidate / "v1.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        "Pipedrive's OpenAPI files (v1.yaml, v2.yaml) were not found in vendor/pipedrive-openapi; "
        "restore them with `git checkout vendor/` or `make update-openapi`"
    )


# --- loading --------------------------------------------------------------------------------------


class _BearerProvider(BaseProvider):
    """openapi-core leaves oauth2 unchecked (with a warning); Pipedrive's oauth2 means a Bearer header."""

    def __call__(self, parameters: RequestParameters) -> Any:
        header = parameters.header.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise SecurityProviderError("Missing Bearer authorization header.")
        return credentials


class _PipedriveSecurityProviders(SecurityProviderFactory):
    PROVIDERS = {**SecurityProviderFactory.PROVIDERS, "oauth2": _BearerProvider}


_load_lock = threading.Lock()
# openapi-core's lazily built validators are not documented as thread-safe; the double serves
# requests on many threads, so validation is serialised (it takes about a millisecond).
_validate_lock = threading.Lock()


@cache
def _load(name: str) -> OpenAPI:
    # The files are Pipedrive's published spec, so skip re-validating the spec itself (slow).
    config = Config(spec_validator_cls=None, security_provider_factory=_PipedriveSecurityProviders())
    return OpenAPI.from_path(spec_dir() / f"{name}.yaml", config=config)


def spec(name: str) -> OpenAPI:
    """The parsed ``v1`` or ``v2`` file, loaded once per process."""
    with _load_lock:
        return _load(name)


def load_specs() -> None:
    """Parse both files now (the first request would otherwise pay about a second)."""
    spec("v1")
    spec("v2")


# --- where a loopback path lives in the files -----------------------------------------------------


@dataclass(frozen=True)
class SpecLocation:
    spec_name: str  # "v1" or "v2"
    host_url: str
    path: str  # the full path on that host, e.g. "/v1/users/me" or "/api/v2/deals"
    template_prefix: str  # what the file's server adds in front of its path templates


def locate(path: str) -> SpecLocation | None:
    """Map ``/api/v1/x`` to v1.yaml's ``https://api.pipedrive.com/v1/x`` and so on; None if unknown."""
    if path.startswith("/api/v1/"):
        return SpecLocation("v1", API_HOST, path.removeprefix("/api"), "/v1")
    if path.startswith("/api/v2/"):
        return SpecLocation("v2", API_HOST, path, "/api/v2")
    if path.startswith("/oauth/") and path not in UNDESCRIBED_PATHS:
        return SpecLocation("v1", OAUTH_HOST, path, "")
    return None


def operation_scopes(spec_name: str, method: str, template: str) -> frozenset[str]:
    """The OAuth scopes an operation accepts (any one suffices), from its ``security`` list."""
    return _operation_scopes(spec_name, method.lower(), template)


@cache
def _operation_scopes(spec_name: str, method: str, template: str) -> frozenset[str]:
    security = schema_value(spec_name, "paths", template, method, "security", default=[])
    scopes: set[str] = set()
    for requirement in security:
        scopes.update(str(scope) for scope in requirement.get("oauth2", []))
    return frozenset(scopes)


def schema_value(spec_name: str, *parts: str, default: Any = None) -> Any:
    """The plain value at a node of a file (e.g. an enum), or ``default`` when the node is absent."""
    node = spec(spec_name).spec
    with _validate_lock:
        for part in parts:
            if part not in node:
                return default
            node = node / part
        return node.read_value()


# --- exchanges ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExchangeRequest:
    """A request as the double received it (paths relative to the double's base URL)."""

    method: str
    path: str
    query: Iterable[tuple[str, str]] | Mapping[str, str] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = ""


@dataclass(frozen=True)
class ExchangeResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


class _SpecRequest:
    """openapi-core's Request protocol over an ``ExchangeRequest`` rewritten to Pipedrive's hosts."""

    def __init__(self, request: ExchangeRequest, location: SpecLocation) -> None:
        pairs = list(request.query.items()) if isinstance(request.query, Mapping) else list(request.query)
        self.host_url = location.host_url
        self.path = location.path
        self.method = request.method.lower()
        self.body: bytes | None = request.body
        self.content_type = (request.content_type or "application/octet-stream").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(pairs), header=Headers(dict(request.headers)), cookie=ImmutableMultiDict()
        )


class _SpecResponse:
    def __init__(self, response: ExchangeResponse) -> None:
        self.status_code = response.status
        self.data: bytes | None = response.body
        self.content_type = response.content_type.split(";", 1)[0].strip().lower()
        self.headers = Headers(dict(response.headers))


def request_violations(request: ExchangeRequest, *, secrets: Iterable[str] = ()) -> list[str]:
    """Why ``request`` does not validate against its operation (empty when it does)."""
    if request.path in UNDESCRIBED_PATHS:
        return []
    location = locate(request.path)
    label = f"{request.method.upper()} {request.path}"
    if location is None:
        return [f"{label}: not a path of Pipedrive's API"]
    app = spec(location.spec_name)
    with _validate_lock:
        errors = list(app.iter_request_errors(_SpecRequest(request, location)))
    return [_describe(label, "request", error, secrets) for error in errors]


def response_violations(
    request: ExchangeRequest, response: ExchangeResponse, *, secrets: Iterable[str] = ()
) -> list[str]:
    """Why ``response`` does not validate against the operation's documented response.

    A non-2xx status the file does not document is not judged (the files document few errors);
    an undocumented 2xx status is a violation.
    """
    if request.path in UNDESCRIBED_PATHS:
        return []
    location = locate(request.path)
    label = f"{request.method.upper()} {request.path} -> {response.status}"
    if location is None:
        return [f"{label}: not a path of Pipedrive's API"]
    app = spec(location.spec_name)
    with _validate_lock:
        errors = list(app.iter_response_errors(_SpecRequest(request, location), _SpecResponse(response)))
    problems: list[str] = []
    for error in errors:
        if isinstance(error, ResponseNotFound) and not 200 <= response.status < 300:
            continue
        problems.append(_describe(label, "response", error, secrets))
    return problems


def _describe(label: str, side: str, error: Exception, secrets: Iterable[str]) -> str:
    cause = error.__cause__
    schema_errors = getattr(cause, "schema_errors", None)
    if schema_errors:
        detail = "; ".join(_schema_error_text(item) for item in schema_errors)
    else:
        detail = str(cause) if cause is not None else str(error)
    parameter = getattr(error, "name", None)
    if isinstance(parameter, str):  # a query/path/header parameter error names its parameter
        detail = f"{getattr(error, 'location', '')} parameter {parameter!r}: {detail}"
    # No colon right after the path: the log redactor would read "/oauth/token: x" as a secret.
    return _scrub(f"{label} ({side}) {type(error).__name__} - {detail}", secrets)


def _schema_error_text(error: Any) -> str:
    where = "/".join(str(part) for part in getattr(error, "absolute_path", ())) or "(root)"
    return f"{where}: {getattr(error, 'message', error)}"


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return redact(text)[:2000]
