"""`connector sandbox` as an operator runs it: it prints a URL and a token that work."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import httpx


def test_the_printed_url_and_token_work_and_sigterm_stops_it() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "sandbox", "--port", "0", "--window-limit", "2",
         "--token", "pat-na1-cli-test-token-1234"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        url = re.search(r"http://127\.0\.0\.1:\d+", lines[0])
        token = re.search(r"token\s+:\s+(\S+)", lines[2])
        assert url and token, lines
        headers = {"Authorization": f"Bearer {token.group(1)}"}
        body = {"externalAccountId": "acct", "externalEventId": "cli-1", "eventName": "CLI",
                "eventOrganizer": "Ops"}
        created = httpx.put(f"{url.group(0)}/marketing/v3/marketing-events/events/cli-1",
                            json=body, headers=headers, timeout=10)
        assert created.status_code == 200, created.text
        assert created.headers["X-HubSpot-RateLimit-Max"] == "2"  # the flag took effect
        denied = httpx.get(f"{url.group(0)}/marketing/v3/marketing-events/", timeout=10,
                           headers={"Authorization": "Bearer wrong"})
        assert denied.status_code == 401
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why.
        assert process.wait(15) in (0, -signal.SIGTERM)
        if process.stdout is not None:
            process.stdout.close()


def test_the_latency_flags_hold_every_request_at_least_the_base() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "sandbox", "--port", "0", "--latency-base", "0.05",
         "--latency-per-input", "0.001", "--latency-jitter", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        url = re.search(r"http://127\.0\.0\.1:\d+", lines[0])
        assert url, lines
        model = httpx.get(f"{url.group(0)}/_sandbox/faults", timeout=10).json()["latency_model"]
        assert model == {"base_seconds": 0.05, "per_input_seconds": 0.001, "jitter": 0.2,
                         "operations": {}}
        started = time.monotonic()
        answer = httpx.get(f"{url.group(0)}/marketing/v3/marketing-events/", timeout=10,
                           headers={"Authorization": "Bearer wrong"})
        assert answer.status_code == 401 and time.monotonic() - started >= 0.05 * (1 - 0.2)
    finally:
        process.terminate()
        process.wait(15)
        if process.stdout is not None:
            process.stdout.close()
