"""The sandbox's OAuth 2.0 server: oauthlib's ``WebApplicationServer`` with a validator for Pipedrive's rules.

Pipedrive specifics (docs/pipedrive-platform.md §1) and where they are enforced:

- one registered app, the app's own ``PIPEDRIVE_CLIENT_ID``/``SECRET`` and callback URL
  (``validate_client_id``, ``authenticate_client``, ``validate_redirect_uri``);
- clients authenticate with HTTP Basic only (``authenticate_client``); a wrong secret is
  ``invalid_client``, answered 401 with ``WWW-Authenticate`` as RFC 6749 §5.2 allows for Basic;
- no ``scope`` parameter: the app's scopes are fixed, minus ``admin`` for a non-admin user
  (``scopes_for``); the response's ``scope`` is comma-separated and it names the company's
  ``api_domain`` (``_pipedrive_token_fields``);
- codes live 5 minutes and work once (``validate_code`` burns them atomically);
- the refresh token is stable: a refresh returns the same value and extends its 60-day window
  (``rotate_refresh_token`` is False, ``save_token``); unused for 60 days it is dead;
- revoking a refresh token uninstalls the app for that user; revoking an access token kills only it.

Tokens are random (access tokens > 100 characters) and stored as SHA-256 digests only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from oauthlib.common import Request
from oauthlib.oauth2 import RequestValidator, WebApplicationServer

from . import conf, services
from .facts import scopes as scope_facts
from .facts.scopes import allows
from .models import AccessToken, AuthorizationCode, RefreshToken, SandboxUser
from .routers import SANDBOX_DB


def token_digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_access_token(request: Request | None = None) -> str:
    # Pipedrive's look: a short prefix, then a long random part (>= 100 characters in all).
    return "v1u:" + secrets.token_urlsafe(96)


def new_refresh_token(request: Request | None = None) -> str:
    return "v1r:" + secrets.token_urlsafe(48)


def scopes_for(user: SandboxUser) -> list[str]:
    """The app's fixed scopes; a non-admin user's install gets everything but ``admin``."""
    return scope_facts.granted(conf.app_scopes(), is_admin=user.is_admin)


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = (request.headers or {}).get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    client_id, separator, client_secret = decoded.partition(":")
    return (client_id, client_secret) if separator else None


@dataclass(frozen=True)
class RegisteredApp:
    """The one app registered with the sandbox (oauthlib wants ``request.client.client_id``)."""

    client_id: str


class PipedriveRequestValidator(RequestValidator):
    # --- clients ---------------------------------------------------------------------------------

    def client_authentication_required(self, request: Request, *args: Any, **kwargs: Any) -> bool:
        return True

    def authenticate_client(self, request: Request, *args: Any, **kwargs: Any) -> bool:
        credentials = _basic_credentials(request)
        if credentials is None:
            return False
        client_id, client_secret = credentials
        expected_id, expected_secret = conf.client_id(), conf.client_secret()
        id_ok = hmac.compare_digest(client_id.encode(), expected_id.encode())
        secret_ok = hmac.compare_digest(client_secret.encode(), expected_secret.encode())
        if not (id_ok and secret_ok):
            return False
        request.client_id = client_id
        request.client = RegisteredApp(client_id=client_id)
        return True

    def authenticate_client_id(self, client_id: str, request: Request, *args: Any, **kwargs: Any) -> bool:
        return False  # public clients do not exist here

    def validate_client_id(self, client_id: str, request: Request, *args: Any, **kwargs: Any) -> bool:
        return hmac.compare_digest(str(client_id).encode(), conf.client_id().encode())

    def validate_grant_type(
        self, client_id: str, grant_type: str, client: Any, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        return grant_type in {"authorization_code", "refresh_token"}

    def validate_response_type(
        self, client_id: str, response_type: str, client: Any, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        return response_type == "code"

    # --- redirect URI ----------------------------------------------------------------------------

    def validate_redirect_uri(
        self, client_id: str, redirect_uri: str, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        return redirect_uri == conf.callback_url()

    def get_default_redirect_uri(self, client_id: str, request: Request, *args: Any, **kwargs: Any) -> str:
        return conf.callback_url()

    def confirm_redirect_uri(
        self,
        client_id: str,
        code: str,
        redirect_uri: str,
        client: Any,
        request: Request,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        row: AuthorizationCode | None = getattr(request, "sandbox_code", None)
        return row is not None and redirect_uri == row.redirect_uri

    # --- scopes ------------------------------------------------------------------------------------

    def get_default_scopes(self, client_id: str, request: Request, *args: Any, **kwargs: Any) -> list[str]:
        return conf.app_scopes()

    def validate_scopes(
        self, client_id: str, scopes: list[str], client: Any, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        return set(scopes or []) <= set(conf.app_scopes())

    # --- authorization codes -----------------------------------------------------------------------

    def save_authorization_code(
        self, client_id: str, code: dict[str, str], request: Request, *args: Any, **kwargs: Any
    ) -> None:
        user: SandboxUser = request.sandbox_user
        now = timezone.now()
        AuthorizationCode.objects.create(
            code_hash=token_digest(code["code"]),
            client_id=client_id,
            company=user.company,
            user=user,
            redirect_uri=request.redirect_uri,
            scopes=scopes_for(user),
            created_at=now,
            expires_at=now + timedelta(seconds=conf.AUTHORIZATION_CODE_LIFETIME),
        )

    def validate_code(
        self, client_id: str, code: str, client: Any, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        now = timezone.now()
        row = (
            AuthorizationCode.objects.select_related("user", "company")
            .filter(code_hash=token_digest(code or ""), client_id=client_id)
            .first()
        )
        if row is None or row.used_at is not None or row.expires_at <= now:
            return False
        # Single use, even under two concurrent exchanges: only one conditional update wins.
        if not AuthorizationCode.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now):
            return False
        request.sandbox_code = row
        request.user = row.user
        request.scopes = list(row.scopes)
        return True

    def invalidate_authorization_code(
        self, client_id: str, code: str, request: Request, *args: Any, **kwargs: Any
    ) -> None:
        """Already burnt in ``validate_code``."""

    # --- refresh tokens ------------------------------------------------------------------------------

    def validate_refresh_token(
        self, refresh_token: str, client: Any, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        row = (
            RefreshToken.objects.select_related("user", "company")
            .filter(token_hash=token_digest(refresh_token or ""), client_id=request.client_id)
            .first()
        )
        if row is None or not row.is_usable():
            return False
        request.sandbox_refresh = row
        request.user = row.user
        return True

    def get_original_scopes(self, refresh_token: str, request: Request, *args: Any, **kwargs: Any) -> list[str]:
        return list(request.sandbox_refresh.scopes)

    def rotate_refresh_token(self, request: Request) -> bool:
        return False  # Pipedrive's refresh token is stable

    # --- issuing ---------------------------------------------------------------------------------------

    def save_bearer_token(self, token: dict[str, Any], request: Request, *args: Any, **kwargs: Any) -> str:
        now = timezone.now()
        user: SandboxUser = request.user
        refresh: RefreshToken | None = getattr(request, "sandbox_refresh", None)
        if refresh is None:
            refresh = RefreshToken.objects.create(
                token_hash=token_digest(token["refresh_token"]),
                client_id=request.client_id,
                company=user.company,
                user=user,
                scopes=list(request.scopes),
                last_used_at=now,
            )
        else:
            RefreshToken.objects.filter(pk=refresh.pk).update(last_used_at=now)
        AccessToken.objects.create(
            token_hash=token_digest(token["access_token"]),
            client_id=request.client_id,
            company=user.company,
            user=user,
            refresh_token=refresh,
            scopes=list(refresh.scopes),
            expires_at=now + timedelta(seconds=int(token["expires_in"])),
        )
        return conf.callback_url()

    # --- resource requests -----------------------------------------------------------------------------

    def validate_bearer_token(self, token: str, scopes: list[str], request: Request) -> bool:
        """Pipedrive's operations list alternative scopes: any one of them suffices."""
        row = AccessToken.objects.select_related("user", "company").filter(token_hash=token_digest(token or "")).first()
        if row is None or not row.is_usable():
            request.sandbox_denial = "token"
            return False
        request.sandbox_access = row
        request.user = row.user
        request.scopes = list(row.scopes)
        if not allows(row.scopes, scopes or ()):
            request.sandbox_denial = "scope"
            return False
        return True

    # --- revocation (RFC 7009) -----------------------------------------------------------------------------

    def revoke_token(
        self, token: str, token_type_hint: str | None, request: Request, *args: Any, **kwargs: Any
    ) -> None:
        digest = token_digest(token or "")
        client_id = request.client_id
        kinds = (
            ("refresh_token", "access_token")
            if token_type_hint != "access_token"
            else ("access_token", "refresh_token")
        )
        for kind in kinds:
            if kind == "refresh_token":
                refresh = (
                    RefreshToken.objects.select_related("user").filter(token_hash=digest, client_id=client_id).first()
                )
                if refresh is not None:
                    services.app_uninstall(
                        user=refresh.user,
                        client_id=client_id,
                        reason="App uninstalled (token revoked)",
                        notify_app=False,
                    )
                    return
            else:
                if AccessToken.objects.filter(token_hash=digest, client_id=client_id, revoked_at__isnull=True).update(
                    revoked_at=timezone.now()
                ):
                    return


