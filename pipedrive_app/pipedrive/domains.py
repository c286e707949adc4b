"""The api_domain allow-list: a token is only ever sent to a host the operator expects.

Patterns are origins, optionally with a path: ``https://*.pipedrive.com``,
``http://127.0.0.1:8000`` or ``http://127.0.0.1:8000/sandbox/*`` (the local sandbox gives each
company a path under one origin). ``*`` in the host stands for exactly one DNS label (``acme`` but
not ``acme.evil``), ``*`` as the port admits any port, and ``*`` as a path segment one segment.
An api_domain with a path only matches a pattern with a path; Pipedrive's own never has one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import urlsplit

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_SEGMENT = r"[A-Za-z0-9._~-]+"


def normalize_api_domain(api_domain: str) -> str | None:
    """Return ``scheme://host[:port][/path]`` without a trailing slash, or None if malformed."""
    try:
        parts = urlsplit(api_domain.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return None
    if parts.username or parts.password or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    path = parts.path.rstrip("/")
    if path and not re.fullmatch(rf"(?:/{_SEGMENT})+", path):
        return None
    if any(segment in {".", ".."} for segment in path.split("/")):
        return None
    host = parts.hostname.lower()
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "") + path


@lru_cache(maxsize=64)
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    match = re.fullmatch(r"(https?)://([^/:]+)(?::(\d+|\*))?(/[^?#]*)?", pattern.strip())
    if not match:
        raise ValueError(f"not an origin pattern: {pattern!r}")
    scheme, host, port, path = match.groups()
    host_re = r"\.".join(_LABEL if label == "*" else re.escape(label) for label in host.lower().split("."))
    if port == "*":
        port_re = r"(?::\d+)?"
    elif port:
        port_re = f":{port}"
    else:
        port_re = ""
    path_re = "".join(
        "/" + (_SEGMENT if segment == "*" else re.escape(segment))
        for segment in (path or "").strip("/").split("/")
        if segment
    )
    return re.compile(f"{scheme}://{host_re}{port_re}{path_re}")


def api_domain_allowed(api_domain: str, patterns: Iterable[str]) -> bool:
    origin = normalize_api_domain(api_domain)
    if origin is None:
        return False
    return any(_pattern_regex(pattern).fullmatch(origin) for pattern in patterns)
