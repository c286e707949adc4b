"""The custom UI settings page: admins edit, everyone else reads; saving reconciles webhooks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipedrive_app.installations import signals
from pipedrive_app.installations.models import CompanySettings

from .conftest import ADMIN, COMPANY, OTHER_COMPANY, OUTSIDER, REGULAR, make_token, panel_query

pytestmark = pytest.mark.django_db


def _page(client, user_id: int = ADMIN, **extra):
    return client.get(f"/extensions/settings/?{panel_query(resource=None, record_id=None, user_id=user_id, **extra)}")


def _save(app_client, *, token: str, **body):
    return app_client.post(
        "/extensions/settings/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


@pytest.fixture
def reconciled() -> Iterator[list[int]]:
    """The companies whose settings-changed signal was sent (the webhooks app's receiver runs too)."""
    calls: list[int] = []

    def receiver(sender: object, *, company_id: int, **kwargs: object) -> None:
        calls.append(company_id)

    signals.company_settings_changed.connect(receiver, dispatch_uid="test.reconciled")
    yield calls
    signals.company_settings_changed.disconnect(dispatch_uid="test.reconciled")


def test_admin_sees_editable_settings(client, seeded_company) -> None:
    seeded_company()
    response = _page(client)

    html = response.content.decode()
    assert response.status_code == 200 and "X-Frame-Options" not in response
    assert "<fieldset >" in html  # not disabled
    assert "data-read-only" not in html
    for entity in CompanySettings.TRACKABLE_ENTITIES:
        assert f'value="{entity}"' in html
    assert 'value="deal" checked' in html and 'value="person" checked' in html and 'value="note" checked' not in html
    assert 'name="history_retention_days" min="1" max="3650" value="90"' in html
    assert "> Activities</label>" in html and "Activitys" not in html
    assert not response.cookies and "csrfmiddlewaretoken" not in html


def test_non_admin_sees_them_read_only(client, seeded_company) -> None:
    seeded_company(users=((ADMIN, True), (REGULAR, False)))
    html = _page(client, REGULAR).content.decode()
    assert "<fieldset disabled>" in html and "Only a Pipedrive admin" in html


def test_a_viewer_without_installation_gets_the_install_state(client, seeded_company) -> None:
    seeded_company()
    assert "Install the app" in _page(client, OUTSIDER).content.decode()


def test_admin_saves_and_webhooks_are_reconciled(
    app_client, pipedrive, seeded_company, reconciled, django_capture_on_commit_callbacks
) -> None:
    world = seeded_company()
    with django_capture_on_commit_callbacks(execute=True):
        response = _save(
            app_client,
            token=make_token(),
            tracked_entities=["person", "deal", "note"],
            history_retention_days=30,
            userId=ADMIN,
            companyId=COMPANY,
        )

    assert response.status_code == 200, response.content
    assert response.json() == {
        "ok": True,
        "message": "Settings saved.",
        "tracked_entities": ["deal", "person", "note"],
        "history_retention_days": 30,
    }
    row = CompanySettings.objects.get(company__pipedrive_company_id=COMPANY)
    assert row.tracked_entities == ["deal", "person", "note"] and row.history_retention_days == 30
    assert row.updated_by_user_id == ADMIN
    assert reconciled == [world["installations"][ADMIN].company_id]
    # The webhooks app's receiver reconciled at Pipedrive: the newly tracked notes are subscribed.
    subscribed = {w["event_object"] for w in pipedrive.company_webhooks(COMPANY)}
    assert "note" in subscribed and {"deal", "person"} <= subscribed


def test_non_admin_and_outsider_cannot_save(app_client, seeded_company, reconciled) -> None:
    seeded_company(users=((ADMIN, True), (REGULAR, False)))
    for user_id, status in ((REGULAR, 403), (OUTSIDER, 403)):
        response = _save(
            app_client, token=make_token(user_id=user_id), tracked_entities=["note"], history_retention_days=5
        )
        assert response.status_code == status and response.json()["ok"] is False
    assert CompanySettings.objects.get(company__pipedrive_company_id=COMPANY).tracked_entities == ["deal", "person"]
    assert reconciled == []


@pytest.mark.parametrize(
    "body",
    [
        {"tracked_entities": ["deal", "spaceship"], "history_retention_days": 30},
        {"tracked_entities": ["deal"], "history_retention_days": 0},
        {"tracked_entities": ["deal"], "history_retention_days": 99999},
        {"tracked_entities": "deal", "history_retention_days": 30},
        {"tracked_entities": ["deal"], "history_retention_days": "many"},
        {"tracked_entities": ["deal"], "history_retention_days": True},
    ],
)
def test_invalid_settings_are_refused_with_a_reason(app_client, seeded_company, reconciled, body) -> None:
    seeded_company()
    response = _save(app_client, token=make_token(), **body)
    assert response.status_code == 400 and response.json()["message"]
    assert reconciled == []


def test_company_a_cannot_change_company_bs_settings(app_client, client, seeded_company, reconciled) -> None:
    seeded_company()
    seeded_company(OTHER_COMPANY, users=((ADMIN + 100, True),))

    response = _save(
        app_client, token=make_token(), companyId=OTHER_COMPANY, tracked_entities=[], history_retention_days=1
    )
    assert response.status_code == 403
    # A's admin saving changes A's settings only.
    assert _save(app_client, token=make_token(), tracked_entities=["lead"], history_retention_days=7).status_code == 200
    b_settings = CompanySettings.objects.get(company__pipedrive_company_id=OTHER_COMPANY)
    assert b_settings.tracked_entities == ["deal", "person"] and b_settings.history_retention_days == 90
    # And A's token cannot open B's settings page.
    assert _page(client, token=make_token(), companyId=OTHER_COMPANY).status_code == 403


def test_saving_needs_no_csrf_cookie_but_a_bearer_token(app_client, seeded_company) -> None:
    seeded_company()
    response = app_client.post(
        "/extensions/settings/",
        {"tracked_entities": ["deal"], "history_retention_days": 30},
        content_type="application/json",
    )
    assert response.status_code == 401  # refused for lack of the JWT, not for lack of a CSRF token
