"""Panel server time against a Pipedrive that answers after a delay: ``make bench-panels``.

    .venv/bin/python -m tests.extensions.bench_panels [--delay-ms 100] [--requests 30]

Starts the loopback Pipedrive double with every API answer delayed, installs a user into a
throw-away SQLite database, then renders the deal and person panels through Django's full stack
(panel caches off, so every render goes to Pipedrive) with the API calls run concurrently (the
app's setting) and one after another (EXTENSIONS_API_WORKERS=1), and prints the median and p95
next to the delay. A deal panel needs two round trips (the deal names its pipeline, stage, person,
organization); concurrency keeps it near 2 x delay where sequential calls cost 5 x delay.
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

        common = {
            "PIPEDRIVE_OAUTH_URL": double.base_url,
            "PIPEDRIVE_ALLOWED_API_DOMAINS": [double.base_url],
            "PIPEDRIVE_CLIENT_ID": double.client_id,
            "PIPEDRIVE_CLIENT_SECRET": double.client_secret,
            "PIPEDRIVE_JWT_SECRET": "bench-jwt-secret-" + "x" * 48,
            "EXTENSIONS_PANEL_CACHE_SECONDS": 0,
            "EXTENSIONS_LOOKUP_CACHE_SECONDS": 0,
        }
        with override_settings(**common):
            code = double.issue_code(company_id, user_id, redirect_uri=settings.PIPEDRIVE_REDIRECT_URI)
            installation_create_from_code(code=code)
            double.api_delay = delay
            client = Client()
            rows = []
            for label, workers in (("concurrent", settings.EXTENSIONS_API_WORKERS), ("sequential", 1)):
                for resource, record_id in (("deal", deal["id"]), ("person", person["id"])):
                    with override_settings(EXTENSIONS_API_WORKERS=workers):
                        samples = _measure(client, jwt, common["PIPEDRIVE_JWT_SECRET"], resource, record_id, count)
                    rows.append((resource, label, workers, samples))
    finally:
        double.stop()

    print(f"\nPanel server time, Pipedrive answering each API call after {delay * 1000:.0f} ms ({count} renders each)")
    print(f"{'panel':<8}{'API calls':<12}{'workers':>8}{'median ms':>11}{'p95 ms':>9}{'median/delay':>14}")
    for resource, label, workers, samples in rows:
        median, p95 = statistics.median(samples), _percentile(samples, 0.95)
        ratio = median / delay if delay else float("nan")
        print(f"{resource:<8}{label:<12}{workers:>8}{median * 1000:>11.1f}{p95 * 1000:>9.1f}{ratio:>14.2f}")
    print(
        "deal: 1 call, then pipeline + stage + person + organization at once (2 round trips);"
        " person: person + open deals at once, then organization + stages (2 round trips).",
        flush=True,
    )
    return 0


def _measure(client, jwt, secret: str, resource: str, record_id: int, count: int) -> list[float]:  # type: ignore[no-untyped-def]
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
