"""The api_domain allow-list: a token is only ever sent to a host the operator expects.

Patterns are origins: ``https://*.pipedrive.com`` or ``http://127.0.0.1:8000``. ``*`` stands for
exactly one DNS label (``acme`` but not ``acme.evil``), and a port of ``*`` admits any port.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"


def normalize_api_domain(api_domain: str) -> str | None:
    """Return ``scheme://host[:port]`` for a bare origin, or None if it is anything more."""
    try:
        parts = urlsplit(api_domain.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return None
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in {"", "/"}:
        return None
    host = parts.hostname.lower()
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    match = re.fullmatch(r"(https?)://([^/:]+)(?::(\d+|\*))?/?", pattern.strip().lower())
    if not match:
        raise ValueError(f"not an origin pattern: {pattern!r}")
    scheme, host, port = match.groups()
    host_re = r"\.".join(_LABEL if label == "*" else re.escape(label) for label in host.split("."))
    if port == "*":
        port_re = r"(?::\d+)?"
    elif port:
        port_re = f":{port}"
    else:
        port_re = ""
    return re.compile(f"{scheme}://{host_re}{port_re}")


def api_domain_allowed(api_domain: str, patterns: Iterable[str]) -> bool:
    origin = normalize_api_domain(api_domain)
    if origin is None:
        return False
    return any(_pattern_regex(pattern).fullmatch(origin) for pattern in patterns)
