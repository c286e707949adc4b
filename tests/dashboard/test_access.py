"""Only staff who passed TOTP reach the dashboard; sign-up is closed; the admin goes through allauth."""

from __future__ import annotations

import pytest
from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY
from allauth.mfa.models import Authenticator
from django.core.management import call_command
from django.test import Client

from .conftest import PASSWORD, make_user, signed_in_client, totp_code

pytestmark = pytest.mark.django_db

DASHBOARD_URLS = ["/dashboard/", "/dashboard/companies/", "/dashboard/events/", "/dashboard/audit/"]


@pytest.mark.parametrize("url", DASHBOARD_URLS)
def test_anonymous_visitor_is_sent_to_sign_in(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("url", DASHBOARD_URLS)
def test_non_staff_user_is_refused_even_with_totp(url: str) -> None:
    user, _ = make_user(email="someone@example.test", staff=False, with_totp=True)
    response = signed_in_client(user).get(url)
    assert response.status_code == 403


def test_anonymous_post_to_an_action_does_nothing(client: Client, make_company) -> None:
    company = make_company()
    response = client.post(f"/dashboard/companies/{company.pk}/actions/uninstall/", {"confirmation": company.name})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert type(company).objects.filter(pk=company.pk).exists()


def test_staff_without_totp_is_sent_to_set_it_up() -> None:
    user, _ = make_user(email="new-ops@example.test", staff=True, with_totp=False)
    response = signed_in_client(user, passed_mfa=False).get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/totp/activate/"


def test_a_session_that_skipped_the_second_factor_is_signed_out() -> None:
    user, _ = make_user(email="ops2@example.test", staff=True, with_totp=True)
    client = signed_in_client(user, passed_mfa=False)  # e.g. a password-only login form
    response = client.get("/dashboard/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session


def test_operator_reaches_the_dashboard(operator_client: Client) -> None:
    assert operator_client.get("/dashboard/").status_code == 200


def test_sign_in_with_email_password_and_totp_code(operator) -> None:
    client = Client()
    response = client.post("/accounts/login/", {"login": operator.email, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/authenticate/"
    assert client.get("/dashboard/").status_code == 302  # not signed in until the code is given
    response = client.post(
        "/accounts/2fa/authenticate/", {"code": "000000" if totp_code(operator.totp_secret) != "000000" else "111111"}
    )
    assert response.status_code == 200  # wrong code: the form again
    response = client.post("/accounts/2fa/authenticate/", {"code": totp_code(operator.totp_secret)})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200


@pytest.mark.django_db(transaction=True)  # allauth signals the activation on commit, inside the request
def test_first_sign_in_asks_for_the_password_once_and_ends_on_the_dashboard() -> None:
    user, _ = make_user(email="fresh@example.test", staff=True, with_totp=False)
    client = Client()
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD}, follow=True)
    # Straight on to the second factor, without a premature "Successfully signed in".
    assert response.redirect_chain[-1][0] == "/accounts/2fa/totp/activate/"
    shown = [str(m) for m in response.context["messages"]]
    assert shown == ["Password accepted. One more step: set up two-factor authentication."]
    # The password was typed a moment ago: setting up TOTP does not ask for it again.
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = page.context["form"].secret
    response = client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret)}, follow=True)
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    # The recovery codes are shown once, with the way on to the dashboard.
    assert response.redirect_chain[-1][0] == "/accounts/2fa/recovery-codes/"
    html = response.content.decode()
    assert "Continue to the dashboard" in html and 'href="/dashboard/"' in html
    assert client.get("/dashboard/").status_code == 200


def test_adding_an_authenticator_later_still_asks_for_the_password() -> None:
    """Only a sign-in of the last few minutes counts: an old session re-authenticates."""
    user, _ = make_user(email="later@example.test", staff=True, with_totp=False)
    client = Client()
    client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    session = client.session
    records = session[AUTHENTICATION_METHODS_SESSION_KEY]
    for record in records:
        record["at"] -= 3600  # signed in an hour ago
    session[AUTHENTICATION_METHODS_SESSION_KEY] = records
    session.save()
    response = client.get("/accounts/2fa/totp/activate/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/reauthenticate/")


def test_wrong_password_is_refused(operator) -> None:
    client = Client()
    response = client.post("/accounts/login/", {"login": operator.email, "password": "nope"})
    assert response.status_code == 200
    assert client.get("/dashboard/").status_code == 302


def test_sign_up_is_closed(client: Client) -> None:
    assert b"sign up" not in client.get("/accounts/login/").content.lower()
    response = client.get("/accounts/signup/")
    assert response.status_code == 200
    assert b"Sign Up Closed" in response.content  # allauth's signup_closed page
    response = client.post(
        "/accounts/signup/", {"email": "x@example.test", "password1": PASSWORD, "password2": PASSWORD}
    )
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(email="x@example.test").exists()


def test_admin_login_goes_through_allauth(client: Client) -> None:
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_admin_needs_the_second_factor_too(operator) -> None:
    assert signed_in_client(operator, passed_mfa=False).get("/admin/").status_code == 302
    assert signed_in_client(operator).get("/admin/").status_code == 200


def test_create_operator_from_env(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    monkeypatch.setenv("OPERATOR_PASSWORD", PASSWORD)
    call_command("create_operator", "--email", "First.Ops@Example.test")
    user = get_user_model().objects.get(email="first.ops@example.test")
    assert user.is_staff and user.check_password(PASSWORD) and not user.is_superuser
    assert EmailAddress.objects.get(user=user).verified
    assert "two-factor" in capsys.readouterr().out
    client = Client()
    response = client.post("/accounts/login/", {"login": "first.ops@example.test", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/dashboard/")["Location"] == "/accounts/2fa/totp/activate/"


def test_create_operator_refuses_a_weak_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.management.base import CommandError

    monkeypatch.setenv("OPERATOR_PASSWORD", "123")
    with pytest.raises(CommandError):
        call_command("create_operator", "--email", "weak@example.test")
