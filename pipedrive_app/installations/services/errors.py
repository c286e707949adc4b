"""Errors the installation services raise, for views and tasks to act on."""

from __future__ import annotations

from pipedrive_app.pipedrive.errors import PipedriveError, PipedriveUnavailable


class InstallError(Exception):
    """The install could not complete; ``message`` is safe to show the user.

    ``status`` is the HTTP status the callback answers with: 400 when the request itself was at fault
    (a code Pipedrive does not accept), 502 when Pipedrive failed or answered something unusable.
    """

    def __init__(self, message: str, *, retryable: bool = True, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status


class InvalidState(Exception):
    """The callback's ``state`` is forged, replayed, expired or from another browser."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InstallationNotActive(PipedriveError):
    """The installation is uninstalled or needs re-authorization; no API call can be made."""


class NeedsReauth(InstallationNotActive):
    """Pipedrive rejected the refresh token: the user must install the app again."""


class TokenRefreshFailed(PipedriveUnavailable):
    """The refresh could not be done now (network, 5xx); stored tokens are untouched."""


class TokenRefreshPending(TokenRefreshFailed):
    """The refresh did not finish within the caller's time budget; it goes on without the caller."""
