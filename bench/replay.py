"""A replay of ~1M platform activities into the sandbox at HubSpot's paid-tier limit.

    .venv/bin/python bench/replay.py [--activities 1000000] [--limit 190] [--json out.json]

Everything in its own process, as deployed: a real broker, `connector sandbox` (190 requests /
10 s), `connector run normalizer` and `connector run sink`. Measures the time until HubSpot shows
every person the oracle predicts, and the sink's efficiency against the rate limit.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import sandbox_counters, sandbox_process
from bench.normalizer import produce
from connector.broker import EmbeddedKafka
from connector.sample.view import create_known_contacts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--limit", type=int, default=190, help="requests per 10 s")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json")
    args = parser.parse_args()
    workers: list[subprocess.Popen[bytes]] = []
    with sandbox_process(args.limit) as (url, token), EmbeddedKafka() as kafka:
        try:
            # People the platform matched to HubSpot exist there, as in a real portal.
            contacts = create_known_contacts(url, token, 50)  # within the first window
            count = produce(kafka.bootstrap_servers, args.activities, 3, contacts)
            env = {**os.environ, "CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                   "CONNECTOR_HUBSPOT__BASE_URL": url, "CONNECTOR_HUBSPOT__ACCESS_TOKEN": token,
                   "CONNECTOR_SINK__WINDOW_LIMIT": str(args.limit),
                   "CONNECTOR_NORMALIZER__IDLE_PUNCTUATION_SECONDS": "2",
                   "CONNECTOR_TELEMETRY__ENABLED": "false"}
            t0 = time.monotonic()
            for role in ("normalizer", "sink"):
                workers.append(subprocess.Popen([sys.executable, "-m", "connector",
                                                 "--log-level", "WARNING", "run", role],
                                                env=env))
            previous, stable_since = -1, time.monotonic()
            while time.monotonic() - t0 < args.timeout:
                time.sleep(5)
                done = sandbox_counters(url)["requests"]
                if done != previous:
                    previous, stable_since = done, time.monotonic()
                elif time.monotonic() - stable_since > 30:
                    break  # nothing sent for 30 s: the work is done
            elapsed = time.monotonic() - t0 - 30
            stats = sandbox_counters(url)
            people = len(httpx.get(f"{url}/_sandbox/participations", timeout=120).json())
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
                worker.wait(60)
    interactions = stats["interactions"]
    ceiling = args.limit / 10 * 100
    result = {"activities": count, "seconds": elapsed, "people": people,
              "attendance_records": interactions, "requests": stats["requests"],
              "rate_limited": stats["rateLimited"],
              "records_per_s": interactions / elapsed,
              "efficiency": interactions / elapsed / ceiling}
    print(f"replay: {count:,} activities -> {interactions:,} attendance records for "
          f"{people:,} people in {elapsed:.0f}s ({interactions / elapsed:,.0f} records/s, "
          f"efficiency {result['efficiency']:.2f} of {args.limit}/10s x 100), "
          f"{stats['rateLimited']} x 429")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
