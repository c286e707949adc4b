"""A production start without a required secret fails loudly; development needs none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIPEDRIVE_", "SECRET_KEY", "TOKEN_", "DEBUG"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "PIPEDRIVE_CLIENT_ID", "PIPEDRIVE_CLIENT_SECRET", "TOKEN_ENCRYPTION_KEYS"]
)
def test_production_start_without_a_secret_fails(missing: str) -> None:
    env = {
        "DEBUG": "off",
        "SECRET_KEY": "x" * 50,
        "PIPEDRIVE_CLIENT_ID": "id",
        "PIPEDRIVE_CLIENT_SECRET": "secret",
        "TOKEN_ENCRYPTION_KEYS": "8lWsdZ9yBq3Ww5o3cXmnH4sBH0AhFM9tZ5F1j5Zh0Y8=",
    }
    del env[missing]
    result = _start(env)
    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr


def test_production_start_with_all_secrets_succeeds() -> None:
    result = _start(
        {
            "DEBUG": "off",
            "SECRET_KEY": "x" * 50,
            "PIPEDRIVE_CLIENT_ID": "id",
            "PIPEDRIVE_CLIENT_SECRET": "secret",
            "TOKEN_ENCRYPTION_KEYS": "8lWsdZ9yBq3Ww5o3cXmnH4sBH0AhFM9tZ5F1j5Zh0Y8=",
        }
    )
    assert result.returncode == 0, result.stderr


def test_development_start_needs_nothing() -> None:
    result = _start({"DEBUG": "on"})
    assert result.returncode == 0, result.stderr


def test_check_deploy_is_clean_with_production_settings() -> None:
    env = {
        "DEBUG": "off",
        "SECRET_KEY": "k3Jp0-5x!vQe_9Lr2sWz7Ty4Ua8Ib6Oc1Nd3Mf5Gh7Ji9Kl0Pm2Qn4Ro6Sp8Tq0Ur2",
        "PIPEDRIVE_CLIENT_ID": "id",
        "PIPEDRIVE_CLIENT_SECRET": "secret",
        "TOKEN_ENCRYPTION_KEYS": "8lWsdZ9yBq3Ww5o3cXmnH4sBH0AhFM9tZ5F1j5Zh0Y8=",
        "APP_BASE_URL": "https://app.example.com",
        "ALLOWED_HOSTS": "app.example.com",
        "PIPEDRIVE_SANDBOX": "off",
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIPEDRIVE_", "SECRET_KEY", "TOKEN_", "DEBUG"))}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_sentry_is_initialised_only_when_its_dsn_is_set() -> None:
    probe = "import django; django.setup(); import sentry_sdk; print(sentry_sdk.get_client().is_active())"

    def run(extra: dict[str, str]) -> str:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "DEBUG"))}
        env = {**clean, "DEBUG": "on", "DJANGO_SETTINGS_MODULE": "pipedrive_app.settings", **extra}
        result = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    assert run({}) == "False"
    # A loopback DSN: nothing is sent during this check, and nothing could leave the machine.
    assert run({"SENTRY_DSN": "http://publickey@127.0.0.1:9/1"}) == "True"
