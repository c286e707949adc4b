"""Panel authentication: only a valid HS256 Pipedrive JWT whose claims match the request gets in."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from extensions.panel_auth import (
    PanelAuthError,
    PanelForbidden,
    panel_context_resolve,
    panel_token_verify,
)

from .conftest import ADMIN, COMPANY, JWT_SECRET, OTHER_COMPANY, make_token, panel_query

pytestmark = pytest.mark.django_db

EXT = ("deal_panel",)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unsigned_token() -> str:
    now = int(time.time())
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'userId': ADMIN, 'companyId': COMPANY, 'exp': now + 300})}."


def _rs256_token() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return jwt.encode({"userId": ADMIN, "companyId": COMPANY, "exp": int(time.time()) + 300}, pem, algorithm="RS256")


BAD_TOKENS = {
    "missing": "",
    "garbage": "not-a-jwt",
    "expired": make_token(expires_in=-120),
    "wrong-secret": make_token(secret="some-other-secret-that-is-long-enough-000"),
    "alg-none": _unsigned_token(),
    "hs512": make_token(algorithm="HS512"),
    "rs256": _rs256_token(),
    "no-exp-too-old": make_token(expires_in=None, claims={"iat": int(time.time()) - 3600}),
    "no-exp-issued-in-the-future": make_token(expires_in=None, claims={"iat": int(time.time()) + 600}),
    "no-exp-iat-not-a-number": make_token(expires_in=None, claims={"iat": "yesterday"}),
    "no-claims": jwt.encode({"exp": int(time.time()) + 300}, JWT_SECRET, algorithm="HS256"),
    "conflicting-claims": make_token(claims={"user_id": ADMIN + 1}),
    "negative-id": make_token(claims={"userId": -5}),
}


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_bad_tokens_are_rejected_by_the_verifier(name: str) -> None:
    with pytest.raises(PanelAuthError):
        panel_token_verify(token=BAD_TOKENS[name], extensions=EXT)


def test_a_good_token_gives_its_claims_and_both_claim_spellings_work() -> None:
    assert panel_token_verify(token=make_token(), extensions=EXT).company_id == COMPANY
    snake = jwt.encode(
        {"user_id": str(ADMIN), "company_id": COMPANY, "exp": int(time.time()) + 60}, JWT_SECRET, algorithm="HS256"
    )
    claims = panel_token_verify(token=snake, extensions=EXT)
    assert (claims.user_id, claims.company_id) == (ADMIN, COMPANY)


def test_small_clock_skew_is_tolerated_but_not_more() -> None:
    assert (
        panel_token_verify(token=make_token(expires_in=-3), extensions=EXT).user_id == ADMIN
    )  # within the 10 s leeway
    with pytest.raises(PanelAuthError, match="expired"):
        panel_token_verify(token=make_token(expires_in=-30), extensions=EXT)


def test_the_secret_is_the_setting(settings) -> None:
    token = make_token()
    settings.PIPEDRIVE_JWT_SECRET = "rotated-secret-rotated-secret-rotated-secret"
    with pytest.raises(PanelAuthError):
        panel_token_verify(token=token, extensions=EXT)


# --- token policy (extensions/README.md "Token policy") --------------------------------------------------


def test_exp_is_not_required_a_fresh_iat_is_enough() -> None:
    """Pipedrive documents only userId/companyId; the public verifiers (jsonwebtoken's and Nimbus's
    defaults) check exp only when it is there. A token without exp is bounded by its iat instead."""
    fresh = make_token(expires_in=None)  # iat now, no exp
    assert panel_token_verify(token=fresh, extensions=EXT).user_id == ADMIN


def test_a_token_with_neither_exp_nor_iat_is_accepted_unless_expiry_is_required(settings) -> None:
    bare = jwt.encode({"userId": ADMIN, "companyId": COMPANY}, JWT_SECRET, algorithm="HS256")
    assert panel_token_verify(token=bare, extensions=EXT).company_id == COMPANY
    settings.EXTENSIONS_JWT_REQUIRE_EXPIRY = True
    with pytest.raises(PanelAuthError, match="no exp"):
        panel_token_verify(token=bare, extensions=EXT)
    assert panel_token_verify(token=make_token(), extensions=EXT).user_id == ADMIN  # exp present: fine


def test_max_age_is_the_setting(settings) -> None:
    ten_minutes_old = make_token(expires_in=None, claims={"iat": int(time.time()) - 600})
    assert panel_token_verify(token=ten_minutes_old, extensions=EXT).user_id == ADMIN  # default 900 s
    settings.EXTENSIONS_JWT_MAX_AGE_SECONDS = 300
    with pytest.raises(PanelAuthError, match="too old"):
        panel_token_verify(token=ten_minutes_old, extensions=EXT)


# --- one JWT secret per extension -------------------------------------------------------------------------

SECRET_A = "deal-json-panel-secret-" + "a" * 32
SECRET_B = "person-json-panel-secret-" + "b" * 32


@pytest.fixture
def two_secrets(settings):
    settings.PIPEDRIVE_EXTENSION_JWT_SECRETS = {"deal_json_panel": SECRET_A, "person_json_panel": SECRET_B}


def test_two_extensions_with_different_secrets_both_verify(two_secrets) -> None:
    assert panel_token_verify(token=make_token(secret=SECRET_A), extensions=("deal_json_panel",)).user_id == ADMIN
    assert panel_token_verify(token=make_token(secret=SECRET_B), extensions=("person_json_panel",)).user_id == ADMIN


def test_a_token_signed_with_the_other_extensions_secret_is_refused(two_secrets) -> None:
    with pytest.raises(PanelAuthError):
        panel_token_verify(token=make_token(secret=SECRET_B), extensions=("deal_json_panel",))
    with pytest.raises(PanelAuthError):
        panel_token_verify(token=make_token(secret=SECRET_A), extensions=("person_json_panel",))
    # nor the fallback secret, once the extension has its own
    with pytest.raises(PanelAuthError):
        panel_token_verify(token=make_token(secret=JWT_SECRET), extensions=("deal_json_panel",))


def test_an_extension_without_its_own_secret_uses_the_fallback(two_secrets, settings) -> None:
    from extensions.panel_auth import extension_jwt_secret

    assert extension_jwt_secret("deal_json_panel") == SECRET_A
    assert extension_jwt_secret("deal_panel") == settings.PIPEDRIVE_JWT_SECRET == JWT_SECRET
    assert panel_token_verify(token=make_token(), extensions=("deal_panel",)).user_id == ADMIN
    with pytest.raises(ValueError):
        extension_jwt_secret("no_such_extension")


def test_the_json_panel_views_use_their_own_secrets(client, seeded_company, two_secrets) -> None:
    world = seeded_company()
    deal_ok = client.get(
        f"/extensions/json-panels/deal/?{panel_query(record_id=world['deal']['id'], token=make_token(secret=SECRET_A))}"
    )
    person_ok = client.get(
        "/extensions/json-panels/person/?"
        + panel_query(resource="person", record_id=world["person"]["id"], token=make_token(secret=SECRET_B))
    )
    assert deal_ok.status_code == 200 and person_ok.status_code == 200
    crossed = client.get(
        f"/extensions/json-panels/deal/?{panel_query(record_id=world['deal']['id'], token=make_token(secret=SECRET_B))}"
    )
    assert crossed.status_code == 401
    # the custom panel (no secret of its own) still verifies with the fallback
    page = client.get(f"/extensions/panels/deal/?{panel_query(record_id=world['deal']['id'])}")
    assert page.status_code == 200


@pytest.mark.parametrize(
    "params",
    [{"userId": str(ADMIN + 1)}, {"companyId": str(OTHER_COMPANY)}, {"user_id": "x"}, {"companyId": ""}],
)
def test_claims_that_disagree_with_the_query_are_forbidden(params: dict[str, str]) -> None:
    with pytest.raises(PanelForbidden):
        panel_context_resolve(token=make_token(), params=params, extensions=EXT)


@pytest.mark.parametrize("path", ["/extensions/panels/deal/", "/extensions/panels/person/", "/extensions/settings/"])
@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_pages_refuse_bad_tokens_with_a_readable_page(client, path: str, name: str) -> None:
    resource = "person" if "person" in path else "deal"
    response = client.get(f"{path}?{panel_query(resource=resource, token=BAD_TOKENS[name])}")

    assert response.status_code == 401
    body = response.content.decode()
    assert "could not be verified" in body
    assert "/static/vendor/app-extensions-sdk/index.umd.js" in body  # still initializes: never a blank iframe
    assert not response.cookies


@pytest.mark.parametrize("path", ["/extensions/json-panels/deal/", "/extensions/json-panels/person/"])
@pytest.mark.parametrize("name", ["missing", "expired", "wrong-secret", "alg-none", "hs512", "rs256"])
def test_json_panels_refuse_bad_tokens_in_pipedrive_error_format(client, path: str, name: str) -> None:
    resource = "person" if "person" in path else "deal"
    response = client.get(f"{path}?{panel_query(resource=resource, token=BAD_TOKENS[name])}")

    assert response.status_code == 401
    assert set(response.json()) == {"error"} and response.json()["error"]["title"]


def test_query_mismatch_is_refused_on_every_surface(client, seeded_company) -> None:
    seeded_company()
    token = make_token()  # company COMPANY, user ADMIN
    for path, resource in [
        ("/extensions/panels/deal/", "deal"),
        ("/extensions/json-panels/deal/", "deal"),
        ("/extensions/settings/", "deal"),
    ]:
        response = client.get(f"{path}?{panel_query(resource=resource, token=token, companyId=OTHER_COMPANY)}")
        assert response.status_code == 403, path
        response = client.get(f"{path}?{panel_query(resource=resource, token=token, userId=ADMIN + 7)}")
        assert response.status_code == 403, path


@pytest.mark.parametrize(
    ("bearer", "status"),
    [
        (None, 401),
        (BAD_TOKENS["expired"], 401),
        (BAD_TOKENS["alg-none"], 401),
        (BAD_TOKENS["hs512"], 401),
        (BAD_TOKENS["wrong-secret"], 401),
    ],
)
def test_actions_need_a_valid_bearer_token(app_client, seeded_company, pipedrive, bearer, status) -> None:
    world = seeded_company()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {bearer}"} if bearer else {}
    body = {"resource": "deal", "selectedIds": world["deal"]["id"], "content": "sneaky"}
    response = app_client.post("/extensions/actions/notes/", body, content_type="application/json", **headers)

    assert response.status_code == status
    assert response.json()["ok"] is False
    assert pipedrive.company_notes(COMPANY) == []


def test_a_token_in_the_action_query_or_body_is_not_accepted(app_client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    token = make_token()
    body = {"resource": "deal", "selectedIds": world["deal"]["id"], "content": "x", "token": token}
    response = app_client.post(f"/extensions/actions/notes/?token={token}", body, content_type="application/json")
    assert response.status_code == 401
    assert pipedrive.company_notes(COMPANY) == []


def test_a_company_that_never_installed_sees_the_install_state(client, pipedrive) -> None:
    response = client.get(f"/extensions/panels/deal/?{panel_query(company_id=9999, user_id=1)}")
    assert response.status_code == 200
    assert "Install the app" in response.content.decode()
    json_response = client.get(f"/extensions/json-panels/deal/?{panel_query(company_id=9999, user_id=1)}")
    assert json_response.status_code == 403 and "Install" in json_response.json()["error"]["title"]
    assert pipedrive.requests == []


def test_actions_take_the_tokens_of_the_iframes_that_call_them(app_client, seeded_company, pipedrive, settings) -> None:
    """ "Add note" is called from the deal and person panels (GET_SIGNED_TOKEN signs with that panel's
    secret); a JSON panel's or the settings page's token is not one of theirs."""
    settings.PIPEDRIVE_EXTENSION_JWT_SECRETS = {
        "deal_panel": "deal-panel-" + "1" * 32,
        "person_panel": "person-panel-" + "2" * 32,
        "organization_panel": "organization-panel-" + "5" * 32,
        "deal_json_panel": "deal-json-" + "3" * 32,
        "settings_page": "settings-" + "4" * 32,
    }
    world = seeded_company()

    def post(secret: str, resource: str, record_id: int) -> int:
        body = {"resource": resource, "selectedIds": record_id, "content": f"from {resource}"}
        headers = {"HTTP_AUTHORIZATION": f"Bearer {make_token(secret=secret)}"}
        return app_client.post(
            "/extensions/actions/notes/", body, content_type="application/json", **headers
        ).status_code

    assert post("deal-panel-" + "1" * 32, "deal", world["deal"]["id"]) == 201
    assert post("person-panel-" + "2" * 32, "person", world["person"]["id"]) == 201
    assert post("deal-json-" + "3" * 32, "deal", world["deal"]["id"]) == 401
    assert post("settings-" + "4" * 32, "deal", world["deal"]["id"]) == 401
    assert post(JWT_SECRET, "deal", world["deal"]["id"]) == 401  # the fallback, once every panel has its own
    assert len(pipedrive.company_notes(COMPANY)) == 2
    settings_save = app_client.post(
        "/extensions/settings/",
        {"tracked_entities": ["deal"], "history_retention_days": 30},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {make_token(secret='deal-panel-' + '1' * 32)}",
    )
    assert settings_save.status_code == 401
