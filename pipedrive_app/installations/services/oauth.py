"""The OAuth client for Pipedrive's token endpoint, and the install's ``state``."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from pipedrive_app.pipedrive.oauth import PipedriveOAuth

from ..models import OAuthState
from .errors import InvalidState


def oauth_client() -> PipedriveOAuth:
    return PipedriveOAuth(
        oauth_url=settings.PIPEDRIVE_OAUTH_URL,
        client_id=settings.PIPEDRIVE_CLIENT_ID,
        client_secret=settings.PIPEDRIVE_CLIENT_SECRET,
        redirect_uri=settings.PIPEDRIVE_REDIRECT_URI,
        allowed_api_domains=settings.PIPEDRIVE_ALLOWED_API_DOMAINS,
        timeout=settings.PIPEDRIVE_HTTP_TIMEOUT,
    )


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# The state is signed and carries its own issue time, so GET /oauth/install writes nothing: anyone
# may ask for states without filling the database. A row is written only when a state is used at
# the callback (after its signature, age and browser binding checked out), to refuse a replay.
_STATE_SALT = "installations.oauth-state"


def _state_signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_STATE_SALT)


def oauth_state_create(*, browser_key: str) -> str:
    """Issue a random, signed, time-limited, single-use state bound to ``browser_key`` (a secret
    kept in a cookie). Nothing is stored."""
    return _state_signer().sign(f"{secrets.token_urlsafe(16)}.{_digest(browser_key)[:32]}")


def oauth_state_consume(*, state: str, browser_key: str | None) -> None:
    """Accept a state this app issued to this browser, once, within its lifetime; else raise."""
    try:
        value = _state_signer().unsign(state, max_age=settings.PIPEDRIVE_OAUTH_STATE_TTL)
    except signing.SignatureExpired:
        raise InvalidState("state expired") from None
    except signing.BadSignature:
        raise InvalidState("unknown state") from None
    _, _, bound = value.partition(".")
    if not browser_key or not secrets.compare_digest(bound, _digest(browser_key)[:32]):
        raise InvalidState("state was issued to another browser")
    # Single use: the unique hash makes the second of two callbacks with one state fail.
    try:
        with transaction.atomic():
            OAuthState.objects.create(
                state_hash=_digest(state), browser_hash=_digest(browser_key), used_at=timezone.now()
            )
    except IntegrityError:
        raise InvalidState("state already used") from None


def oauth_states_purge_expired() -> int:
    cutoff = timezone.now() - timedelta(seconds=settings.PIPEDRIVE_OAUTH_STATE_TTL) - timedelta(days=1)
    deleted, _ = OAuthState.objects.filter(created_at__lt=cutoff).delete()
    return deleted
