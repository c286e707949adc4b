"""Tasks that a real worker imports (``celery worker --include``) only in the worker-log test: each
one puts a planted secret where careless code would, so the test can scan the worker's output."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger("tests.worker_log_tasks")


@shared_task(name="tests.core.worker_log_tasks.leak_secrets")
def leak_secrets(secret: str) -> str:
    logger.info("refreshing with refresh_token=%s", secret)  # a log call with the secret as an argument
    logger.warning("calling with Authorization: Bearer %s", secret)
    print(f"access_token={secret}")  # the worker redirects stdout into logging
    return f"refresh_token={secret}"  # Celery logs the return value


@shared_task(name="tests.core.worker_log_tasks.fail_with_secret")
def fail_with_secret(secret: str) -> None:
    raise ValueError(f"token endpoint said: client_secret={secret}")  # Celery logs the traceback
