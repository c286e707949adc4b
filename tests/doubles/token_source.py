"""A ``TokenSource`` for tests: tokens obtained from the Pipedrive double over real HTTP.

It stands in for the installations service so the client can be tested on its own: it exchanges an
authorization code at the double's token endpoint and refreshes there after a 401, recording which
stale tokens it was handed.
"""

from __future__ import annotations

from typing import Any

import requests

from tests.doubles.pipedrive_double import PipedriveDouble

TEST_REDIRECT_URI = "https://app.example/oauth/callback"


def obtain_tokens(
    double: PipedriveDouble, company_id: int, user_id: int, *, redirect_uri: str = TEST_REDIRECT_URI
) -> dict[str, Any]:
    """Consent and code exchange for a user the double knows; returns the token response."""
    code = double.issue_code(company_id, user_id, redirect_uri=redirect_uri)
    response = requests.post(
        f"{double.base_url}/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
        auth=(double.client_id, double.client_secret),
        timeout=5,
    )
    response.raise_for_status()
    return dict(response.json())


class DoubleTokenSource:
    """Hands out the current access token; refreshes at the double when the client reports a 401."""

    def __init__(self, double: PipedriveDouble, company_id: int, user_id: int) -> None:
        self._double = double
        grant = obtain_tokens(double, company_id, user_id)
        self.token: str = grant["access_token"]
        self.refresh_token: str = grant["refresh_token"]
        self.api_domain: str = grant["api_domain"]
        self.stale_tokens: list[str] = []

    def __repr__(self) -> str:
        return "DoubleTokenSource()"

    def access_token(self) -> str:
        return self.token

    def refresh_after_unauthorized(self, stale_token: str) -> str:
        self.stale_tokens.append(stale_token)
        response = requests.post(
            f"{self._double.base_url}/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": self.refresh_token},
            auth=(self._double.client_id, self._double.client_secret),
            timeout=5,
        )
        response.raise_for_status()
        payload = response.json()
        self.token = payload["access_token"]
        self.refresh_token = payload.get("refresh_token") or self.refresh_token
        return self.token


class FixedTokenSource:
    """Always the same token; a refresh yields ``after_refresh`` (default: the same token again)."""

    def __init__(self, token: str, *, after_refresh: str | None = None) -> None:
        self.token = token
        self.after_refresh = after_refresh if after_refresh is not None else token
        self.stale_tokens: list[str] = []

    def __repr__(self) -> str:
        return "FixedTokenSource()"

    def access_token(self) -> str:
        return self.token

    def refresh_after_unauthorized(self, stale_token: str) -> str:
        self.stale_tokens.append(stale_token)
        self.token = self.after_refresh
        return self.token
