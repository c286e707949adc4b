"""Import boundaries: the app never imports the sandbox, and the sandbox's facts are plain Python.

The app must talk to the sandbox only over HTTP, as it talks to Pipedrive; ``sandbox/facts/`` is shared
with the tests' double, so it may not depend on Django models or settings.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(directory: Path) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for path in sorted(directory.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.extend((str(path.relative_to(ROOT)), alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.extend([(str(path.relative_to(ROOT)), node.module)])
    return found


def test_the_app_never_imports_the_sandbox() -> None:
    offending = [
        (path, module)
        for directory in ("pipedrive_app", "extensions")
        for path, module in _imports(ROOT / directory)
        if module == "sandbox" or module.startswith("sandbox.")
    ]
    assert offending == []


def test_the_facts_are_plain_python() -> None:
    """No Django, no sandbox models: the double imports the facts without a database."""
    offending = [
        (path, module)
        for path, module in _imports(ROOT / "sandbox" / "facts")
        if module.split(".")[0] in {"django", "sandbox", "pipedrive_app", "extensions", "tests"}
    ]
    assert offending == []
