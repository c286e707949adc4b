from __future__ import annotations

import pytest

from pipedrive_app.pipedrive.domains import api_domain_allowed, normalize_api_domain

PIPEDRIVE = ["https://*.pipedrive.com"]


@pytest.mark.parametrize(
    "domain", ["https://acme.pipedrive.com", "https://ACME.pipedrive.com/", "https://a-1.pipedrive.com"]
)
def test_allowed(domain: str) -> None:
    assert api_domain_allowed(domain, PIPEDRIVE)


@pytest.mark.parametrize(
    "domain",
    [
        "http://acme.pipedrive.com",  # downgraded scheme
        "https://pipedrive.com",
        "https://acme.pipedrive.com.evil.com",
        "https://evil.com/acme.pipedrive.com",
        "https://a.b.pipedrive.com",  # * is one label
        "https://user:pw@acme.pipedrive.com",
        "https://acme.pipedrive.com/api",
        "https://acme.pipedrive.com?x=1",
        "https://acme.pipedrive.com:8443",
        "javascript:alert(1)",
        "",
    ],
)
def test_refused(domain: str) -> None:
    assert not api_domain_allowed(domain, PIPEDRIVE)


def test_loopback_patterns_with_ports() -> None:
    assert api_domain_allowed("http://127.0.0.1:8000", ["http://127.0.0.1:8000"])
    assert not api_domain_allowed("http://127.0.0.1:8001", ["http://127.0.0.1:8000"])
    assert api_domain_allowed("http://127.0.0.1:5555", ["http://127.0.0.1:*"])


def test_normalize() -> None:
    assert normalize_api_domain("https://Acme.Pipedrive.com/") == "https://acme.pipedrive.com"
    assert normalize_api_domain("ftp://x") is None


def test_path_patterns_for_the_sandbox() -> None:
    patterns = ["http://127.0.0.1:8000/sandbox/*"]
    assert api_domain_allowed("http://127.0.0.1:8000/sandbox/acme", patterns)
    assert api_domain_allowed("http://127.0.0.1:8000/sandbox/acme/", patterns)
    assert not api_domain_allowed("http://127.0.0.1:8000/sandbox", patterns)
    assert not api_domain_allowed("http://127.0.0.1:8000/sandbox/acme/extra", patterns)
    assert not api_domain_allowed("http://127.0.0.1:8000/sandbox/..", patterns)
    assert not api_domain_allowed("http://127.0.0.1:8000/other/acme", patterns)
    # A path never matches an origin-only pattern.
    assert not api_domain_allowed("https://acme.pipedrive.com/api", PIPEDRIVE)
