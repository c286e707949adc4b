"""End to end over real HTTP with the sandbox standing in for Pipedrive: install -> subscriptions in
the sandbox with Basic auth -> a deal edited in the sandbox -> the change in the deal's history."""

from __future__ import annotations

import time

import pytest
import requests

from pipedrive_app.history.selectors import record_history
from pipedrive_app.installations.models import Installation
from pipedrive_app.webhooks.models import CompanyWebhookState
from sandbox.models import Deal, Stage, Webhook
from tests.sandbox.conftest import (  # noqa: F401  (fixtures)
    SANDBOX_DB,
    _sandbox_defaults,
    browser,
    live_sandbox,
    sandbox_world,
)
from tests.sandbox.test_live_install import browser_install

pytestmark = pytest.mark.django_db(transaction=True, databases=SANDBOX_DB)


def test_a_deal_edited_in_the_sandbox_shows_up_in_its_history(live_sandbox, browser, sandbox_world) -> None:  # noqa: F811
    admin = sandbox_world.acme_admin
    assert browser_install(live_sandbox, admin, browser).status_code == 200

    installation = Installation.objects.select_related("company").get(
        company__pipedrive_company_id=admin.company_id, pipedrive_user_id=admin.pk
    )
    state = CompanyWebhookState.objects.get(company=installation.company)
    assert state.status == "available"
    hooks = list(Webhook.objects.filter(company=sandbox_world.acme))
    ours = [h for h in hooks if h.subscription_url == f"{live_sandbox.url}/webhooks/pipedrive/{state.url_key}/"]
    assert sorted(h.event_object for h in ours) == ["deal", "person"]
    for hook in ours:
        assert (hook.http_auth_user, hook.http_auth_password) == (state.http_auth_user, state.http_auth_password)

    deal = Deal.objects.filter(company=sandbox_world.acme, is_deleted=False).select_related("stage").earliest("pk")
    old_stage = deal.stage
    new_stage = Stage.objects.filter(pipeline=old_stage.pipeline).exclude(pk=old_stage.pk).earliest("pk")
    response = requests.patch(
        f"{installation.company.api_domain}/api/v2/deals/{deal.pk}",
        json={"title": "Renamed in the sandbox", "value": 4242, "stage_id": new_stage.pk},
        headers={"Authorization": f"Bearer {installation.access_token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text

    deadline = time.monotonic() + 20
    lines = []
    while time.monotonic() < deadline:
        lines = record_history(company_id=installation.company_id, entity="deal", entity_id=deal.pk)
        if {line.field_key for line in lines} >= {"title", "value", "stage_id"}:
            break
        time.sleep(0.2)
    by_key = {line.field_key: line for line in lines}
    assert by_key["title"].field_label == "Title" and by_key["title"].new_display == "Renamed in the sandbox"
    assert by_key["value"].field_label == "Value" and by_key["value"].new_display.startswith("4242")
    assert by_key["title"].actor_user_id == admin.pk
    # Stage names as Pipedrive shows them (looked up through the sandbox's REST API), not ids.
    assert by_key["stage_id"].field_label == "Stage"
    assert (by_key["stage_id"].old_display, by_key["stage_id"].new_display) == (old_stage.name, new_stage.name)
