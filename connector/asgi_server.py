"""Serving an ASGI app with uvicorn on a socket we bind ourselves: the sandbox and `serve`.

Binding first (port 0 picks a free port) lets a caller learn the URL before uvicorn starts, and
hands the socket to a worker process or thread.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A bound, listening, inheritable socket; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it. asyncio sets TCP_NODELAY only where proto == IPPROTO_TCP,
        # which this socket is not: without it Nagle holds each response body until the
        # client's delayed ACK of the head, capping every client far below the server.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        # Listen now, not when uvicorn starts: a caller announces the URL as soon as this
        # returns, and a client that connects first is queued instead of refused.
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """http://host:port of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass
class RunningServer:
    """An ASGI app served in a background thread."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread


@contextlib.contextmanager
def serve_in_thread(server: uvicorn.Server, sock: socket.socket, *, name: str,
                    startup_timeout: float = 10.0) -> Iterator[RunningServer]:
    """Run ``server`` on ``sock`` in a daemon thread; yields once it accepts connections, and
    stops it (and closes the socket) on exit."""
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=name)
    thread.start()
    try:
        _wait_started(server, thread, startup_timeout, name)
        yield RunningServer(url_of(sock), server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread, timeout: float,
                  name: str, sleep: Callable[[float], Any] = time.sleep) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start within {timeout:g}s")
        sleep(0.01)
