"""What several benchmarks share: the sandbox in its own process, so it never competes with
the code being measured for the interpreter."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx


@contextlib.contextmanager
def sandbox_process(window_limit: int | None,
                    options: Sequence[str] = ()) -> Iterator[tuple[str, str]]:
    """`connector sandbox` on a free port; yields (url, token). None/0 = no rate limit;
    `options`: more of its flags (e.g. its latency model's)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "--log-level", "WARNING", "sandbox", "--port", "0",
         "--window-limit", str(window_limit or 0), "--daily-limit", "0", *options],
        stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        url = re.search(r"http://[\d.]+:\d+", lines[0])
        token = re.search(r"token\s+:\s+(\S+)", lines[2])
        assert url and token, lines
        _wait_until_serving(url.group(0))
        yield url.group(0), token.group(1)
    finally:
        process.terminate()
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()


def _wait_until_serving(url: str, attempts: int = 100) -> None:
    """The URL is printed before uvicorn listens: wait until the admin API answers."""
    for _ in range(attempts):
        try:
            httpx.get(f"{url}/_sandbox/counters", timeout=5)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"the sandbox at {url} did not start serving")


def sandbox_counters(url: str) -> dict[str, Any]:
    """The sandbox's request counters (requests, rateLimited, interactions, ...), and
    `monotonic`: its `time.monotonic()` when it counted, comparable with this process's."""
    counters: dict[str, Any] = httpx.get(f"{url}/_sandbox/counters", timeout=30).json()
    return counters
