"""The one loader of Pipedrive's OpenAPI files, and the facts read from them.

The files are vendored with their provenance in ``vendor/pipedrive-openapi/`` (``make update-openapi``
refreshes them); ``PIPEDRIVE_OPENAPI_DIR`` points elsewhere. Each file is parsed once per process. The
sandbox reads scopes and token costs here; the tests' contract checker (``tests/doubles/openapi_contract``)
builds its validators from the same parsed documents.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SPEC_NAMES = ("v1", "v2")
_REPO_ROOT = Path(__file__).resolve().parents[2]
_lock = threading.Lock()


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.1 as JSON Schema reads it: ``2019-01-01`` stays a string (no implicit timestamps)."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def spec_dir() -> Path:
    """Where v1.yaml and v2.yaml live: ``$PIPEDRIVE_OPENAPI_DIR``, else the vendored copy."""
    configured = os.environ.get("PIPEDRIVE_OPENAPI_DIR")
    directory = Path(configured) if configured else _REPO_ROOT / "vendor" / "pipedrive-openapi"
    if not (directory / "v1.yaml").is_file():
        raise FileNotFoundError(
            f"Pipedrive's OpenAPI files (v1.yaml, v2.yaml) were not found in {directory}; "
            "restore them with `git checkout vendor/` or `make update-openapi`"
        )
    return directory


@cache
def _parse(directory: str, name: str) -> dict[str, Any]:
    with open(Path(directory) / f"{name}.yaml", encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_Loader)  # noqa: S506 - a safe loader
    if not isinstance(document, dict):
        raise ValueError(f"{name}.yaml is not an OpenAPI document")
    return document


def document(name: str) -> dict[str, Any]:
    """The parsed ``v1`` or ``v2`` file (shared; do not modify it)."""
    if name not in SPEC_NAMES:
        raise ValueError(f"unknown OpenAPI file {name!r}")
    with _lock:
        return _parse(str(spec_dir()), name)


def node(name: str, *parts: str, default: Any = None) -> Any:
    """The value at a path of a file (``"paths", "/deals", "get"``), or ``default`` when absent."""
    value: Any = document(name)
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


def operation(name: str, method: str, template: str) -> dict[str, Any]:
    found = node(name, "paths", template, method.lower())
    if not isinstance(found, dict):
        raise KeyError(f"{method.upper()} {template} is not an operation of {name}.yaml")
    return found


def operation_scopes(name: str, method: str, template: str) -> frozenset[str]:
    """The OAuth scopes an operation accepts (any one suffices), from its ``security`` list."""
    scopes: set[str] = set()
    for requirement in operation(name, method, template).get("security") or []:
        scopes.update(str(scope) for scope in requirement.get("oauth2") or [])
    return frozenset(scopes)


def operation_cost(name: str, method: str, template: str) -> int:
    """The operation's ``x-token-cost``: what one call takes from the company's daily budget."""
    return int(operation(name, method, template).get("x-token-cost", 1))


def request_body_enum(name: str, method: str, template: str, field: str) -> tuple[str, ...]:
    """The allowed values of a JSON request-body field (e.g. a webhook's ``event_object``)."""
    body = operation(name, method, template).get("requestBody") or {}
    schema = body.get("content", {}).get("application/json", {}).get("schema", {})
    values = schema.get("properties", {}).get(field, {}).get("enum") or []
    return tuple(str(value) for value in values)
