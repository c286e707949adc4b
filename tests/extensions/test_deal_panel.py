"""The deal panel against the loopback Pipedrive double: facts, states, notes, caching, headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from extensions import selectors
from pipedrive_app.installations.models import Installation

from .conftest import ADMIN, COMPANY, OTHER_COMPANY, OUTSIDER, REGULAR, count_rounds, make_token, panel_query

pytestmark = pytest.mark.django_db


def _deal_page(client, deal_id: int, *, user_id: int = ADMIN, company_id: int = COMPANY, **extra):
    return client.get(
        f"/extensions/panels/deal/?{panel_query(record_id=deal_id, user_id=user_id, company_id=company_id, **extra)}"
    )


def _api_calls(pipedrive, since: int = 0) -> list[str]:
    return [f"{r.method} {r.path}" for r in pipedrive.requests[since:] if r.path.startswith("/api/")]


def test_deal_panel_shows_the_deals_key_facts(client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    deal = world["deal"]
    before = len(pipedrive.requests)

    response = _deal_page(client, deal["id"])

    assert response.status_code == 200
    html = response.content.decode()
    for expected in (
        "Northwind renewal",
        "12,500.50 EUR",
        "Sales pipeline",
        "Proposal made",
        "Open",
        f"Ann Admin {ADMIN}",
        "Mia Tamm",
        "Northwind",
        "March 31, 2026",
    ):
        assert expected in html, expected
    days = (timezone.now() - datetime(2026, 1, 1, 10, tzinfo=UTC)).days
    assert f"{days} days ago" in html
    assert 'data-action-url="/extensions/actions/notes/"' in html
    assert not response.cookies
    # The deal first, then its pipeline, stage, person and organization.
    calls = _api_calls(pipedrive, before)
    assert calls[0] == f"GET /api/v2/deals/{deal['id']}"
    assert sorted(calls[1:]) == sorted(
        [
            "GET /api/v2/pipelines/1",
            "GET /api/v2/stages/2",
            f"GET /api/v2/persons/{world['person']['id']}",
            f"GET /api/v2/organizations/{world['org']['id']}",
        ]
    )
    # Every call went with the viewer's own token.
    viewer_tokens = set(pipedrive.access_tokens_of(COMPANY, ADMIN))
    assert {r.bearer_token for r in pipedrive.requests if r.path.startswith("/api/")} <= viewer_tokens


def test_lookups_run_concurrently_not_one_after_another(client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    lookups = [
        "/api/v2/pipelines/1",
        "/api/v2/stages/2",
        f"/api/v2/persons/{world['person']['id']}",
        f"/api/v2/organizations/{world['org']['id']}",
    ]
    # The double answers none of the four lookups until all four are in flight at once.
    rendezvous = pipedrive.hold_until_together(lookups)

    response = _deal_page(client, world["deal"]["id"])

    assert response.status_code == 200 and "Proposal made" in response.content.decode()
    assert rendezvous.met and rendezvous.most_together == 4
    # The deal itself first, alone (its lookups come from it): two rounds of calls in all.
    deal_call = pipedrive.requests_to(f"/api/v2/deals/{world['deal']['id']}")[0]
    assert all(r.received_at > deal_call.received_at for p in lookups for r in pipedrive.requests_to(p))


def test_the_panel_uses_the_viewers_own_installation_and_caches_per_viewer(client, seeded_company, pipedrive) -> None:
    world = seeded_company(users=((ADMIN, True), (REGULAR, False)))
    deal_id = world["deal"]["id"]

    assert _deal_page(client, deal_id).status_code == 200
    first = len(pipedrive.requests)
    assert _deal_page(client, deal_id).status_code == 200
    assert len(pipedrive.requests) == first  # cached for this viewer

    assert _deal_page(client, deal_id, user_id=REGULAR).status_code == 200
    regular_calls = [r for r in pipedrive.requests[first:] if r.path.startswith("/api/")]
    assert regular_calls, "another viewer must not get the first viewer's cached answer"
    assert {r.bearer_token for r in regular_calls} <= set(pipedrive.access_tokens_of(COMPANY, REGULAR))
    # Pipeline and stage names are remembered per viewer too: the regular user read them once.
    assert "Proposal made" in _deal_page(client, deal_id, user_id=REGULAR).content.decode()


def test_a_viewer_who_has_not_installed_gets_the_install_state(client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    before = len(pipedrive.requests)

    response = _deal_page(client, world["deal"]["id"], user_id=OUTSIDER)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Install the app to see this panel" in html and 'href="http://' in html and "/oauth/install" in html
    assert "Northwind renewal" not in html  # no other user's token is used to show data
    assert len(pipedrive.requests) == before


def test_an_uninstalled_viewer_gets_the_install_state(client, seeded_company) -> None:
    world = seeded_company(users=((ADMIN, True), (REGULAR, False)))
    Installation.objects.filter(pipedrive_user_id=REGULAR).update(status=Installation.Status.UNINSTALLED)

    html = _deal_page(client, world["deal"]["id"], user_id=REGULAR).content.decode()

    assert "Install the app to see this panel" in html


def test_needs_reauth_shows_a_reconnect_link_in_a_new_tab(client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    Installation.objects.filter(pipedrive_user_id=ADMIN).update(status=Installation.Status.NEEDS_REAUTH)

    response = _deal_page(client, world["deal"]["id"])

    html = response.content.decode()
    assert response.status_code == 200
    assert "Reconnect the app" in html
    assert 'href="http://127.0.0.1:8000/oauth/install" target="_blank" rel="noopener" data-reconnect' in html


def test_a_refresh_token_pipedrive_rejects_turns_into_the_reconnect_state(client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    pipedrive.revoke_all(COMPANY, ADMIN)
    Installation.objects.filter(pipedrive_user_id=ADMIN).update(access_token_expires_at=timezone.now())

    html = _deal_page(client, world["deal"]["id"]).content.decode()

    assert "Reconnect the app" in html
    assert Installation.objects.get(pipedrive_user_id=ADMIN).status == Installation.Status.NEEDS_REAUTH


def test_rate_limited_shows_a_readable_message(client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    deal_path = f"/api/v2/deals/{world['deal']['id']}"
    pipedrive.rate_limit_next(deal_path, times=2, retry_after=1, reset=None)

    response = _deal_page(client, world["deal"]["id"])

    assert response.status_code == 200
    html = response.content.decode()
    assert "Pipedrive is busy" in html and "about 1 seconds" in html
    # Waited once (Retry-After: 1) and tried again, then gave up: not one wait after another.
    assert [r.method for r in pipedrive.requests_to(deal_path)] == ["GET", "GET"]
    # An error state is not cached: the next load tries again and succeeds.
    assert "Northwind renewal" in _deal_page(client, world["deal"]["id"]).content.decode()


def test_a_pipedrive_outage_shows_a_readable_message(client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    pipedrive.fail_next(f"/api/v2/deals/{world['deal']['id']}", status=503, times=10)

    response = _deal_page(client, world["deal"]["id"])

    assert response.status_code == 200
    assert "Pipedrive could not be reached" in response.content.decode()


def test_a_failed_lookup_leaves_its_label_out_but_shows_the_rest(client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    pipedrive.fail_next("/api/v2/stages/2", status=404)

    html = _deal_page(client, world["deal"]["id"]).content.decode()

    assert "Northwind renewal" in html and "Stage 2" in html and "Sales pipeline" in html


def test_a_deal_that_does_not_exist_says_so(client, seeded_company) -> None:
    seeded_company()
    html = _deal_page(client, 99999).content.decode()
    assert "Nothing to show" in html


def test_company_a_cannot_read_company_bs_deal(client, seeded_company, pipedrive) -> None:
    seeded_company()
    other = seeded_company(OTHER_COMPANY, users=((ADMIN + 100, True),))
    other_deal = pipedrive.add_deal(OTHER_COMPANY, id=777, title="Globex secret deal")
    assert other_deal["id"] == 777 and other["deal"]

    # A's viewer asks for B's deal id: A's token only sees A's data.
    html = _deal_page(client, 777).content.decode()
    assert "Globex secret deal" not in html and "Nothing to show" in html
    # ...and cannot claim to be B.
    response = _deal_page(client, 777, token=make_token(company_id=COMPANY), company_id=OTHER_COMPANY)
    assert response.status_code == 403 and "Globex" not in response.content.decode()


def test_theme_and_sdk_wiring(client, seeded_company) -> None:
    world = seeded_company()
    html = _deal_page(client, world["deal"]["id"], theme="dark").content.decode()
    assert '<html lang="en-us" data-theme="dark">' in html
    assert '<script src="/static/vendor/app-extensions-sdk/index.umd.js"></script>' in html
    assert '<script src="/static/extensions/panel.js" defer></script>' in html
    assert "<script>" not in html  # no inline code: the page runs under script-src 'self'


def test_headers_let_pipedrive_frame_panels_and_nothing_else(client, seeded_company, settings) -> None:
    world = seeded_company()
    settings.PIPEDRIVE_SANDBOX = False
    response = _deal_page(client, world["deal"]["id"])

    assert "X-Frame-Options" not in response
    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["frame-ancestors"] == "https://*.pipedrive.com"
    assert directives["script-src"] == "'self'" and directives["default-src"] == "'self'"
    assert "unsafe-inline" not in policy
    assert response["Cache-Control"].startswith("max-age=0")

    # With the sandbox on, the app's own origin (which hosts the sandbox pages) may frame them too.
    settings.PIPEDRIVE_SANDBOX = True
    settings.APP_BASE_URL = "http://localhost:8123"
    cache.clear()
    response = _deal_page(client, world["deal"]["id"])
    assert "frame-ancestors https://*.pipedrive.com http://localhost:8123" in response["Content-Security-Policy"]

    # Everything else keeps Django's clickjacking protection.
    for path in ("/", "/healthz", "/oauth/install"):
        other = client.get(path)
        assert other["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors 'none'" in other["Content-Security-Policy"], path
    # JSON panels and actions are not pages: not framable either.
    json_response = client.get(f"/extensions/json-panels/deal/?{panel_query(record_id=world['deal']['id'])}")
    assert json_response["X-Frame-Options"] == "DENY"


def test_history_is_shown_in_the_viewers_timezone_and_locale(client, seeded_company) -> None:
    from pipedrive_app.history.models import ChangeRecord

    world = seeded_company()
    Installation.objects.filter(pipedrive_user_id=ADMIN).update(locale="de_DE", timezone_name="Europe/Berlin")
    company_pk = Installation.objects.get(pipedrive_user_id=ADMIN).company_id
    common = {"company_id": company_pk, "entity": "deal", "entity_id": world["deal"]["id"], "change_source": "app"}
    ChangeRecord.objects.create(
        kind="changed",
        field_key="stage_id",
        field_label="Stage",
        old_display="Qualified",
        new_display="Proposal made",
        occurred_at=datetime(2026, 1, 15, 22, 30, tzinfo=UTC),
        actor_user_id=ADMIN,
        actor_name="Ann Admin",
        event_key="e-stage",
        **common,
    )
    ChangeRecord.objects.create(
        kind="created",
        occurred_at=datetime(2026, 1, 10, 8, 0, tzinfo=UTC),
        actor_user_id=ADMIN,
        actor_name="",
        event_key="e-create",
        **common,
    )

    html = _deal_page(client, world["deal"]["id"]).content.decode()

    assert "<strong>Stage</strong>" in html and "Qualified" in html and "Proposal made" in html
    # 22:30 UTC is 23:30 in Berlin, written the German way (day.month.year).
    assert "15.01.2026 23:30" in html
    assert 'datetime="2026-01-15T23:30:00+01:00"' in html
    assert "Benutzer 501" in html  # an actor without a name, in the viewer's language
    # German number format for the value, too.
    assert "12.500,50 EUR" in html


def test_history_of_an_untracked_entity_says_how_to_turn_it_on(client, seeded_company) -> None:
    from pipedrive_app.installations.models import CompanySettings

    world = seeded_company()
    CompanySettings.objects.filter(company__pipedrive_company_id=COMPANY).update(tracked_entities=["person"])
    html = _deal_page(client, world["deal"]["id"]).content.decode()
    assert "does not track deals" in html


def test_an_unexpected_error_still_renders_a_page(client, seeded_company, monkeypatch) -> None:
    world = seeded_company()

    def broken(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(selectors, "deal_panel_get", broken)
    response = _deal_page(client, world["deal"]["id"])
    assert response.status_code == 200 and "Something went wrong" in response.content.decode()


def test_token_refresh_happens_before_calls_fan_out(client, seeded_company, pipedrive) -> None:
    world = seeded_company()
    Installation.objects.filter(pipedrive_user_id=ADMIN).update(
        access_token_expires_at=timezone.now() + timedelta(seconds=10)
    )
    refreshes = pipedrive.refresh_count

    assert "Northwind renewal" in _deal_page(client, world["deal"]["id"]).content.decode()
    assert pipedrive.refresh_count == refreshes + 1


def test_a_later_view_reads_the_deal_and_what_it_names_in_one_round_trip(
    client, seeded_company, pipedrive, monkeypatch, settings
) -> None:
    world = seeded_company()
    deal_id, person_id, org_id = world["deal"]["id"], world["person"]["id"], world["org"]["id"]
    rounds = count_rounds(monkeypatch, pipedrive)

    first = _deal_page(client, deal_id)
    assert first.status_code == 200
    assert rounds == [
        [f"GET /api/v2/deals/{deal_id}"],
        sorted(
            [
                "GET /api/v2/pipelines/1",
                "GET /api/v2/stages/2",
                f"GET /api/v2/persons/{person_id}",
                f"GET /api/v2/organizations/{org_id}",
            ]
        ),
    ]

    # The panel cache has expired; pipeline and stage names are still cached: one round trip, with
    # the person's and the organization's names read fresh beside the deal.
    cache.delete_many(_panel_cache_keys(deal_id))
    rounds.clear()
    _double_record(pipedrive, "persons", person_id)["name"] = "Mia Tamm-Smith"
    second = _deal_page(client, deal_id)
    assert second.status_code == 200 and "Mia Tamm-Smith" in second.content.decode()
    assert rounds == [
        sorted(
            [
                f"GET /api/v2/deals/{deal_id}",
                f"GET /api/v2/persons/{person_id}",
                f"GET /api/v2/organizations/{org_id}",
            ]
        )
    ]


def test_a_deal_that_now_names_another_person_reads_that_person_in_a_second_round(
    client, seeded_company, pipedrive, monkeypatch
) -> None:
    world = seeded_company()
    deal_id = world["deal"]["id"]
    _deal_page(client, deal_id)
    other = pipedrive.add_person(COMPANY, name="Oskar Other")
    _double_record(pipedrive, "deals", deal_id)["person_id"] = other["id"]
    cache.delete_many(_panel_cache_keys(deal_id))
    rounds = count_rounds(monkeypatch, pipedrive)

    response = _deal_page(client, deal_id)

    assert response.status_code == 200 and "Oskar Other" in response.content.decode()
    assert len(rounds) == 2 and rounds[1] == [f"GET /api/v2/persons/{other['id']}"]


def _panel_cache_keys(deal_id: int) -> list[str]:
    from pipedrive_app.installations.models import Company

    company = Company.objects.get(pipedrive_company_id=COMPANY)
    return [f"extensions:{company.pk}:{ADMIN}:deal:{deal_id}"]


def _double_record(pipedrive, collection: str, record_id: int) -> dict:
    """A record as the double stores it, to change it behind the app's back (an edit made in Pipedrive)."""
    return getattr(pipedrive._company(COMPANY), collection)[record_id]
