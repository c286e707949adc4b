"""The project is self-contained: Pipedrive's OpenAPI files are vendored with their provenance, and
no file of the project reaches outside the repository for them (or for anything else)."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENDORED = REPO / "vendor" / "pipedrive-openapi"


def _recorded_digests() -> dict[str, str]:
    provenance = (VENDORED / "PROVENANCE.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(v[12]\.yaml)` \|.*\| `([0-9a-f]{64})` \|$", provenance, flags=re.MULTILINE)
    return dict(rows)


def test_provenance_records_a_digest_for_each_vendored_file() -> None:
    assert set(_recorded_digests()) == {"v1.yaml", "v2.yaml"}


@pytest.mark.parametrize("name", ["v1.yaml", "v2.yaml"])
def test_vendored_file_matches_the_digest_in_its_provenance(name: str) -> None:
    digest = hashlib.sha256((VENDORED / name).read_bytes()).hexdigest()
    assert digest == _recorded_digests()[name], f"{name} changed without PROVENANCE.md being updated"


def test_no_file_of_the_project_refers_to_a_folder_beside_the_clone() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    forbidden = "../" + "shared"  # spelled in two parts so this file does not match itself
    found = subprocess.run(
        ["git", "grep", "-nI", "-e", forbidden, "-e", 'parent / "' + "shared" + '"', "--", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 1, f"files refer outside the clone:\n{found.stdout}"
