"""Bad input is a clear 4xx, never a 5xx, and acknowledged webhook input never becomes a dead event.

The specific inputs of issue 11 as regression tests, then a hypothesis suite over the endpoints'
inputs (the extension pages and JSON panels, the extension actions' bodies and headers, the settings
save, the uninstall notice, the webhook receiver's credentials and body), which prints how many
inputs it tried per endpoint.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipedrive_app.installations.models import Installation
from pipedrive_app.webhooks.models import InboxEvent
from tests.extensions.conftest import (  # noqa: F401 - fixtures
    ADMIN,
    COMPANY,
    _extension_settings,
    app_client,
    make_token,
    seeded_company,
)
from tests.installations.conftest import install_user, start_install  # noqa: F401 - fixture
from tests.webhooks.conftest import basic, load_event, post_event, receiver_path, webhook_company  # noqa: F401

from .conftest import TRIED  # counted here, printed in the terminal summary

pytestmark = pytest.mark.django_db

DEEP = b'{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
SEEDED: set[str] = set()


def _post(client: Client, path: str, body: bytes, token: str | None = None, **headers: Any):
    if token is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client.generic("POST", path, body, content_type="application/json", **headers)


# --- regressions: the inputs named in issue 11 -------------------------------------------------------


@pytest.mark.parametrize("path", ["/extensions/actions/notes/", "/extensions/settings/"])
def test_50000_deep_json_without_a_token_is_401(app_client, path) -> None:  # noqa: F811
    response = _post(app_client, path, DEEP)
    assert response.status_code == 401
    assert len(response.content) < 200  # a short JSON answer, no traceback


@pytest.mark.parametrize("path", ["/extensions/actions/notes/", "/extensions/settings/"])
def test_50000_deep_json_with_a_valid_token_is_400(app_client, seeded_company, path) -> None:  # noqa: F811
    seeded_company()
    response = _post(app_client, path, DEEP, token=make_token())
    assert response.status_code == 400
    assert response.json()["ok"] is False


@pytest.mark.parametrize("selected", ["²", "٣", "1" * 5000, "9" * 20, "1\n", "-1", "1.5"])
def test_odd_selected_ids_in_a_note_are_400(app_client, seeded_company, pipedrive, selected) -> None:  # noqa: F811
    seeded_company()
    body = json.dumps({"resource": "deal", "selectedIds": selected, "content": "hi"}).encode()
    response = _post(app_client, "/extensions/actions/notes/", body, token=make_token())
    assert response.status_code == 400, response.content
    assert pipedrive.company_notes(COMPANY) == []


@pytest.mark.parametrize("days", ["²", "1" * 5000, "٣٠", "30\n", True, None, 1.5])
def test_odd_retention_days_are_400(app_client, seeded_company, days) -> None:  # noqa: F811
    seeded_company()
    body = json.dumps({"tracked_entities": ["deal"], "history_retention_days": days}).encode()
    response = _post(app_client, "/extensions/settings/", body, token=make_token(user_id=ADMIN))
    assert response.status_code == 400, response.content


@pytest.mark.parametrize(
    "header",
    [
        "Basic " + base64.b64encode(b"user\n:pass").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Basic " + "A" * 5000,
        "Basic ²",
        "Bearer x",
    ],
)
def test_odd_basic_credentials_at_the_receiver_are_401(client, webhook_company, header) -> None:  # noqa: F811
    _, state = webhook_company
    body = json.dumps(load_event("deal.change")).encode()
    response = client.generic(
        "POST", receiver_path(state), body, content_type="application/json", HTTP_AUTHORIZATION=header
    )
    assert response.status_code == 401
    assert InboxEvent.objects.count() == 0


# --- the hypothesis suite ------------------------------------------------------------------------------

_text = st.text(max_size=40)
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text
_json = st.recursive(_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(_text, c, max_size=3), max_leaves=12)
_ids = st.one_of(
    st.integers(),
    st.text(alphabet="0123456789²٣ \n-+.,", max_size=30),
    st.just("1" * 5000),
    _json,
)
_fuzz = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@_fuzz
@given(
    body=st.fixed_dictionaries(
        {"resource": st.sampled_from(["deal", "person", "activity", ""]) | _text},
        optional={"selectedIds": _ids, "content": _json, "companyId": _ids, "userId": _ids},
    ),
    raw=st.none() | st.binary(max_size=200),
    authorization=st.none() | st.just("valid") | _text,
)
def test_fuzz_note_action(app_client, seeded_company, body, raw, authorization) -> None:  # noqa: F811
    if "notes" not in SEEDED:
        seeded_company()
        SEEDED.add("notes")
    headers = {}
    if authorization is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {make_token()}" if authorization == "valid" else authorization
    payload = raw if raw is not None else json.dumps(body).encode()
    response = app_client.generic(
        "POST", "/extensions/actions/notes/", payload, content_type="application/json", **headers
    )
    TRIED["extensions/actions/notes"] += 1
    assert response.status_code < 500, (payload[:200], response.content[:300])


@_fuzz
@given(
    entities=st.lists(_text, max_size=4) | _json,
    days=_ids,
    raw=st.none() | st.binary(max_size=200),
)
def test_fuzz_settings_save(app_client, seeded_company, entities, days, raw) -> None:  # noqa: F811
    if "settings" not in SEEDED:
        seeded_company()
        SEEDED.add("settings")
    payload = (
        raw if raw is not None else json.dumps({"tracked_entities": entities, "history_retention_days": days}).encode()
    )
    response = _post(app_client, "/extensions/settings/", payload, token=make_token(user_id=ADMIN))
    TRIED["extensions/settings (save)"] += 1
    assert response.status_code < 500, (payload[:200], response.content[:300])


_dates = st.one_of(_json, st.dates().map(str), st.just("2031-02-30"), st.just("２０３０-01-01"), st.just("9" * 5000))


@_fuzz
@given(
    body=st.fixed_dictionaries(
        {"resource": st.sampled_from(["deal", "person", "organization", "activity", ""]) | _text},
        optional={
            "selectedIds": _ids,
            "subject": _json,
            "type": st.sampled_from(["call", "meeting", "party"]) | _json,
            "due_date": _dates,
            "due_time": st.sampled_from(["09:30", "24:00", "", "9:30\n"]) | _json,
            "note": _json,
            "companyId": _ids,
        },
    ),
    raw=st.none() | st.binary(max_size=200),
)
def test_fuzz_follow_up_action_and_json_modal(app_client, seeded_company, body, raw) -> None:  # noqa: F811
    """The follow-up modal's action and the JSON modal's submit, with a valid token: never a 5xx."""
    if "follow-up" not in SEEDED:
        seeded_company()
        SEEDED.add("follow-up")
    payload = raw if raw is not None else json.dumps(body).encode()
    response = _post(app_client, "/extensions/actions/follow-up/", payload, token=make_token())
    TRIED["extensions/actions/follow-up"] += 1
    assert response.status_code < 500, (payload[:200], response.content[:300])
    query = {"resource": str(body.get("resource", "")), "selectedIds": "1", "token": make_token()}
    modal_values = {f"follow_up_{key}": value for key, value in body.items()}
    modal_payload = raw if raw is not None else json.dumps(modal_values).encode()
    answer = app_client.generic(
        "POST",
        "/extensions/json-modals/follow-up/?" + "&".join(f"{k}={v}" for k, v in query.items()),
        modal_payload,
        content_type="application/json",
    )
    TRIED["extensions/json-modals/follow-up (POST)"] += 1
    assert answer.status_code < 500, (modal_payload[:200], answer.content[:300])


@_fuzz
@given(
    form=st.dictionaries(
        st.sampled_from(["ticket", "subject", "type", "due_date", "due_time", "note"]),
        st.one_of(_text, st.just("1" * 5000), st.just("²")),
        max_size=6,
    ),
)
def test_fuzz_follow_up_link_form(app_client, seeded_company, form) -> None:  # noqa: F811
    """The link action page's form POST with any fields and tickets: a page or a 4xx, never a 5xx."""
    if "follow-up-link" not in SEEDED:
        seeded_company()
        SEEDED.add("follow-up-link")
    response = app_client.post("/extensions/links/follow-up/", form)
    TRIED["extensions/links/follow-up (POST)"] += 1
    assert response.status_code < 500, (form, response.content[:300])


