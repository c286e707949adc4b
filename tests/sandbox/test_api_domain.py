"""The api_domain a token response names, as close to Pipedrive's documented form as loopback allows.

Pipedrive answers ``"api_domain": "https://{company}.pipedrive.com"``: one host per company, one DNS
label naming it, no path, the REST API at ``/api/v1/...`` and ``/api/v2/...`` below it. On loopback
there is one host (``*.localhost`` does not resolve for Python here), so each company gets one path
segment, its domain, under the sandbox: ``{APP_BASE_URL}/sandbox/{company}``. Below it, the paths are
exactly Pipedrive's.
"""

from __future__ import annotations

import re

import pytest

from pipedrive_app.pipedrive.domains import api_domain_allowed

from .conftest import SANDBOX_DB

pytestmark = pytest.mark.django_db(databases=SANDBOX_DB)

DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def test_api_domain_is_one_label_per_company_under_the_sandbox(grant, api, sandbox_world, settings) -> None:
    tokens = grant(sandbox_world.acme_admin)
    me = api("GET", "acme", "/api/v1/users/me", tokens["access_token"]).json()["data"]
    company = me["company_domain"]
    assert DNS_LABEL.match(company), "the company's domain is a DNS label, as in {company}.pipedrive.com"
    assert tokens["api_domain"] == f"{settings.APP_BASE_URL}/sandbox/{company}"
    # Pipedrive's documented form, with the loopback origin standing for https:// and the segment for the host:
    documented = tokens["api_domain"].replace(f"{settings.APP_BASE_URL}/sandbox/", "https://") + ".pipedrive.com"
    assert documented == f"https://{company}.pipedrive.com"


def test_make_runs_allow_list_admits_each_company_and_nothing_deeper(settings) -> None:
    """The pattern make run gives the app (``{APP_BASE_URL}/sandbox/*``): ``*`` is one segment, as
    ``https://*.pipedrive.com``'s ``*`` is one DNS label."""
    base = "http://127.0.0.1:8000"
    pattern = [f"{base}/sandbox/*"]
    assert api_domain_allowed(f"{base}/sandbox/acme", pattern)
    assert not api_domain_allowed(f"{base}/sandbox/acme/api", pattern)
    assert not api_domain_allowed("http://127.0.0.2:8000/sandbox/acme", pattern)
    assert api_domain_allowed("https://acme.pipedrive.com", ["https://*.pipedrive.com"])
    assert not api_domain_allowed("https://acme.evil.pipedrive.com", ["https://*.pipedrive.com"])
