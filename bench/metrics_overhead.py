"""`make bench-metrics-overhead`: the webhook benchmark with metrics off and on, in alternating pairs.

Runs ``python -m bench.webhooks`` (``make bench-webhooks``) BENCH_PAIRS times with
``METRICS_ENABLED=off`` and ``=on`` (on: multiprocess mode, a fresh ``PROMETHEUS_MULTIPROC_DIR``),
swapping which goes first in every pair so a machine getting busier or quieter does not favour
one side. Reads each run's receiver throughput and its ratio to the bare view measured in the same
run (the ratio cancels most of the machine's load), and prints both per pair and their medians:
the overhead is 1 - on/off. Needs DATABASE_URL (PostgreSQL), like bench-webhooks.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECEIVER = re.compile(r"^webhook receiver\s+(\d+(?:\.\d+)?)", re.MULTILINE)
RATIO = re.compile(r"receiver/bare throughput ratio:\s*(\d+(?:\.\d+)?)")


def _run(enabled: bool) -> tuple[float, float] | None:
    env = {**os.environ, "METRICS_ENABLED": "on" if enabled else "off"}
    env.setdefault("BENCH_SECONDS", "5")  # the lag phase is not what this compares
    # gunicorn.conf.py's worker recycling resets connections mid-run (issue 12); this compares metrics.
    env.setdefault("GUNICORN_MAX_REQUESTS", "0")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as multiproc:
        if enabled:
            env["PROMETHEUS_MULTIPROC_DIR"] = multiproc
        done = subprocess.run(
            [sys.executable, "-m", "bench.webhooks"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
    receiver, ratio = RECEIVER.search(done.stdout), RATIO.search(done.stdout)
    if done.returncode != 0 or receiver is None or ratio is None:
        print(f"run with metrics {'on' if enabled else 'off'} failed or printed no figures:")
        print(done.stdout[-1500:], done.stderr[-600:])
        return None
    return float(receiver.group(1)), float(ratio.group(1))


# The receiver wrapper's own cost, in a process of its own (multiprocess mode must be chosen before
# prometheus_client is imported): CPU microseconds per call, wrapped minus bare, the best of 5 rounds.
_WRAPPER_COST = """
import os, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pipedrive_app.settings")
import django
django.setup()
from django.http import JsonResponse
from pipedrive_app.metrics import instruments
answer = JsonResponse({"ok": True, "duplicate": False})
def view(request, key):
    return answer
wrapped = instruments.webhook_receiver(view)
def best(fn, n=20000):
    rounds = []
    for _ in range(5):
        began = time.process_time()
        for _ in range(n):
            fn(None, "k")
        rounds.append((time.process_time() - began) / n)
    return min(rounds)
print(f"{(best(wrapped) - best(view)) * 1e6:.1f}")
"""


def wrapper_cost_us(multiprocess: bool) -> float | None:
    env = {**os.environ, "METRICS_ENABLED": "on", "DEBUG": "on", "PIPEDRIVE_SANDBOX": "off"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as multiproc:
        if multiprocess:
            env["PROMETHEUS_MULTIPROC_DIR"] = multiproc
        done = subprocess.run(  # noqa: S603 - our own snippet, run by this interpreter
            [sys.executable, "-c", _WRAPPER_COST], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
    try:
        return float(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        print("wrapper cost run failed:", done.stderr[-600:])
        return None


def main() -> int:
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        print("bench-metrics-overhead needs PostgreSQL: set DATABASE_URL (as for make bench-webhooks)")
        return 2
    for multiprocess in (False, True):
        cost = wrapper_cost_us(multiprocess)
        if cost is not None:
            mode = "multiprocess" if multiprocess else "single-process"
            print(f"receiver hook cost ({mode}): {cost:.1f} us of CPU per delivery")
    pairs = int(os.environ.get("BENCH_PAIRS", 3))
    off: list[tuple[float, float]] = []
    on: list[tuple[float, float]] = []
    print(f"{'pair':>4} {'first':>6} {'off req/s':>10} {'on req/s':>9} {'off ratio':>10} {'on ratio':>9}  load avg")
    for pair in range(pairs):
        order = (False, True) if pair % 2 == 0 else (True, False)
        results = {enabled: _run(enabled) for enabled in order}
        result_off, result_on = results[False], results[True]
        if result_off is None or result_on is None:
            return 1
        off.append(result_off)
        on.append(result_on)
        print(
            f"{pair + 1:>4} {'off' if not order[0] else 'on':>6} {result_off[0]:>10.0f} {result_on[0]:>9.0f}"
            f" {result_off[1]:>10.2f} {result_on[1]:>9.2f}  {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
    throughput_off, throughput_on = statistics.median(v[0] for v in off), statistics.median(v[0] for v in on)
    ratio_off, ratio_on = statistics.median(v[1] for v in off), statistics.median(v[1] for v in on)
    print(
        f"\nmedian receiver throughput: off {throughput_off:.0f} req/s, on {throughput_on:.0f} req/s "
        f"(overhead {100 * (1 - throughput_on / throughput_off):.1f} %)"
    )
    print(
        f"median receiver/bare ratio: off {ratio_off:.2f}, on {ratio_on:.2f} "
        f"(overhead {100 * (1 - ratio_on / ratio_off):.1f} %); target: at most 5 %"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
