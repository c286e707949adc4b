"""Child process of the concurrency test: N threads use one installation at the same instant.

Run as ``python -m tests.installations.refresh_stampede <installation_id> <threads> <start_at>``;
prints one JSON line with how many calls succeeded and the errors of the others.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time


def main() -> None:
    installation_id, threads, start_at = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pipedrive_app.settings")
    import django

    django.setup()
    from django.db import close_old_connections

    from pipedrive_app.installations.models import Installation
    from pipedrive_app.installations.services import installation_client

    results: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def use() -> None:
        try:
            installation = Installation.objects.select_related("company").get(pk=installation_id)
            barrier.wait(timeout=60)
            time.sleep(max(0.0, start_at - time.time()))
            me = installation_client(installation=installation).get_current_user()
            outcome = "ok" if me.id == installation.pipedrive_user_id else "wrong user"
        except Exception as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        finally:
            close_old_connections()
        with lock:
            results.append(outcome)

    workers = [threading.Thread(target=use) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    print(json.dumps({"ok": results.count("ok"), "errors": [r for r in results if r != "ok"]}))


if __name__ == "__main__":
    main()
