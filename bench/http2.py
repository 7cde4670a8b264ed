"""HTTP/1.1 (a kept-alive connection per request in flight) against HTTP/2 (one connection,
multiplexed) for the sink's requests: attendance batches of 100 inputs, sent by a pool of
threads through HubSpotClient, to the sandbox (0.25 s + 1 ms per input, +/- 20 %) served by
hypercorn, which speaks both (uvicorn, the sandbox's own server, has no HTTP/2).

    pip install --target /tmp/h2pkgs h2 hypercorn      # not project dependencies
    PYTHONPATH=/tmp/h2pkgs .venv/bin/python -m bench.http2 [--requests 100] [--threads 32]

Prints requests/s and the client's CPU per request for each protocol, alternating two rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from connector.hubspot import HubSpotClient, MarketingEventEmailSubscriber, SubscriberState
from connector.normalize.command import Command, EventUpsert
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.faults import FaultConfig
from connector.sandbox.latency import LatencyModel
from connector.sink.request import event_params


def serve(port: int) -> None:
    """The sandbox under hypercorn (the child process)."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    app = create_app(SandboxConfig.default(window_limit=None).replace(daily_limit=None))
    app.sandbox.set_faults(FaultConfig(latency_model=LatencyModel(0.25, 0.001, 0.2)))
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.loglevel = "WARNING"
    asyncio.run(hypercorn_serve(app, config))


def measure(url: str, protocol: str, requests: int, threads: int) -> str:
    limits = httpx.Limits(max_connections=threads + 2, max_keepalive_connections=threads + 2)
    transport = httpx.HTTPTransport(http1=protocol == "HTTP/1.1", http2=protocol == "HTTP/2",
                                    limits=limits)
    client = HubSpotClient(SandboxConfig.default().apps[0].token, base_url=url,
                           transport=transport)
    event = client.upsert_event(event_params(Command(
        f"bench-{protocol.replace('/', '')}", "acct", EventUpsert("E", "O", "WEBINAR")))).value
    object_id = event.object_id
    assert object_id is not None

    def one(n: int) -> None:
        client.record_attendance_by_email(object_id, SubscriberState.REGISTER, [
            MarketingEventEmailSubscriber(email=f"p{n}-{k}@example.com",
                                          interaction_date_time=1_767_261_600_000 + k)
            for k in range(100)])

    before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(requests)))
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - started
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    client.close()
    return (f"{protocol:<8} threads={threads} requests={requests} requests/s="
            f"{requests / wall:.1f} client CPU per request={cpu / requests * 1000:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    try:
        import h2  # noqa: F401
        import hypercorn  # noqa: F401
    except ImportError:
        sys.exit("needs h2 and hypercorn: pip install --target /tmp/h2pkgs h2 hypercorn, "
                 "then PYTHONPATH=/tmp/h2pkgs")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "bench.http2", "--serve", str(port)])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        for protocol in ("HTTP/1.1", "HTTP/2", "HTTP/1.1", "HTTP/2"):
            print(measure(f"http://127.0.0.1:{port}", protocol, args.requests, args.threads),
                  flush=True)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
