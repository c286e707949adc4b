"""The fuzz suite's figure: how many inputs it tried per endpoint, in pytest's terminal summary."""

from __future__ import annotations

from collections import Counter

import pytest

TRIED: Counter[str] = Counter()  # endpoint -> inputs tried (tests/fuzz/test_bad_input.py counts)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TRIED:
        tried = ", ".join(f"{name} {n}" for name, n in sorted(TRIED.items()))
        terminalreporter.write_line(f"fuzz inputs tried per endpoint: {tried}")
