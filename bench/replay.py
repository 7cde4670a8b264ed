"""A replay of ~1M platform activities into the sandbox at HubSpot's paid-tier limit.

    .venv/bin/python bench/replay.py [--activities 1000000] [--limit 190] [--latency 0.25]
                                     [--backfill] [--json out.json]

Everything in its own process, as deployed: a real broker, `connector sandbox` (190 requests /
10 s, answering after its latency model: a base, 1 ms per batch input, ±20 %). Two ways through
the same backlog:

* default: `connector run normalizer` and `connector run sink` from the start of the topics (a
  new deployment catching up, the commands of every webinar interleaved);
* ``--backfill``: `connector replay backfill --execute` over the whole range (copy, normalize,
  plan, then its sink sends the planned commands).

Measures the time until HubSpot shows every person the oracle predicts (the backfill: its
steps, and the sending alone from the first request to the last), attendance inputs per
attendance request, and the efficiency: attendance records per second against the ceiling of
full requests at the limit (limit / 10 s x 100).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.common import sandbox_counters, sandbox_process
from bench.normalizer import produce
from bench.sink_efficiency import Latency
from connector.broker import EmbeddedKafka
from connector.sample.view import create_known_contacts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--limit", type=int, default=190, help="requests per 10 s")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--latency", type=float, default=0.25,
                        help="the sandbox's base latency in seconds (0: loopback)")
    parser.add_argument("--backfill", action="store_true",
                        help="send the backlog with `connector replay backfill`")
    parser.add_argument("--json")
    parser.add_argument("--request-log", help="write the sandbox's request log (JSON) here")
    args = parser.parse_args()
    latency = Latency(args.latency).sandbox_options()
    with sandbox_process(args.limit, latency) as (url, token), EmbeddedKafka() as kafka:
        # People the platform matched to HubSpot exist there, as in a real portal.
        contacts = create_known_contacts(url, token, 50)  # within the first window
        count = produce(kafka.bootstrap_servers, args.activities, 3, contacts)
        env = {**os.environ, "CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
               "CONNECTOR_HUBSPOT__BASE_URL": url, "CONNECTOR_HUBSPOT__ACCESS_TOKEN": token,
               "CONNECTOR_SINK__WINDOW_LIMIT": str(args.limit),
               "CONNECTOR_NORMALIZER__IDLE_PUNCTUATION_SECONDS": "2",
               "CONNECTOR_TELEMETRY__ENABLED": "false"}
        before = sandbox_counters(url)["requests"]
        run = run_backfill if args.backfill else run_live
        elapsed, sending = run(env, url, args.timeout, before)
        stats = sandbox_counters(url)
        people = len(httpx.get(f"{url}/_sandbox/participations", timeout=120).json())
        log = httpx.get(f"{url}/_sandbox/requests", timeout=120).json()
        sizes = Counter(row.get("inputs", 0) for row in log
                        if "attendance" in str(row.get("operation")))
        if args.request_log:
            Path(args.request_log).write_text(json.dumps(log))
    interactions = stats["interactions"]
    attendance = sum(n for operation, n in stats["byOperation"].items()
                     if "attendance" in operation)
    ceiling = args.limit / 10 * 100
    result = {"mode": "backfill" if args.backfill else "live", "activities": count,
              "latency_s": args.latency, "seconds": elapsed, "sending_seconds": sending,
              "people": people, "attendance_records": interactions,
              "requests": stats["requests"] - before, "attendance_requests": attendance,
              "inputs_per_attendance_request": interactions / attendance if attendance else 0,
              "rate_limited": stats["rateLimited"],
              "records_per_s": interactions / sending,
              "efficiency": interactions / sending / ceiling,
              "ceiling_seconds": interactions / ceiling}
    print(f"replay ({result['mode']}, latency {args.latency}s): {count:,} activities -> "
          f"{interactions:,} attendance records for {people:,} people; sending "
          f"{sending:.0f}s (ceiling {result['ceiling_seconds']:.0f}s), all steps "
          f"{elapsed:.0f}s; {interactions / sending:,.0f} records/s, efficiency "
          f"{result['efficiency']:.3f} of {args.limit}/10s x 100; "
          f"{result['inputs_per_attendance_request']:.1f} inputs per attendance request; "
          f"{stats['rateLimited']} x 429")
    print(f"the last {sum(sizes.values()):,} attendance requests the sandbox logged, by inputs: "
          f"{histogram(sizes)}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


def histogram(sizes: Counter[int]) -> str:
    """Requests per tenth of a full one (inputs are logged when the latency model is on)."""
    tenths = Counter(min(size // 10, 10) for size in sizes.elements())
    return ", ".join(f"{10 * t}-{10 * t + 9 if t < 10 else ''}: {tenths[t]}" for t in range(11))


def run_live(env: dict[str, str], url: str, timeout: float,
             before: int) -> tuple[float, float]:
    """The normalizer and the sink from the topics' start; (seconds, seconds sending)."""
    workers = [subprocess.Popen([sys.executable, "-m", "connector", "--log-level", "WARNING",
                                 "run", role], env=env) for role in ("normalizer", "sink")]
    try:
        return _until_quiet(url, timeout, before, lambda: True)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)


def run_backfill(env: dict[str, str], url: str, timeout: float,
                 before: int) -> tuple[float, float]:
    """`connector replay backfill --execute` over the whole backlog."""
    process = subprocess.Popen([sys.executable, "-m", "connector", "--log-level", "INFO",
                                "replay", "backfill", "--from", "1d", "--execute",
                                "--timeout", str(timeout)], env=env)
    try:
        return _until_quiet(url, timeout, before, lambda: process.poll() is None)
    finally:
        if process.wait(timeout) != 0:
            raise SystemExit(f"the backfill failed (exit {process.returncode})")


def _until_quiet(url: str, timeout: float, before: int,
                 running: Callable[[], bool]) -> tuple[float, float]:
    """Poll the sandbox until requests began and then stopped for 30 s (or the command ended;
    a backfill copies and normalizes first): (seconds since the start, seconds from the first
    request to the last)."""
    t0 = time.monotonic()
    previous, changed_at, first_at = before, t0, None
    while time.monotonic() - t0 < timeout:
        time.sleep(1)
        done = sandbox_counters(url)["requests"]
        now = time.monotonic()
        if done != previous:
            first_at = first_at or now - 0.5
            previous, changed_at = done, now
        elif first_at is not None and (now - changed_at > 30 or not running()):
            break  # sending began and then stopped (or the command ended)
        elif first_at is None and not running():
            break
    if first_at is None:
        raise SystemExit("nothing was sent to HubSpot")
    return changed_at - t0, changed_at - first_at


if __name__ == "__main__":
    main()
