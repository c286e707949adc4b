"""Fixtures for the dashboard: operators with TOTP, signed-in clients, companies and inbox events."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from pipedrive_app.installations.models import Company, CompanySettings, Installation
from pipedrive_app.webhooks.models import CompanyWebhookState, InboxEvent, Subscription
from tests.installations.conftest import install_user  # noqa: F401  (re-exported fixture)

PASSWORD = "correct horse battery staple 42"
_ids = itertools.count(1)


def totp_code(secret: str, *, at: float | None = None) -> str:
    """The current TOTP code for ``secret`` (RFC 6238: HOTP over 30-second steps)."""
    return format_hotp_value(hotp_value(secret, int((at or time.time()) // 30)))


def make_user(*, email: str, staff: bool, with_totp: bool) -> tuple[Any, str | None]:
    user = get_user_model().objects.create_user(username=email, email=email, password=PASSWORD, is_staff=staff)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    secret = None
    if with_totp:
        secret = generate_totp_secret()
        TOTP.activate(user, secret)
    return user, secret


def signed_in_client(user: Any, *, passed_mfa: bool = True) -> Client:
    client = Client()
    client.force_login(user)
    if passed_mfa:
        session = client.session
        session[AUTHENTICATION_METHODS_SESSION_KEY] = [{"method": "mfa", "type": "totp", "at": time.time()}]
        session.save()
    return client


@pytest.fixture
def operator(db: None) -> Any:
    user, secret = make_user(email="ops@example.test", staff=True, with_totp=True)
    user.totp_secret = secret
    return user


@pytest.fixture
def operator_client(operator: Any) -> Client:
    return signed_in_client(operator)


@pytest.fixture
def make_company(db: None) -> Callable[..., Company]:
    def make(
        *,
        name: str | None = None,
        installations: tuple[str, ...] = (Installation.Status.ACTIVE,),
        webhooks: str | None = CompanyWebhookState.Status.AVAILABLE,
        failing_subscription: bool = False,
        events: tuple[str, ...] = (),
    ) -> Company:
        n = next(_ids)
        company = Company.objects.create(
            pipedrive_company_id=70_000 + n,
            name=name if name is not None else f"Company {n}",
            domain=f"company{n}",
            api_domain=f"https://company{n}.pipedrive.invalid",
        )
        CompanySettings.objects.create(company=company, tracked_entities=["deal", "person"])
        for i, status in enumerate(installations):
            Installation.objects.create(
                company=company,
                pipedrive_user_id=500 + i,
                name=f"User {i}",
                is_admin=i == 0,
                scopes=["base", "admin"],
                status=status,
                access_token="seeded-access-token-never-shown" if status == Installation.Status.ACTIVE else None,
                refresh_token="seeded-refresh-token-never-shown" if status == Installation.Status.ACTIVE else None,
                access_token_expires_at=timezone.now() + timedelta(minutes=30),
            )
        if webhooks:
            CompanyWebhookState.objects.create(
                company=company, url_key=f"key-{n}", http_auth_user="u", http_auth_password="p", status=webhooks
            )
            Subscription.objects.create(
                company=company,
                event_object="deal",
                version="2.0",
                name="deal events",
                subscription_url="https://app.invalid/webhooks/pipedrive/x/",
                pipedrive_webhook_id=n,
                last_http_status=410 if failing_subscription else 200,
                remove_reason="Endpoint gone" if failing_subscription else "",
                is_active=not failing_subscription,
            )
        for status in events:
            make_event(company=company, status=status)
        return company

    return make


def make_event(
    *,
    company: Company,
    status: str = InboxEvent.Status.PROCESSED,
    entity: str = "person",
    action: str = "change",
    body: dict[str, Any] | None = None,
    received_at: Any = None,
) -> InboxEvent:
    n = next(_ids)
    body = body or {
        "meta": {
            "id": f"ev-{n}",
            "entity": entity,
            "action": action,
            "entity_id": "42",
            "version": "2.0",
            "company_id": str(company.pipedrive_company_id),
            "timestamp": timezone.now().isoformat(),
        },
        "data": {
            "id": 42,
            "name": "Jane Person",
            "emails": [{"value": "jane@example.test", "primary": True}],
            "phones": [{"value": "+372 555 0101"}],
            "org_id": 7,
        },
        "previous": {"name": "Jane Old"},
    }
    return InboxEvent.objects.create(
        company=company,
        dedup_key=f"ev-{n}",
        version="2.0",
        entity=entity,
        action=action,
        entity_id=42,
        body=json.dumps(body),
        status=status,
        attempts=6 if status == InboxEvent.Status.DEAD else 1,
        last_error="ValueError: handler exploded" if status == InboxEvent.Status.DEAD else "",
        received_at=received_at or timezone.now(),
    )
