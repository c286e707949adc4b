"""What can go wrong when talking to Pipedrive, as a small exception tree.

Callers catch the narrowest class they can act on; every class carries the HTTP status (when there
was a response) and a short, secret-free reason that is safe to log and to show an operator.
"""

from __future__ import annotations


class PipedriveError(Exception):
    """Base class for every failure talking to Pipedrive."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PipedriveAuthError(PipedriveError):
    """401: the access token is invalid or expired (and a refresh did not help)."""


class PipedriveForbidden(PipedriveError):
    """403: the token lacks a scope (e.g. ``admin`` for webhooks) or the user lacks permission."""


class PipedriveNotFound(PipedriveError):
    """404: the record does not exist or is not visible to this user."""


class PipedriveValidationError(PipedriveError):
    """400/409/422: Pipedrive refused the request's content."""


class PipedriveRateLimited(PipedriveError):
    """429 after the allowed waits: carries how long to wait before trying again."""

    def __init__(self, message: str, *, retry_after: float, status: int | None = 429) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class PipedriveBudgetExhausted(PipedriveRateLimited):
    """Not sent: the company's daily token budget (less the reserve kept for interactive use, for
    background work) is spent. ``retry_after`` is the time until the budget resets."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after, status=None)


class PipedriveUnavailable(PipedriveError):
    """5xx, a timeout, a refused connection or a malformed response: worth retrying later."""


# --- OAuth server ---------------------------------------------------------------------------------


class OAuthError(PipedriveError):
    """The OAuth server refused a grant for a reason other than an invalid grant."""

    def __init__(self, message: str, *, error: str = "", status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.error = error


class InvalidGrant(OAuthError):
    """The code or refresh token is invalid, expired or already used: the user must re-authorize."""


class ApiDomainNotAllowed(PipedriveError):
    """A token response named an api_domain outside PIPEDRIVE_ALLOWED_API_DOMAINS."""
