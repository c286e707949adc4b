"""The double's own behaviour, which other tests rely on: OAuth server, tokens, faults, isolation."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.facts import scopes as scope_facts
from tests.doubles.fixtures import pipedrive_double  # noqa: F401  (the fixture, for this module)
from tests.doubles.pipedrive_double import PipedriveDouble, issued_secrets
from tests.doubles.token_source import TEST_REDIRECT_URI, obtain_tokens

COMPANY = 1
USER = 10


@pytest.fixture
def double(pipedrive_double: PipedriveDouble) -> PipedriveDouble:  # noqa: F811
    pipedrive_double.add_company(COMPANY, name="Acme", domain="acme")
    pipedrive_double.add_user(COMPANY, USER)
    return pipedrive_double


def token_call(double: PipedriveDouble, auth: Any = None, **form: str) -> requests.Response:
    return requests.post(
        f"{double.base_url}/oauth/token",
        data=form,
        auth=auth if auth is not None else (double.client_id, double.client_secret),
        timeout=5,
    )


def me(double: PipedriveDouble, token: str) -> requests.Response:
    return requests.get(f"{double.base_url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=5)


# --- token endpoint ---------------------------------------------------------------------------------


def test_code_exchange(double: PipedriveDouble) -> None:
    code = double.issue_code(COMPANY, USER, redirect_uri=TEST_REDIRECT_URI)

    response = token_call(double, grant_type="authorization_code", code=code, redirect_uri=TEST_REDIRECT_URI)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == scope_facts.APP_SCOPES  # the one definition, shared with the sandbox
    assert body["expires_in"] == 3599
    assert body["api_domain"] == double.base_url
    assert len(body["access_token"]) >= 100
    assert {body["access_token"], body["refresh_token"], code} <= issued_secrets()
    assert double.grants == ["authorization_code"]
    assert me(double, body["access_token"]).json()["data"]["company_id"] == COMPANY


def test_token_endpoint_requires_client_credentials(double: PipedriveDouble) -> None:
    code = double.issue_code(COMPANY, USER, redirect_uri=TEST_REDIRECT_URI)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": TEST_REDIRECT_URI}

    wrong = token_call(double, auth=(double.client_id, "wrong"), **form)

    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert token_call(double, **form).status_code == 200  # the code was not burnt by the failed call


@pytest.mark.parametrize("problem", ["reused", "expired", "wrong_redirect", "unknown"])
def test_bad_codes_are_invalid_grant(double: PipedriveDouble, problem: str) -> None:
    code = double.issue_code(COMPANY, USER, redirect_uri=TEST_REDIRECT_URI)
    redirect_uri = TEST_REDIRECT_URI
    if problem == "reused":
        token_call(double, grant_type="authorization_code", code=code, redirect_uri=redirect_uri)
    elif problem == "expired":
        double.advance_clock(5 * 60 + 1)
    elif problem == "wrong_redirect":
        redirect_uri = "https://evil.example/cb"
    else:
        code = "not-a-code"

    response = token_call(double, grant_type="authorization_code", code=code, redirect_uri=redirect_uri)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert response.json()["error_description"]


def test_unsupported_grant_type(double: PipedriveDouble) -> None:
    response = token_call(double, grant_type="client_credentials")

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    assert double.take_contract_violations()  # not an enum value of the files either


def test_refresh_keeps_the_refresh_token_and_issues_a_new_access_token(double: PipedriveDouble) -> None:
    grant = obtain_tokens(double, COMPANY, USER)

    response = token_call(double, grant_type="refresh_token", refresh_token=grant["refresh_token"])

    assert response.status_code == 200
    refreshed = response.json()
    assert refreshed["refresh_token"] == grant["refresh_token"]
    assert refreshed["access_token"] != grant["access_token"]
    assert double.refresh_count == 1
    assert double.grants == ["authorization_code", "refresh_token"]
    assert me(double, refreshed["access_token"]).status_code == 200


def test_rotating_refresh_tokens_reject_the_exchanged_one(double: PipedriveDouble) -> None:
    double.rotate_refresh_tokens = True
    grant = obtain_tokens(double, COMPANY, USER)

    first = token_call(double, grant_type="refresh_token", refresh_token=grant["refresh_token"])
    again = token_call(double, grant_type="refresh_token", refresh_token=grant["refresh_token"])

    assert first.json()["refresh_token"] != grant["refresh_token"]
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert double.refresh_count == 1


def test_refresh_token_dies_after_sixty_idle_days(double: PipedriveDouble) -> None:
    grant = obtain_tokens(double, COMPANY, USER)
    double.advance_clock(59 * 86400)
    assert token_call(double, grant_type="refresh_token", refresh_token=grant["refresh_token"]).status_code == 200
    double.advance_clock(59 * 86400)  # the window restarted on use
    assert token_call(double, grant_type="refresh_token", refresh_token=grant["refresh_token"]).status_code == 200
    double.advance_clock(61 * 86400)

    response = token_call(double, grant_type="refresh_token", refresh_token=grant["refresh_token"])

    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_revoke_all_kills_refresh_and_access_tokens_and_webhooks(double: PipedriveDouble) -> None:
    grant = obtain_tokens(double, COMPANY, USER)
    requests.post(
        f"{double.base_url}/api/v1/webhooks",
        json={"subscription_url": "https://a.example/h", "event_action": "*", "event_object": "*", "name": "n"},
        headers={"Authorization": f"Bearer {grant['access_token']}"},
        timeout=5,
    )
    assert len(double.company_webhooks(COMPANY)) == 1

    double.revoke_all(COMPANY, USER)

    assert token_call(double, grant_type="refresh_token", refresh_token=grant["refresh_token"]).json() == {
        "error": "invalid_grant",
        "error_description": "refresh token is invalid, revoked or expired",
    }
    assert me(double, grant["access_token"]).status_code == 401
    assert double.company_webhooks(COMPANY) == []


def test_access_tokens_expire(double: PipedriveDouble) -> None:
    double.access_token_lifetime = 60
    grant = obtain_tokens(double, COMPANY, USER)
    assert grant["expires_in"] == 60
    assert me(double, grant["access_token"]).status_code == 200

    double.advance_clock(61)

    response = me(double, grant["access_token"])
    assert response.status_code == 401
    assert response.json() == {"success": False, "error": "unauthorized access", "errorCode": 401}


def test_expire_access_token(double: PipedriveDouble) -> None:
    grant = obtain_tokens(double, COMPANY, USER)
    double.expire_access_token(grant["access_token"])

    assert me(double, grant["access_token"]).status_code == 401
    assert double.access_tokens_of(COMPANY, USER) == []


def test_refresh_delay_widens_races_and_concurrent_refreshes_all_succeed(double: PipedriveDouble) -> None:
    grant = obtain_tokens(double, COMPANY, USER)
    double.refresh_delay = 0.3
    # Held after the delay, outside the lock: three refreshes meet there only if none waits on another.
    rendezvous = double.hold_until_together(["/oauth/token"], together=3, timeout=30)
    statuses: list[int] = []

    def refresh() -> None:
        statuses.append(
            token_call(double, grant_type="refresh_token", refresh_token=grant["refresh_token"]).status_code
        )

    threads = [threading.Thread(target=refresh) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200, 200, 200]
    assert rendezvous.met and rendezvous.most_together == 3  # they overlapped: not serialised by the lock
    assert double.refresh_count == 3


# --- revoke -----------------------------------------------------------------------------------------


def test_revoke_endpoint(double: PipedriveDouble) -> None:
    grant = obtain_tokens(double, COMPANY, USER)
    auth = (double.client_id, double.client_secret)

    def revoke(token: str, hint: str) -> int:
        response = requests.post(
            f"{double.base_url}/oauth/revoke", data={"token": token, "token_type_hint": hint}, auth=auth, timeout=5
        )
        return response.status_code

    assert revoke("unknown", "refresh_token") == 200
    assert revoke(grant["access_token"], "access_token") == 200
    assert me(double, grant["access_token"]).status_code == 401
    assert token_call(double, grant_type="refresh_token", refresh_token=grant["refresh_token"]).status_code == 200
    assert revoke(grant["refresh_token"], "refresh_token") == 200
    assert token_call(double, grant_type="refresh_token", refresh_token=grant["refresh_token"]).status_code == 400
    assert double.revoked == [
        ("refresh_token", "unknown"),
        ("access_token", f"{COMPANY}:{USER}"),
        ("refresh_token", f"{COMPANY}:{USER}"),
    ]
    no_auth = requests.post(f"{double.base_url}/oauth/revoke", data={"token": "x"}, timeout=5)
    assert no_auth.status_code == 401


# --- authorize --------------------------------------------------------------------------------------


def test_authorize_redirects_with_a_code_once_a_user_is_chosen(double: PipedriveDouble) -> None:
    url = f"{double.base_url}/oauth/authorize"
    params = {"client_id": double.client_id, "redirect_uri": TEST_REDIRECT_URI, "state": "s1"}
    assert requests.get(url, params=params, timeout=5).status_code == 200  # the consent page

    double.authorize_as(COMPANY, USER)
    response = requests.get(url, params=params, allow_redirects=False, timeout=5)

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == TEST_REDIRECT_URI
    assert query["state"] == ["s1"]
    exchanged = token_call(
        double, grant_type="authorization_code", code=query["code"][0], redirect_uri=TEST_REDIRECT_URI
    )
    assert exchanged.status_code == 200

    double.deny_authorizations()
    denied = requests.get(url, params=params, allow_redirects=False, timeout=5)
    assert parse_qs(urlsplit(denied.headers["Location"]).query) == {"error": ["user_denied"], "state": ["s1"]}


# --- REST data ---------------------------------------------------------------------------------------


def test_data_is_per_company(double: PipedriveDouble) -> None:
    double.add_user(2, 20)
    ours = double.add_deal(COMPANY, title="ours")
    theirs = double.add_deal(2, title="theirs")
    token = obtain_tokens(double, COMPANY, USER)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}

    listed = requests.get(f"{double.base_url}/api/v2/deals", headers=headers, timeout=5).json()["data"]
    other = requests.get(f"{double.base_url}/api/v2/deals/{theirs['id']}", headers=headers, timeout=5)

    assert [deal["id"] for deal in listed] == [ours["id"]]
    assert other.status_code == 404


def test_add_user_again_updates_the_user(double: PipedriveDouble) -> None:
    double.add_user(COMPANY, USER, name="Renamed", scopes="base")
    grant = obtain_tokens(double, COMPANY, USER)

    assert grant["scope"] == "base"
    assert me(double, grant["access_token"]).json()["data"]["name"] == "Renamed"


def test_unknown_rest_path_is_404_and_flagged(double: PipedriveDouble) -> None:
    token = obtain_tokens(double, COMPANY, USER)["access_token"]
    response = requests.get(
        f"{double.base_url}/api/v1/nothing", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )

    assert response.status_code == 404
    assert double.take_contract_violations()


# --- fault injection ---------------------------------------------------------------------------------


def test_fail_next_answers_then_recovers(double: PipedriveDouble) -> None:
    token = obtain_tokens(double, COMPANY, USER)["access_token"]
    double.fail_next("/api/v1/users/me", status=503, body=b"<html>down</html>", times=2, headers={"X-Why": "test"})

    first, second, third = (me(double, token) for _ in range(3))

    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 200)
    assert first.content == b"<html>down</html>" and first.headers["X-Why"] == "test"
    assert len(double.requests_to("/api/v1/users/me", "GET")) == 3


def test_fail_next_with_status_zero_drops_the_connection(double: PipedriveDouble) -> None:
    double.fail_next("/oauth/token", status=0)

    with pytest.raises(requests.ConnectionError):
        token_call(double, grant_type="refresh_token", refresh_token="x")
    assert double.grants == ["refresh_token"]


def test_rate_limit_next_headers(double: PipedriveDouble) -> None:
    token = obtain_tokens(double, COMPANY, USER)["access_token"]
    double.rate_limit_next("/api/v1/users/me", retry_after=None, reset=30)

    response = me(double, token)

    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert response.headers["x-ratelimit-reset"] == "30"
    assert response.headers["x-ratelimit-remaining"] == "0"


def test_held_requests_sent_together_meet_and_are_answered(double: PipedriveDouble) -> None:
    token = obtain_tokens(double, COMPANY, USER)["access_token"]
    stages = [double.add_stage(COMPANY, name=f"Stage {n}")["id"] for n in (1, 2, 3)]
    paths = [f"/api/v2/stages/{stage}" for stage in stages]
    rendezvous = double.hold_until_together(paths, timeout=30)
    answers: list[int] = []

    def get(path: str) -> None:
        response = requests.get(f"{double.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=60)
        answers.append(response.status_code)

    threads = [threading.Thread(target=get, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert answers == [200, 200, 200]
    assert rendezvous.met and rendezvous.most_together == 3


def test_held_requests_sent_one_after_another_never_meet(double: PipedriveDouble) -> None:
    token = obtain_tokens(double, COMPANY, USER)["access_token"]
    stages = [double.add_stage(COMPANY, name=f"Stage {n}")["id"] for n in (1, 2)]
    paths = [f"/api/v2/stages/{stage}" for stage in stages]
    rendezvous = double.hold_until_together(paths, timeout=0.2)  # each waits this long, alone

    for path in paths:
        assert requests.get(f"{double.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=5).ok

    assert not rendezvous.met and rendezvous.most_together == 1


def test_recorded_requests_keep_tokens_out_of_repr(double: PipedriveDouble) -> None:
    token = obtain_tokens(double, COMPANY, USER)["access_token"]
    me(double, token)

    [recorded] = double.requests_to("/api/v1/users/me")

    assert recorded.bearer_token == token
    assert token not in repr(recorded)
    assert "code=" not in repr(double.requests_to("/oauth/token")[0])


def test_uninstall_notification(double: PipedriveDouble) -> None:
    headers, body = double.uninstall_notification(COMPANY, USER)

    assert headers["Authorization"].startswith("Basic ")
    assert b'"company_id": 1' in body and b'"user_id": 10' in body


def test_stop_does_not_wait_for_a_sleeping_handler() -> None:
    double = PipedriveDouble().start()
    double.fail_next("/api/v1/users/me", status=0, delay=60)
    threads_before = set(threading.enumerate())
    with pytest.raises(requests.Timeout):
        requests.get(f"{double.base_url}/api/v1/users/me", headers={"Authorization": "Bearer t"}, timeout=0.2)

    double.stop()

    # stop() returned while the handler still sleeps (a daemon thread, gone with the process).
    handler = [t for t in threading.enumerate() if t not in threads_before and "process_request_thread" in t.name]
    assert [t.is_alive() for t in handler] == [True]


def test_reachable_from_another_process(double: PipedriveDouble) -> None:
    token = obtain_tokens(double, COMPANY, USER)["access_token"]
    script = (
        "import sys, urllib.request\n"
        "request = urllib.request.Request(sys.argv[1], headers={'Authorization': 'Bearer ' + sys.argv[2]})\n"
        "print(urllib.request.urlopen(request, timeout=5).status)\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", script, f"{double.base_url}/api/v1/users/me", token],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    assert result.stdout.strip() == "200"
