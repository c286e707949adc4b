"""Install, refresh, uninstall and revoke: every write to companies and installations.

One module per concern:

- ``oauth``: the OAuth client and the install's signed ``state``;
- ``install``: code exchange, identifying the user, storing company and installation;
- ``tokens``: refresh under a lease, the token source, ``installation_client``;
- ``uninstall``: one user's uninstall, the company's purge with the last one, cache purge;
- ``company_settings``: what a company's admins chose;
- ``errors``: what the views and tasks act on.

Row locks and the refresh lease come from ``core/locks.py`` and follow its lock order (Company,
then company-scoped rows, then Installation). No transaction is open while Pipedrive is called.
Other apps hear about installs, settings changes and uninstalls through ``installations.signals``.
Callers import from this package (``from pipedrive_app.installations import services``).
"""

from .company_settings import (
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    InvalidSettings,
    company_settings_get_or_create,
    company_settings_update,
)
from .errors import (
    InstallationNotActive,
    InstallError,
    InvalidState,
    NeedsReauth,
    TokenRefreshFailed,
    TokenRefreshPending,
)
from .install import installation_activated, installation_create_from_code
from .oauth import oauth_client, oauth_state_consume, oauth_state_create, oauth_states_purge_expired
from .tokens import (
    USABLE_FOR,
    InstallationTokenSource,
    installation_client,
    installation_rate_limiter,
    installation_token_refresh,
    installations_due_for_idle_refresh,
)
from .uninstall import (
    UninstallResult,
    company_caches_purge,
    company_uninstall_by_vendor,
    installation_uninstall,
    installation_uninstall_by_vendor,
)

__all__ = [
    "MAX_RETENTION_DAYS",
    "MIN_RETENTION_DAYS",
    "USABLE_FOR",
    "InstallError",
    "InstallationNotActive",
    "InstallationTokenSource",
    "InvalidSettings",
    "InvalidState",
    "NeedsReauth",
    "TokenRefreshFailed",
    "TokenRefreshPending",
    "UninstallResult",
    "company_caches_purge",
    "company_settings_get_or_create",
    "company_settings_update",
    "company_uninstall_by_vendor",
    "installation_activated",
    "installation_client",
    "installation_create_from_code",
    "installation_rate_limiter",
    "installation_token_refresh",
    "installation_uninstall",
    "installation_uninstall_by_vendor",
    "installations_due_for_idle_refresh",
    "oauth_client",
    "oauth_state_consume",
    "oauth_state_create",
    "oauth_states_purge_expired",
]
