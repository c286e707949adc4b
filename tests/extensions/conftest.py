"""Fixtures for the extensions' tests: Pipedrive-style panel JWTs and installed viewers at the double."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from django.core.cache import cache
from django.test import Client

from tests.installations.conftest import install_user  # noqa: F401  (the fixture, for these tests)

JWT_SECRET = "extension-jwt-secret-for-tests-" + "0123456789abcdef" * 3
COMPANY = 1001
OTHER_COMPANY = 2002
ADMIN = 501
REGULAR = 502
OUTSIDER = 503  # a user of COMPANY who never installed


@pytest.fixture(autouse=True)
def _extension_settings(settings) -> Iterator[None]:
    settings.PIPEDRIVE_JWT_SECRET = JWT_SECRET
    settings.EXTENSIONS_FRAME_ANCESTORS = ["https://*.pipedrive.com"]
    cache.clear()
    yield
    cache.clear()


def make_token(
    *,
    company_id: int = COMPANY,
    user_id: int = ADMIN,
    secret: str = JWT_SECRET,
    algorithm: str = "HS256",
    expires_in: int | None = 300,
    claims: dict[str, Any] | None = None,
) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {"userId": user_id, "companyId": company_id, "iat": now}
    if expires_in is not None:
        payload["exp"] = now + expires_in
    payload.update(claims or {})
    return jwt.encode(payload, secret, algorithm=algorithm)


def panel_query(
    *,
    resource: str | None = "deal",
    record_id: int | str | None = 1,
    company_id: int = COMPANY,
    user_id: int = ADMIN,
    token: str | None = None,
    theme: str = "light",
    **extra: Any,
) -> str:
    """Exactly the parameters Pipedrive appends to an extension URL (docs/pipedrive-platform.md §3)."""
    params: dict[str, Any] = {
        "id": "ext-test-1",
        "userId": user_id,
        "companyId": company_id,
        "token": token if token is not None else make_token(company_id=company_id, user_id=user_id),
        "resource": resource,
        "view": "details",
        "theme": theme,
    }
    if record_id is not None:
        params["selectedIds"] = record_id
    params.update(extra)
    return urlencode({k: v for k, v in params.items() if v is not None})


@pytest.fixture
def seeded_company(pipedrive, install_user) -> Callable[..., dict[str, Any]]:  # noqa: F811
    """Install users of a company at the double and seed a pipeline, stages, an organization, a person, deals."""

    def seed(company_id: int = COMPANY, *, users: tuple[tuple[int, bool], ...] = ((ADMIN, True),)) -> dict[str, Any]:
        installations = {}
        for user_id, is_admin in users:
            installations[user_id] = install_user(
                company_id, user_id, name=f"{'Ann Admin' if is_admin else 'Rob Regular'} {user_id}", is_admin=is_admin
            )
        pipedrive.add_user(company_id, OUTSIDER, name="Olga Outsider")
        pipedrive.add_pipeline(company_id, id=1, name="Sales pipeline")
        pipedrive.add_stage(company_id, id=1, name="Qualified", pipeline_id=1)
        pipedrive.add_stage(company_id, id=2, name="Proposal made", pipeline_id=1)
        org = pipedrive.add_organization(company_id, name="Northwind", address="Tartu mnt 1, Tallinn")
        person = pipedrive.add_person(
            company_id,
            name="Mia Tamm",
            emails=["mia@northwind.example", "mia.private@example.org"],
            phones=["+372 5555 1234"],
            org_id=org["id"],
            owner_id=users[0][0],
        )
        deal = pipedrive.add_deal(
            company_id,
            title="Northwind renewal",
            value=12500.5,
            currency="EUR",
            pipeline_id=1,
            stage_id=2,
            status="open",
            person_id=person["id"],
            org_id=org["id"],
            owner_id=users[0][0],
            expected_close_date="2026-03-31",
            update_time="2026-01-01T10:00:00Z",
        )
        second = pipedrive.add_deal(
            company_id, title="Northwind pilot", value=900, currency="USD", stage_id=1, person_id=person["id"]
        )
        won = pipedrive.add_deal(company_id, title="Old win", status="won", person_id=person["id"])
        return {
            "installations": installations,
            "org": org,
            "person": person,
            "deal": deal,
            "second_deal": second,
            "won_deal": won,
        }

    return seed


@pytest.fixture
def app_client() -> Client:
    """A client with CSRF checks on, as a browser inside Pipedrive's iframe would be (and no cookies)."""
    return Client(enforce_csrf_checks=True)


def count_rounds(monkeypatch, pipedrive) -> list[list[str]]:
    """Each round of concurrent panel calls that reached Pipedrive, as the sorted API requests it made."""
    from extensions import selectors

    rounds: list[list[str]] = []
    original = selectors._first_round

    def counting(calls):
        before = len(pipedrive.requests)
        outcome = original(calls)
        made = sorted(f"{r.method} {r.path}" for r in pipedrive.requests[before:] if r.path.startswith("/api/"))
        if made:
            rounds.append(made)
        return outcome

    monkeypatch.setattr(selectors, "_first_round", counting)
    return rounds
