"""Pytest fixtures for the doubles. ``tests/conftest.py`` re-exports them (``import *``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.doubles.pipedrive_double import PipedriveDouble

__all__ = ["pipedrive_double"]


@pytest.fixture
def pipedrive_double() -> Iterator[PipedriveDouble]:
    """A started Pipedrive double; the test fails if anything broke the OpenAPI contract."""
    double = PipedriveDouble().start()
    try:
        yield double
        violations = double.take_contract_violations()
        assert violations == [], "OpenAPI contract violations:\n" + "\n".join(violations)
    finally:
        double.stop()
