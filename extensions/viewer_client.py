"""The viewer's own Pipedrive client, ready for a panel: fresh token, short patience on 429."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from pipedrive_app.installations.models import Installation
from pipedrive_app.installations.services import installation_client, installation_token_refresh
from pipedrive_app.pipedrive.client import PipedriveClient


def viewer_client(installation: Installation) -> PipedriveClient:
    """Refresh the token here, on the request thread, before a panel's calls fan out to threads.

    A panel must answer within Pipedrive's 10 seconds, so a 429 is waited out at most briefly and
    then shown to the user instead of blocking the iframe for a minute; a token refresh is waited
    for at most EXTENSIONS_TOKEN_WAIT_SECONDS, and each API call at most
    EXTENSIONS_API_TIMEOUT_SECONDS.
    """
    margin = timedelta(seconds=settings.PIPEDRIVE_TOKEN_REFRESH_MARGIN)
    wait = settings.EXTENSIONS_TOKEN_WAIT_SECONDS
    if installation.access_token_expires_within(margin):
        # Bounded: past ``wait`` the panel says "Pipedrive is slow" and the refresh goes on without it.
        installation = installation_token_refresh(installation_id=installation.pk, wait_seconds=wait)
    client = installation_client(  # interactive: may use the budget's reserve
        installation=installation,
        interactive=True,
        token_wait_seconds=wait,
        timeout=min(settings.PIPEDRIVE_HTTP_TIMEOUT, settings.EXTENSIONS_API_TIMEOUT_SECONDS),
    )
    client.limit_rate_limit_waits(
        max_waits=settings.EXTENSIONS_RATE_LIMIT_MAX_WAITS,
        max_wait_seconds=settings.EXTENSIONS_RATE_LIMIT_MAX_WAIT_SECONDS,
    )
    return client
