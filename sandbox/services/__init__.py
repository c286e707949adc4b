"""Every write the sandbox makes to its CRM records, webhooks and installs, one module per concern:

- ``changes``: the change log (a ``ChangeEvent`` per write, webhook fan-out on commit), the errors a
  refused write raises, the create/update/delete steps deals, people and leads share;
- ``records``: deals, people, leads, organizations, notes, activities (input cleaned as Pipedrive does);
- ``pipelines``: pipelines and stages;
- ``installs``: the app's webhooks, uninstall, expiring access tokens.

Callers import from this package (``from sandbox import services``).
"""

from .changes import (
    RecordInputError,
    WebhookLimitReached,
)
from .installs import (
    access_tokens_expire,
    app_uninstall,
    webhook_create,
    webhook_remove,
)
from .pipelines import (
    pipeline_create,
    pipeline_delete,
    pipeline_update,
    stage_create,
    stage_delete,
    stage_update,
)
from .records import (
    activity_create,
    deal_create,
    deal_delete,
    deal_update,
    lead_create,
    lead_delete,
    lead_update,
    note_create,
    organization_create,
    person_create,
    person_delete,
    person_update,
)

__all__ = [
    "RecordInputError",
    "WebhookLimitReached",
    "access_tokens_expire",
    "activity_create",
    "app_uninstall",
    "deal_create",
    "deal_delete",
    "deal_update",
    "lead_create",
    "lead_delete",
    "lead_update",
    "note_create",
    "organization_create",
    "person_create",
    "person_delete",
    "person_update",
    "pipeline_create",
    "pipeline_delete",
    "pipeline_update",
    "stage_create",
    "stage_delete",
    "stage_update",
    "webhook_create",
    "webhook_remove",
]
