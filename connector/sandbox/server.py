"""Serving the sandbox with uvicorn: in the foreground (CLI) or in a background thread
(contract-test fixtures, benchmarks)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from connector.sandbox.app import SandboxApp


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening-ready socket; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit it. asyncio sets TCP_NODELAY only where proto == IPPROTO_TCP,
    # which this socket is not: without it Nagle holds each response body until the client's
    # delayed ACK of the head, ~40 ms per request, and any client is capped near 22 requests/s.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """http://host:port of a bound socket."""
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def uvicorn_server(
    app: SandboxApp, *, log_level: str = "warning", access_log: bool = False
) -> uvicorn.Server:
    """A uvicorn server for the app (no websockets, no lifespan surprises)."""
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        ws="none",
        lifespan="on",
        timeout_keep_alive=30,
    )
    return uvicorn.Server(config)


@dataclass
class RunningSandbox:
    """A sandbox served in a background thread."""

    url: str
    app: SandboxApp
    server: uvicorn.Server
    thread: threading.Thread


@contextlib.contextmanager
def serve_in_thread(
    app: SandboxApp, host: str = "127.0.0.1", port: int = 0, *, startup_timeout: float = 10.0
) -> Iterator[RunningSandbox]:
    """Serve `app` with uvicorn in a daemon thread; yields once it accepts connections."""
    sock = bind_socket(host, port)
    server = uvicorn_server(app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="sandbox-uvicorn"
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("sandbox server did not start")
        time.sleep(0.01)
    try:
        yield RunningSandbox(url_of(sock), app, server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()
