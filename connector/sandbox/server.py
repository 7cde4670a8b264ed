"""Serving the sandbox with uvicorn: in the foreground (CLI) or in a background thread
(contract-test fixtures, benchmarks)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from connector import asgi_server
from connector.asgi_server import bind_socket
from connector.sandbox.app import SandboxApp


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
    with asgi_server.serve_in_thread(uvicorn_server(app), bind_socket(host, port),
                                     name="sandbox-uvicorn",
                                     startup_timeout=startup_timeout) as running:
        yield RunningSandbox(running.url, app, running.server, running.thread)
