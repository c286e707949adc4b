"""Helpers for webhook tests: fixture payloads, a company with receiver credentials, posting."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from pipedrive_app.installations.models import Company, CompanySettings
from pipedrive_app.webhooks.models import CompanyWebhookState
from pipedrive_app.webhooks.services import webhook_state_get_or_create
from tests.installations.conftest import install_user  # noqa: F401  (re-exported fixture)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"


def load_event(name: str, **meta: Any) -> dict[str, Any]:
    """A fixture payload (``deal.change``), with ``meta`` fields overridden."""
    payload = json.loads((FIXTURES / f"{name}.json").read_text())
    payload = copy.deepcopy(payload)
    payload["meta"].update(meta)
    return payload


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def receiver_path(state: CompanyWebhookState) -> str:
    return f"/webhooks/pipedrive/{state.url_key}/"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """The history handler caches record names per Pipedrive company id, which these tests share."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def webhook_company(db) -> tuple[Company, CompanyWebhookState]:
    """Company 1001 with receiver credentials, no installation (enough for the receiver)."""
    company = Company.objects.create(pipedrive_company_id=1001, name="Company 1001", api_domain="http://127.0.0.1:9")
    CompanySettings.objects.create(company=company, tracked_entities=["deal", "person"])
    return company, webhook_state_get_or_create(company=company)


@pytest.fixture
def post_event(client: Client, django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """POST a payload to a company's receiver as Pipedrive would; processing runs (eagerly) on commit."""

    def post(
        state: CompanyWebhookState,
        payload: Any = None,
        *,
        raw: bytes | None = None,
        auth: str | None = None,
        path: str | None = None,
        **headers: Any,
    ):
        body = raw if raw is not None else json.dumps(payload).encode()
        authorization = auth if auth is not None else basic(state.http_auth_user, state.http_auth_password)
        with django_capture_on_commit_callbacks(execute=True):
            return client.generic(
                "POST",
                path or receiver_path(state),
                body,
                content_type="application/json",
                HTTP_AUTHORIZATION=authorization,
                **headers,
            )

    return post


@pytest.fixture
def docs_companies(pipedrive, install_user):  # noqa: F811
    """The two companies the migration guide's examples name (8087566, and 12345 for product,
    pipeline and stage), each installed by the user its examples name, tracking every trackable
    entity, with the records the examples refer to at the double. {pipedrive company id: (company,
    webhook state)}."""
    from tests.webhooks.docs_examples import DOCS_COMPANIES

    found = {}
    for company_id, (user_id, user_name) in DOCS_COMPANIES.items():
        # users:read, so that user references can be named (GET /users/{id}).
        scopes = "base,deals:full,contacts:full,admin,users:read"
        company = install_user(company_id, user_id, name=user_name, scopes=scopes).company
        CompanySettings.objects.update_or_create(
            company=company, defaults={"tracked_entities": list(CompanySettings.TRACKABLE_ENTITIES)}
        )
        found[company_id] = (company, webhook_state_get_or_create(company=company))
    pipedrive.add_organization(8087566, id=2, name="Lead Org")
    pipedrive.add_person(8087566, id=11, name="Lead Person")
    return found


@pytest.fixture
def docs_company(docs_companies):
    """The company of most of the migration guide's examples (8087566)."""
    return docs_companies[8087566]
