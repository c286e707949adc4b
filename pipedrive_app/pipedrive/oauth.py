"""Pipedrive's OAuth 2.0 server: authorize URL, code exchange, refresh and revoke.

Built on requests-oauthlib. Pipedrive specifics (platform guide §1): client credentials go in HTTP
Basic auth, scopes are fixed per app (no ``scope`` parameter is sent), ``scope`` comes back
comma-separated, and every token response names the company's ``api_domain``, which must be on the
allow-list before any token is sent there.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import requests
from oauthlib.oauth2 import OAuth2Error
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session
from urllib3.util.retry import Retry

from pipedrive_app.core.http import DEFAULT_TIMEOUT, build_session, mount_defaults
from pipedrive_app.metrics import instruments as metrics

from .domains import api_domain_allowed, normalize_api_domain
from .errors import ApiDomainNotAllowed, InvalidGrant, OAuthError, PipedriveError, PipedriveUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """A successful answer of the token endpoint. Secrets are kept out of ``repr``."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    scopes: tuple[str, ...]
    api_domain: str
    token_type: str = "Bearer"


def parse_scopes(scope: object) -> tuple[str, ...]:
    """Pipedrive sends ``"base,deals:full"``; oauthlib may already have split on spaces."""
    if isinstance(scope, (list, tuple)):
        scope = ",".join(str(item) for item in scope)
    if not isinstance(scope, str):
        return ()
    return tuple(sorted({part for part in re.split(r"[,\s]+", scope) if part}))


def _raise_for_token_error(response: requests.Response) -> requests.Response:
    """Compliance hook: turn non-200 answers into our exceptions before oauthlib parses them."""
    if response.status_code == 200:
        return response
    if response.status_code >= 500:
        raise PipedriveUnavailable(f"OAuth server answered HTTP {response.status_code}", status=response.status_code)
    error = ""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        error = payload["error"]
    if error == "invalid_grant":
        raise InvalidGrant("the grant is invalid, expired or already used", error=error, status=response.status_code)
    raise OAuthError(
        f"OAuth server refused the request ({error or 'no error code'}, HTTP {response.status_code})",
        error=error,
        status=response.status_code,
    )


class PipedriveOAuth:
    def __init__(
        self,
        *,
        oauth_url: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        allowed_api_domains: Sequence[str],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.oauth_url = oauth_url.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.allowed_api_domains = tuple(allowed_api_domains)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"PipedriveOAuth(oauth_url={self.oauth_url!r}, client_id={self.client_id!r})"

    @property
    def authorize_endpoint(self) -> str:
        return f"{self.oauth_url}/oauth/authorize"

    @property
    def token_endpoint(self) -> str:
        return f"{self.oauth_url}/oauth/token"

    @property
    def revoke_endpoint(self) -> str:
        return f"{self.oauth_url}/oauth/revoke"

    def _session(self) -> OAuth2Session:
        session = OAuth2Session(self.client_id, redirect_uri=self.redirect_uri)
        session.trust_env = False
        # Token requests are never retried blindly: a code is single use.
        mount_defaults(session, timeout=self.timeout, retry=Retry(0))
        session.register_compliance_hook("access_token_response", _raise_for_token_error)
        session.register_compliance_hook("refresh_token_response", _raise_for_token_error)
        return session

    def authorization_url(self, *, state: str) -> str:
        with self._session() as session:
            url, _ = session.authorization_url(self.authorize_endpoint, state=state)
        return str(url)

    def exchange_code(self, *, code: str) -> TokenGrant:
        def call() -> dict[str, object]:
            with self._session() as session:
                return dict(
                    session.fetch_token(
                        self.token_endpoint,
                        code=code,
                        auth=HTTPBasicAuth(self.client_id, self._client_secret),
                        include_client_id=False,
                        timeout=self.timeout,
                    )
                )

        return self._grant_from(self._call("code exchange", call), previous_refresh_token=None)

    @metrics.token_refresh
    def refresh(self, *, refresh_token: str) -> TokenGrant:
        def call() -> dict[str, object]:
            with self._session() as session:
                return dict(
                    session.refresh_token(
                        self.token_endpoint,
                        refresh_token=refresh_token,
                        auth=HTTPBasicAuth(self.client_id, self._client_secret),
                        timeout=self.timeout,
                    )
                )

        return self._grant_from(self._call("token refresh", call), previous_refresh_token=refresh_token)

    def revoke(self, *, token: str, token_type_hint: str = "refresh_token") -> None:
        """RFC 7009 revocation. Pipedrive answers 200 even for tokens it does not know."""
        session = build_session(timeout=self.timeout, retry=Retry(0))
        try:
            response = session.post(
                self.revoke_endpoint,
                data={"token": token, "token_type_hint": token_type_hint},
                auth=HTTPBasicAuth(self.client_id, self._client_secret),
            )
        except requests.RequestException as exc:
            raise PipedriveUnavailable(f"token revocation failed: {type(exc).__name__}") from exc
        finally:
            session.close()
        if response.status_code >= 500:
            raise PipedriveUnavailable(f"revocation answered HTTP {response.status_code}", status=response.status_code)
        if response.status_code >= 400:
            raise OAuthError(f"revocation refused (HTTP {response.status_code})", status=response.status_code)

    def _call(self, what: str, call: Callable[[], dict[str, object]]) -> dict[str, object]:
        try:
            return call()
        except PipedriveError:
            raise
        except requests.RequestException as exc:
            raise PipedriveUnavailable(f"{what} failed: {type(exc).__name__}") from exc
        except OAuth2Error as exc:
            # A 200 whose body oauthlib rejected (no access_token, an error field...).
            raise PipedriveUnavailable(f"{what}: malformed token response ({exc.error})") from None
        except (ValueError, KeyError, TypeError, json.JSONDecodeError, Warning) as exc:
            raise PipedriveUnavailable(f"{what}: malformed token response ({type(exc).__name__})") from None

    def _grant_from(self, token: dict[str, object], *, previous_refresh_token: str | None) -> TokenGrant:
        access_token = token.get("access_token")
        refresh_token = token.get("refresh_token") or previous_refresh_token
        api_domain = token.get("api_domain")
        if not isinstance(access_token, str) or not access_token:
            raise PipedriveUnavailable("token response has no access_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise PipedriveUnavailable("token response has no refresh_token")
        if not isinstance(api_domain, str) or normalize_api_domain(api_domain) is None:
            raise PipedriveUnavailable("token response has no valid api_domain")
        if not api_domain_allowed(api_domain, self.allowed_api_domains):
            # Log the host, never the token: the host is what an operator needs to decide.
            logger.warning(
                "refusing api_domain %s: not in PIPEDRIVE_ALLOWED_API_DOMAINS", normalize_api_domain(api_domain)
            )
            raise ApiDomainNotAllowed(f"api_domain {normalize_api_domain(api_domain)} is not allowed")
        try:
            expires_in = int(token.get("expires_in") or 3599)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            expires_in = 3599
        return TokenGrant(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=max(expires_in, 0),
            scopes=parse_scopes(token.get("scope")),
            api_domain=str(normalize_api_domain(api_domain)),
            token_type=str(token.get("token_type") or "Bearer"),
        )
