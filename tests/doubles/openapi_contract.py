"""Hold HTTP exchanges with Pipedrive to Pipedrive's own OpenAPI files (v1.yaml, v2.yaml).

The double (and any test) describes a request or response it saw with the loopback paths the app
uses (``/api/v1/x``, ``/api/v2/x``, ``/oauth/token``); this module maps them onto the servers the
files declare and asks openapi-core whether they validate. Every problem comes back as a short,
token-free message; an empty list means the exchange honours the contract.

The files are big (2.8 MB together): each is parsed once per process and shared.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.security.exceptions import SecurityProviderError
from openapi_core.security.factories import SecurityProviderFactory
from openapi_core.security.providers import BaseProvider
from openapi_core.templating.responses.exceptions import ResponseNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

from pipedrive_app.core.logging import redact
from sandbox.facts import openapi

API_HOST = "https://api.pipedrive.com"
OAUTH_HOST = "https://oauth.pipedrive.com"
# Paths Pipedrive serves that the files do not describe (RFC 7009 revocation, from the OAuth guide).
UNDESCRIBED_PATHS = frozenset({"/oauth/revoke"})
spec_dir = openapi.spec_dir  # the one place that finds the files (sandbox/facts/openapi.py)


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
    # The documents parsed once by sandbox/facts/openapi.py. They are Pipedrive's published spec,
    # so skip re-validating the spec itself (slow).
    config = Config(spec_validator_cls=None, security_provider_factory=_PipedriveSecurityProviders())
    return OpenAPI.from_dict(openapi.document(name), config=config, base_uri=(spec_dir() / name).as_uri())


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
    """The OAuth scopes an operation accepts (any one suffices): ``facts.openapi`` reads them."""
    return openapi.operation_scopes(spec_name, method, template) if template else frozenset()


schema_value = openapi.node  # the plain value at a node of a file (e.g. an enum)


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
