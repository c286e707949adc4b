"""Send the sandbox's models to their own database alias, and nothing else there.

The default SQLite set-up holds SQLite's writer lock while the app calls the token endpoint
(single-flight refresh); a sandbox writing to the same file from the same server would deadlock.
"""

from __future__ import annotations

from typing import Any

SANDBOX_DB = "sandbox"
SANDBOX_APP = "sandbox"


class SandboxRouter:
    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        return SANDBOX_DB if model._meta.app_label == SANDBOX_APP else None

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        return SANDBOX_DB if model._meta.app_label == SANDBOX_APP else None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        first, second = obj1._meta.app_label == SANDBOX_APP, obj2._meta.app_label == SANDBOX_APP
        if first or second:
            return first and second
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        if app_label == SANDBOX_APP:
            return db == SANDBOX_DB
        if db == SANDBOX_DB:
            return False
        return None
