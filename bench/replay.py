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
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.normalizer import produce
from connector.broker import EmbeddedKafka
from connector.cli.demo import create_known_contacts


def _start_sandbox(limit: int) -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "sandbox", "--port", "0", "--window-limit",
         str(limit), "--daily-limit", "0"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(3)]
    url = re.search(r"http://[\d.]+:\d+", lines[0])
    token = re.search(r"token\s+:\s+(\S+)", lines[2])
    assert url and token, lines
    return process, url.group(0), token.group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--limit", type=int, default=190, help="requests per 10 s")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json")
    args = parser.parse_args()
    sandbox, url, token = _start_sandbox(args.limit)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with EmbeddedKafka() as kafka:
            # People the platform matched to HubSpot exist there, as in a real portal.
            contacts = create_known_contacts(url, token, 200)
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
                stats = httpx.get(f"{url}/_sandbox/counters", timeout=30).json()
                done = stats["requests"]
                if done != previous:
                    previous, stable_since = done, time.monotonic()
                elif time.monotonic() - stable_since > 30:
                    break  # nothing sent for 30 s: the work is done
            elapsed = time.monotonic() - t0 - 30
            state = httpx.get(f"{url}/_sandbox/participations", timeout=60).json()
            interactions = sum(len(row["interactions"]) for row in state)
            stats = httpx.get(f"{url}/_sandbox/counters", timeout=30).json()
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
        sandbox.terminate()
        sandbox.wait(30)
    ceiling = args.limit / 10 * 100
    result = {"activities": count, "seconds": elapsed, "people": len(state),
              "attendance_records": interactions, "requests": stats["requests"],
              "rate_limited": stats["rateLimited"],
              "records_per_s": interactions / elapsed,
              "efficiency": interactions / elapsed / ceiling}
    print(f"replay: {count:,} activities -> {interactions:,} attendance records for "
          f"{len(state):,} people in {elapsed:.0f}s ({interactions / elapsed:,.0f} records/s, "
          f"efficiency {result['efficiency']:.2f} of {args.limit}/10s x 100), "
          f"{stats['rateLimited']} x 429")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
