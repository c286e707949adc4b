"""Panel server time against a Pipedrive that answers after a delay: ``make bench-panels``.

    .venv/bin/python -m tests.extensions.bench_panels [--delay-ms 100] [--requests 30]

Starts the loopback Pipedrive double with every API answer delayed, installs a user into a
throw-away SQLite database, then renders the deal and person panels through Django's full stack
(the panel cache off, so every render goes to Pipedrive) cold (nothing cached: two round trips, the
record then what it names), warm (names and the record's references cached: one round trip) and
with the calls one after another (EXTENSIONS_API_WORKERS=1), and prints the median and p95 beside
the limits: cold <= 2 x RTT + 30 ms, warm <= 1 x RTT + 30 ms, where RTT is one API call measured
through the app's own client. Exits 1 when a limit is not met.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _configure(database: Path) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "pipedrive_app.settings",
            "DEBUG": "on",
            "DATABASE_URL": f"sqlite:///{database}",
            "PIPEDRIVE_SANDBOX": "off",
            "OAUTHLIB_INSECURE_TRANSPORT": "1",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay-ms", type=float, default=100.0, help="Pipedrive's answer delay per API call")
    parser.add_argument("--requests", type=int, default=30, help="panel renders per configuration")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-panels-") as workdir:
        _configure(Path(workdir) / "bench.sqlite3")
        return _run(delay=args.delay_ms / 1000.0, count=args.requests)


def _run(*, delay: float, count: int) -> int:
    import jwt
    from django.conf import settings
    from django.core.cache import cache
    from django.test import Client, override_settings

    from pipedrive_app.installations.services import installation_create_from_code
    from tests.doubles.pipedrive_double import PipedriveDouble

    company_id, user_id = 4242, 42
    double = PipedriveDouble(validate_contract=False).start()
    try:
        double.add_company(company_id, name="Bench Co", domain="bench")
        double.add_user(company_id, user_id, name="Bench User")
        double.add_pipeline(company_id, id=1, name="Sales")
        double.add_stage(company_id, id=1, name="Qualified")
        org = double.add_organization(company_id, name="Northwind")
        person = double.add_person(company_id, name="Mia Tamm", emails=["mia@example.com"], org_id=org["id"])
        deal = double.add_deal(company_id, title="Renewal", value=1000, person_id=person["id"], org_id=org["id"])
        double.add_deal(company_id, title="Pilot", value=200, person_id=person["id"])

        jwt_secret = "bench-jwt-secret-" + "x" * 48
        common = {
            "PIPEDRIVE_OAUTH_URL": double.base_url,
            "PIPEDRIVE_ALLOWED_API_DOMAINS": [double.base_url],
            "PIPEDRIVE_CLIENT_ID": double.client_id,
            "PIPEDRIVE_CLIENT_SECRET": double.client_secret,
            "PIPEDRIVE_JWT_SECRET": jwt_secret,
            "EXTENSIONS_PANEL_CACHE_SECONDS": 0,
            "EXTENSIONS_LOOKUP_CACHE_SECONDS": 0,
        }
        with override_settings(**common):
            code = double.issue_code(company_id, user_id, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)
            installation = installation_create_from_code(code=code)
            double.api_delay = delay
            rtt = _round_trip(installation, deal["id"], count)
            client = Client()
            rows = []
            plans = (
                # (label, API workers, reference cache seconds): cold has nothing cached; warm is a view
                # after the panel cache expired, with names and the record's references cached.
                ("cold", settings.EXTENSIONS_API_WORKERS, 0),
                ("warm", settings.EXTENSIONS_API_WORKERS, 300),
                ("sequential", 1, 0),
            )
            for label, workers, lookup_seconds in plans:
                cache.clear()  # each plan starts from nothing cached (warm primes itself on its first render)
                records = (("deal", deal["id"]), ("person", person["id"]), ("organization", org["id"]))
                for resource, record_id in records:
                    with override_settings(
                        EXTENSIONS_API_WORKERS=workers, EXTENSIONS_LOOKUP_CACHE_SECONDS=lookup_seconds
                    ):
                        samples = _measure(client, jwt, jwt_secret, resource, record_id, count)
                    rows.append((resource, label, workers, samples))
    finally:
        double.stop()

    limits = {"cold": 2 * rtt + 0.030, "warm": rtt + 0.030}
    print(
        f"\nPanel server time, Pipedrive answering each API call after {delay * 1000:.0f} ms;"
        f" measured round trip (the app's client, median of {count}): {rtt * 1000:.1f} ms"
    )
    print(f"{'panel':<14}{'load':<12}{'workers':>8}{'median ms':>11}{'p95 ms':>9}{'limit ms':>10}  verdict")
    failed = False
    for resource, label, workers, samples in rows:
        median, p95 = statistics.median(samples), _percentile(samples, 0.95)
        limit = limits.get(label)
        verdict = "" if limit is None else ("met" if median <= limit else "NOT MET")
        failed |= verdict == "NOT MET"
        limit_text = f"{limit * 1000:>10.1f}" if limit is not None else f"{'':>10}"
        print(f"{resource:<14}{label:<12}{workers:>8}{median * 1000:>11.1f}{p95 * 1000:>9.1f}{limit_text}  {verdict}")
    print(
        "limits: cold <= 2 x RTT + 30 ms, warm <= 1 x RTT + 30 ms (verdict on the median; p95 shown)."
        " cold: the record, then what it names (2 round trips); warm: the record and the references it"
        " named last time at once (1 round trip); sequential: one call after another, for comparison.",
        flush=True,
    )
    return 1 if failed else 0


def _round_trip(installation, deal_id: int, count: int) -> float:
    """One API call through the app's own client, as a panel makes it: the round trip panels pay."""
    from extensions.viewer_client import viewer_client

    client = viewer_client(installation)
    try:
        client.get_deal(deal_id)  # connection and token warm-up
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            client.get_deal(deal_id)
            samples.append(time.perf_counter() - started)
    finally:
        client.close()
    return statistics.median(samples)


def _measure(client, jwt, secret: str, resource: str, record_id: int, count: int) -> list[float]:
    samples = []
    for attempt in range(count + 1):
        now = int(time.time())
        token = jwt.encode({"userId": 42, "companyId": 4242, "iat": now, "exp": now + 300}, secret, algorithm="HS256")
        query = (
            f"id=bench&userId=42&companyId=4242&resource={resource}&view=details&selectedIds={record_id}&token={token}"
        )
        started = time.perf_counter()
        response = client.get(f"/extensions/panels/{resource}/?{query}")
        if attempt:  # the first render warms up templates and connections
            samples.append(time.perf_counter() - started)
        if response.status_code != 200 or b"data-facts" not in response.content:
            raise SystemExit(f"{resource} panel did not render its facts: HTTP {response.status_code}")
    return samples


if __name__ == "__main__":
    sys.exit(main())
