"""Adding an index to a busy table without stopping its writers.

A plain ``CREATE INDEX`` on PostgreSQL blocks inserts into the table until it finishes: on the webhook
inbox that is minutes of deliveries left unanswered, and Pipedrive bans a webhook that does not
answer within 10 s. ``CREATE INDEX CONCURRENTLY`` builds it while writes go on. SQLite (development,
tests) has no such option and no such traffic, so there the ordinary operation runs.

A migration that uses this must set ``atomic = False`` (PostgreSQL refuses a concurrent build inside
a transaction).
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db.migrations.operations import AddIndex


class AddIndexOnline(AddIndexConcurrently):
    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