@_fuzz
@given(
    meta=st.dictionaries(
        st.sampled_from(["id", "entity_id", "company_id", "timestamp", "action", "entity", "version", "attempt"]), _json
    ),
    data=_json,
    previous=_json,
    authorization=st.none() | st.just("valid") | _text,
)
def test_fuzz_webhook_receiver(client, webhook_company, post_event, meta, data, previous, authorization) -> None:  # noqa: F811
    _, state = webhook_company
    payload: dict[str, Any] = load_event("deal.change")
    payload["meta"].update(meta)
    payload["data"], payload["previous"] = data, previous
    auth = basic(state.http_auth_user, state.http_auth_password) if authorization in (None, "valid") else authorization
    response = post_event(state, payload, auth=auth)
    TRIED["webhooks/pipedrive/<key>"] += 1
    assert response.status_code < 500, (payload, response.content[:300])
    # Acknowledged input is processed, skipped or kept as unprocessable, never dead.
    assert not InboxEvent.objects.filter(status=InboxEvent.Status.DEAD).exists()


_PAGES = [
    "/extensions/panels/deal/",
    "/extensions/panels/person/",
    "/extensions/panels/organization/",
    "/extensions/json-panels/deal/",
    "/extensions/json-panels/person/",
    "/extensions/json-panels/organization/",
    "/extensions/settings/",
    "/extensions/modals/follow-up/",
    "/extensions/links/follow-up/",
    "/extensions/json-modals/follow-up/",
]


