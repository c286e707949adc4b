"""The seed command, the sandbox's pages, the uninstall notification and the start-up guard."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.test import Client

from sandbox.models import ChangeEvent, Deal, Person, RefreshToken, SandboxCompany, SandboxUser, Webhook

from .conftest import CLIENT_ID, CLIENT_SECRET, SANDBOX_DB

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(databases=SANDBOX_DB)
def test_seed_is_idempotent_and_reset_reseeds() -> None:
    out = StringIO()
    call_command("sandbox_seed", stdout=out, stderr=StringIO())
    assert "seeded with 2 companies" in out.getvalue()
    companies = SandboxCompany.objects.count()
    users = list(SandboxUser.objects.values_list("is_admin", flat=True))
    deals = Deal.objects.count()
    assert companies == 2 and sorted(users) == [False, False, True, True]
    assert deals == 24 and Person.objects.count() == 16
    assert all(len(key) == 40 for d in Deal.objects.all() for key in d.custom_fields)

    again = StringIO()
    call_command("sandbox_seed", stdout=again, stderr=StringIO())
    assert "already seeded" in again.getvalue()
    assert SandboxCompany.objects.count() == 2 and Deal.objects.count() == deals

    first_ids = set(SandboxCompany.objects.values_list("pk", flat=True))
    call_command("sandbox_seed", "--reset", stdout=StringIO(), stderr=StringIO())
    assert SandboxCompany.objects.count() == 2 and Deal.objects.count() == deals
    assert not first_ids & set(SandboxCompany.objects.values_list("pk", flat=True))
    assert ChangeEvent.objects.filter(change_source="seed").exists()


@pytest.mark.django_db(databases=SANDBOX_DB)
def test_pages_render(client: Client, sandbox_world) -> None:
    deal = Deal.objects.filter(company=sandbox_world.acme).earliest("pk")
    person = Person.objects.filter(company=sandbox_world.acme).earliest("pk")
    for url in (
        "/sandbox/",
        "/sandbox/marketplace/",
        "/sandbox/webhooks/",
        "/sandbox/acme/",
        f"/sandbox/acme/deals/{deal.pk}/",
        f"/sandbox/acme/persons/{person.pk}/",
        "/sandbox/acme/apps/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        # Nothing loaded from elsewhere (fonts, CDNs): every script, stylesheet, image and frame is
        # served by the app. (Searching the page for "cdn" also matched random tokens in its links.)
        html = response.content.decode()
        loaded = re.findall(r"<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)=\"([^\"]*)\"", html)
        assert loaded, url
        assert [u for u in loaded if urlsplit(u).netloc not in ("", "testserver")] == [], url
        assert "fonts.googleapis" not in html and "@import" not in html, url
    marketplace = client.get("/sandbox/marketplace/").content.decode()
    assert 'href="http://testserver/oauth/install"' in marketplace
    assert "/sandbox/oauth/authorize?client_id=" in marketplace
    assert client.get(f"/sandbox/globex/deals/{deal.pk}/").status_code == 404


@pytest.mark.django_db(databases=SANDBOX_DB)
def test_detail_pages_host_the_apps_panel_with_pipedrives_parameters(client: Client, sandbox_world) -> None:
    deal = Deal.objects.filter(company=sandbox_world.acme).earliest("pk")
    html = client.get(f"/sandbox/acme/deals/{deal.pk}/?as={sandbox_world.acme_regular.pk}").content.decode()
    if "data-pd-extension-host" not in html:
        pytest.skip("the extension host template is not there yet")
    assert "http://testserver/extensions/panels/deal/?" in html
    assert f"selectedIds={deal.pk}" in html and f"userId={sandbox_world.acme_regular.pk}" in html
    token = client.get(
        "/sandbox/extensions/token", {"company": sandbox_world.acme.pk, "user": sandbox_world.acme_regular.pk}
    ).json()["token"]
    import jwt

    claims = jwt.decode(token, CLIENT_SECRET, algorithms=["HS256"])
    assert claims["userId"] == sandbox_world.acme_regular.pk and claims["companyId"] == sandbox_world.acme.pk


@pytest.mark.django_db(databases=SANDBOX_DB)
def test_person_page_edit_saves(client: Client, sandbox_world) -> None:
    person = Person.objects.filter(company=sandbox_world.acme).earliest("pk")
    response = client.post(
        f"/sandbox/acme/persons/{person.pk}/",
        {"name": "Page Edited", "email": "pe@x.example", "phone": "", "job_title": "CFO"},
    )
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.name == "Page Edited" and person.emails[0]["value"] == "pe@x.example" and person.phones == []


@pytest.mark.django_db(transaction=True, databases=SANDBOX_DB)
def test_uninstall_button_sends_pipedrives_delete(
    client: Client, settings, sandbox_world, grant, api, receiver
) -> None:
    tokens = grant(sandbox_world.acme_admin)
    api(
        "POST",
        "acme",
        "/api/v1/webhooks",
        tokens["access_token"],
        body={"subscription_url": "https://app.example/h", "event_action": "*", "event_object": "*", "name": "h"},
    )
    settings.APP_BASE_URL = receiver.origin  # the app's callback URL is {APP_BASE_URL}/oauth/callback

    response = client.post(
        "/sandbox/acme/apps/", {"user_id": sandbox_world.acme_admin.pk, "client_id": CLIENT_ID, "action": "uninstall"}
    )

    assert response.status_code == 302
    [delete] = receiver.wait_for(1)
    assert delete.method == "DELETE" and delete.path == "/oauth/callback"
    assert (
        delete.headers["Authorization"] == "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    )
    assert delete.headers["Content-Type"] == "application/json"
    assert set(delete.body) == {"client_id", "company_id", "user_id", "timestamp"}
    assert delete.body["client_id"] == CLIENT_ID
    assert delete.body["company_id"] == sandbox_world.acme.pk and delete.body["user_id"] == sandbox_world.acme_admin.pk
    # As Pipedrive does: the user's tokens die and their application webhooks are deleted.
    assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()
    assert api("GET", "acme", "/api/v1/users/me", tokens["access_token"]).status_code == 401
    assert Webhook.objects.get().remove_time is not None


@pytest.mark.django_db(databases=SANDBOX_DB)
def test_expire_button_expires_access_tokens(client: Client, sandbox_world, grant, api) -> None:
    tokens = grant(sandbox_world.acme_admin)
    client.post("/sandbox/acme/apps/", {"user_id": sandbox_world.acme_admin.pk, "action": "expire"})
    assert api("GET", "acme", "/api/v1/users/me", tokens["access_token"]).status_code == 401


def _manage_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIPEDRIVE_", "SECRET_KEY", "TOKEN_", "DEBUG"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


PRODUCTION = {
    "DEBUG": "off",
    "SECRET_KEY": "x" * 50,
    "PIPEDRIVE_CLIENT_ID": "id",
    "PIPEDRIVE_CLIENT_SECRET": "secret",
    "TOKEN_ENCRYPTION_KEYS": "8lWsdZ9yBq3Ww5o3cXmnH4sBH0AhFM9tZ5F1j5Zh0Y8=",
}


def test_sandbox_refuses_to_start_without_debug() -> None:
    refused = _manage_check({**PRODUCTION, "PIPEDRIVE_SANDBOX": "on"})
    assert refused.returncode != 0 and "PIPEDRIVE_SANDBOX is on while DEBUG is off" in refused.stderr
    forced = _manage_check({**PRODUCTION, "PIPEDRIVE_SANDBOX": "on", "PIPEDRIVE_SANDBOX_FORCE": "on"})
    assert forced.returncode == 0, forced.stderr


def test_sandbox_is_off_by_default_outside_tests() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='pipedrive_app.settings'; "
            "django.setup(); from django.conf import settings; "
            "print(settings.PIPEDRIVE_SANDBOX, 'sandbox' in settings.DATABASES)",
        ],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PIPEDRIVE_")}, "DEBUG": "on"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip() == "False False", result.stderr


def test_make_runs_set_up_leaves_no_unapplied_migration_for_runserver_to_warn_about(tmp_path) -> None:
    """`make run`: migrate without the sandbox, then sandbox_seed with it; runserver's own check then
    finds nothing unapplied in the default database (it used to warn about the sandbox's migration)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPEDRIVE_", "DATABASE_URL", "SANDBOX_", "DEBUG"))}
    env.update(
        {
            "DEBUG": "on",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}",
            "SANDBOX_DATABASE_URL": f"sqlite:///{tmp_path / 'sandbox.sqlite3'}",
        }
    )
    sandbox_env = {**env, "PIPEDRIVE_SANDBOX": "on", "APP_BASE_URL": "http://127.0.0.1:8777"}
    sandbox_env["PIPEDRIVE_OAUTH_URL"] = "http://127.0.0.1:8777/sandbox"

    def manage(*args: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=180
        )

    assert manage("manage.py", "migrate", "--no-input", "-v", "0", environment=env).returncode == 0
    seeded = manage("manage.py", "sandbox_seed", "-v", "0", environment=sandbox_env)
    assert seeded.returncode == 0, seeded.stderr
    plan = manage(
        "-c",
        "import os, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'pipedrive_app.settings'; django.setup(); "
        "from django.db import connection; from django.db.migrations.executor import MigrationExecutor; "
        "executor = MigrationExecutor(connection); "
        "print(len(executor.migration_plan(executor.loader.graph.leaf_nodes())))",
        environment=sandbox_env,
    )
    assert plan.stdout.strip() == "0", plan.stderr