def _pipedrive_token_fields(token: dict[str, Any], token_handler: Any, request: Request) -> dict[str, Any]:
    """Pipedrive's additions to the token response: comma-separated scope and the api_domain."""
    token["scope"] = scope_facts.response_scope(request.scopes or [])
    token["api_domain"] = request.user.company.api_domain
    return token


def build_server() -> WebApplicationServer:
    server = WebApplicationServer(
        PipedriveRequestValidator(),
        token_generator=new_access_token,
        refresh_token_generator=new_refresh_token,
        token_expires_in=lambda request: conf.access_token_lifetime(),
    )
    server.auth_grant.register_token_modifier(_pipedrive_token_fields)
    server.refresh_grant.register_token_modifier(_pipedrive_token_fields)
    return server


def token_response(*, uri: str, body: str, headers: dict[str, str]) -> tuple[dict[str, str], str, int]:
    """``POST /oauth/token`` in one transaction of the sandbox database."""
    with transaction.atomic(using=SANDBOX_DB):
        return build_server().create_token_response(uri, http_method="POST", body=body, headers=headers)


def revocation_response(*, uri: str, body: str, headers: dict[str, str]) -> tuple[dict[str, str], str, int]:
    with transaction.atomic(using=SANDBOX_DB):
        return build_server().create_revocation_response(uri, http_method="POST", body=body, headers=headers)
