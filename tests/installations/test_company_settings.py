from __future__ import annotations

import pytest

from pipedrive_app.installations import signals
from pipedrive_app.installations.models import CompanySettings
from pipedrive_app.installations.services import InvalidSettings, company_settings_update

pytestmark = pytest.mark.django_db


def test_install_creates_default_settings(pipedrive, install_user) -> None:
    installation = install_user()
    row = CompanySettings.objects.get(company=installation.company)
    assert row.tracked_entities == ["deal", "person"]
    assert row.history_retention_days == 90


def test_admin_saves_settings_and_hooks_run_after_commit(
    pipedrive, install_user, django_capture_on_commit_callbacks
) -> None:
    admin = install_user(1001, 501, is_admin=True)
    seen: list[int] = []

    def receiver(sender: object, *, company_id: int, **kwargs: object) -> None:
        seen.append(company_id)

    signals.company_settings_changed.connect(receiver, dispatch_uid="test.seen")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            row = company_settings_update(
                company=admin.company,
                tracked_entities=["person", "deal", "activity"],
                history_retention_days=30,
                updated_by=admin,
            )
    finally:
        signals.company_settings_changed.disconnect(dispatch_uid="test.seen")
    assert row.tracked_entities == ["deal", "person", "activity"]  # canonical order
    assert row.history_retention_days == 30 and row.updated_by_user_id == 501
    assert seen == [admin.company_id]


def test_non_admin_cannot_change_settings(pipedrive, install_user) -> None:
    install_user(1001, 501, is_admin=True)
    user = install_user(1001, 502, is_admin=False)
    with pytest.raises(PermissionError):
        company_settings_update(
            company=user.company, tracked_entities=["deal"], history_retention_days=10, updated_by=user
        )
    assert CompanySettings.objects.get(company=user.company).tracked_entities == ["deal", "person"]


@pytest.mark.parametrize(("entities", "days"), [(["deal", "bogus"], 30), (["deal"], 0), (["deal"], 100000)])
def test_bad_settings_change_nothing(pipedrive, install_user, entities, days) -> None:
    admin = install_user()
    with pytest.raises(InvalidSettings):
        company_settings_update(
            company=admin.company, tracked_entities=entities, history_retention_days=days, updated_by=admin
        )
    assert CompanySettings.objects.get(company=admin.company).history_retention_days == 90
