"""How many requests per second the sandbox serves under uvicorn on loopback (limits off).

Mix: batch attendance (email-create, 10 inputs) and event gets, from a few concurrent clients.
Bounded by a request count and a time budget. Prints the figure; asserts nothing.

    .venv/bin/python bench/sandbox_capacity.py [--requests 20000] [--clients 8] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from connector.asgi_server import bind_socket
from connector.sandbox import SandboxConfig

SERVER = """
import sys, uvicorn
from connector.sandbox import SandboxConfig, create_app
cfg = SandboxConfig.default(window_limit=None, daily_limit=None)
uvicorn.run(create_app(cfg), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False, ws="none")
"""

P = "/marketing/v3/marketing-events"


async def _client(
    url: str, token: str, worker: int, count: int, deadline: float, statuses: dict[int, int]
) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    done = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        for n in range(count):
            if time.monotonic() > deadline:
                break
            if n % 2:
                answer = await client.get(f"{P}/events/bench-{worker % 4}?externalAccountId=acct")
            else:
                inputs = [
                    {
                        "email": f"w{worker}-{n}-{i}@example.com",
                        "interactionDateTime": 1_716_000_000_000 + n,
                        "properties": {},
                    }
                    for i in range(10)
                ]
                answer = await client.post(
                    f"{P}/attendance/bench-{worker % 4}/register/email-create"
                    "?externalAccountId=acct",
                    json={"inputs": inputs},
                )
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            done += 1
    return done


async def _run(url: str, token: str, total: int, clients: int, seconds: float) -> None:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
        for i in range(4):
            (
                await c.post(
                    f"{P}/events",
                    json={
                        "externalAccountId": "acct",
                        "externalEventId": f"bench-{i}",
                        "eventName": f"Bench {i}",
                        "eventOrganizer": "bench",
                    },
                )
            ).raise_for_status()
    statuses: dict[int, int] = {}
    per_client = total // clients
    started = time.monotonic()
    counts = await asyncio.gather(
        *(_client(url, token, w, per_client, started + seconds, statuses) for w in range(clients))
    )
    elapsed = time.monotonic() - started
    done = sum(counts)
    print(
        f"requests={done} clients={clients} elapsed={elapsed:.2f}s "
        f"throughput={done / elapsed:.0f} req/s statuses={dict(sorted(statuses.items()))}"
    )


@contextmanager
def served() -> Iterator[str]:
    """The sandbox in its own process (so client and server do not share a GIL)."""
    probe = bind_socket()
    port = probe.getsockname()[1]
    probe.close()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/_sandbox/health").raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    token = SandboxConfig.default().apps[0].token
    with served() as url:
        asyncio.run(_run(url, token, args.requests, args.clients, args.seconds))


if __name__ == "__main__":
    main()
