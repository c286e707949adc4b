"""Pipedrive's documented examples (tests/fixtures/pipedrive_docs): loading them, and the company they name."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "pipedrive_docs"
WEBHOOKS = DOCS / "webhooks"
# The companies the migration guide's v2 examples name, with the user each one's examples name.
DOCS_COMPANY = 8087566
DOCS_USER = 12415231
DOCS_COMPANIES = {DOCS_COMPANY: (DOCS_USER, "Sample person"), 12345: (123456, "Example user")}


@dataclass(frozen=True)
class DocExample:
    path: Path  # relative to DOCS
    source_url: str
    section: str
    body: Any

    @property
    def name(self) -> str:
        return str(self.path.with_suffix(""))

    def payload(self) -> Any:
        return copy.deepcopy(self.body)


def doc_example(relative: str) -> DocExample:
    path = DOCS / relative
    raw = json.loads(path.read_text())
    return DocExample(
        path=path.relative_to(DOCS), source_url=raw["source_url"], section=raw["section"], body=raw["body"]
    )


def doc_payload(relative: str, **meta: Any) -> dict[str, Any]:
    """A documented delivery body, with ``meta`` fields overridden."""
    payload = doc_example(relative).payload()
    payload["meta"].update(meta)
    return payload


def webhook_examples() -> list[DocExample]:
    """Every documented webhook delivery body: v2 examples, the v1 example and the two v2 templates."""
    paths = [path for folder in ("v2", "v1", "format") for path in sorted(WEBHOOKS.glob(f"{folder}/*.json"))]
    return [doc_example(str(path.relative_to(DOCS))) for path in paths]


def custom_field_examples() -> list[DocExample]:
    """Every documented custom-field shape (fragments of ``data.custom_fields``)."""
    return [doc_example(str(p.relative_to(DOCS))) for p in sorted(WEBHOOKS.glob("v2_custom_fields/*.json"))]