@_fuzz
@given(
    path=st.sampled_from(_PAGES),
    params=st.dictionaries(
        st.sampled_from(["id", "userId", "companyId", "selectedIds", "resource", "view", "theme", "isShared"]),
        st.one_of(_text, st.just("1" * 5000), st.just("²"), st.integers().map(str)),
        max_size=8,
    ),
    token=st.none() | st.just("valid") | _text,
)
def test_fuzz_extension_pages(app_client, seeded_company, path, params, token) -> None:  # noqa: F811
    """What Pipedrive appends to an iframe or JSON panel URL, fuzzed: a page or a 4xx, never a 5xx."""
    if "pages" not in SEEDED:
        seeded_company()
        SEEDED.add("pages")
    query = dict(params)
    if token is not None:
        query["token"] = make_token() if token == "valid" else token
    response = app_client.get(path, query)
    TRIED["extensions pages and JSON panels (GET)"] += 1
    assert response.status_code < 500, (path, query, response.content[:300])


@_fuzz
@given(
    body=st.fixed_dictionaries(
        {},
        optional={"client_id": _json, "company_id": _ids, "user_id": _ids, "timestamp": _json, "extra": _json},
    ),
    raw=st.none() | st.binary(max_size=200),
)
def test_fuzz_uninstall_notice(client, install_user, pipedrive, body, raw) -> None:  # noqa: F811
    """Pipedrive's uninstall DELETE with valid Basic credentials and a fuzzed body: never a 5xx."""
    credentials = f"{pipedrive.client_id}:{pipedrive.client_secret}".encode()
    payload = raw if raw is not None else json.dumps(body).encode()
    response = client.generic(
        "DELETE",
        "/oauth/callback",
        payload,
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(credentials).decode(),
    )
    TRIED["oauth/callback (DELETE)"] += 1
    assert response.status_code < 500, (payload[:200], response.content[:300])


@_fuzz
@given(
    params=st.dictionaries(
        st.sampled_from(["code", "state", "error", "error_description", "extra"]),
        st.one_of(_text, st.just("x" * 5000), st.just("²"), st.just("a\nb"), st.just("user_denied")),
        max_size=4,
    ),
    with_state=st.booleans(),
)
def test_fuzz_oauth_callback(client, pipedrive, params, with_state) -> None:  # noqa: F811
    """The install callback's query, fuzzed (with or without a state this browser was issued): never a 5xx.

    The codes here are none Pipedrive issued, so the answer is a 4xx (or the user_denied page), and
    nothing is stored.
    """
    query = dict(params)
    if with_state:
        query["state"] = start_install(client)
    response = client.get("/oauth/callback", query)
    TRIED["oauth/callback (GET)"] += 1
    assert response.status_code < 500, (query, response.content[:300])
    assert not Installation.objects.exists()
