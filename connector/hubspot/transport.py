"""``PerThreadTransport``: a connection pool of its own for each thread that sends.

With a few dozen requests in flight, each on a thread of the sink's pool, one shared
``httpx.HTTPTransport`` makes every request take the pool's lock and scan every connection of
the pool, twice (to assign one, then to release it), under the GIL the other threads wait for.
A thread only ever has one request in the air, so a pool of its own, with one kept-alive
connection, is all it needs: nothing is shared, nothing is scanned.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

#: A thread's own pool: one request at a time, its connection kept alive between them.
THREAD_LIMITS = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=30.0)


class PerThreadTransport(httpx.BaseTransport):
    """Sends each request through the calling thread's own transport (made on first use)."""

    def __init__(self, make: Callable[[], httpx.BaseTransport] | None = None) -> None:
        self._make = make or (lambda: httpx.HTTPTransport(limits=THREAD_LIMITS))
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[httpx.BaseTransport] = []
        self._closed = False

    def _own(self) -> httpx.BaseTransport:
        own: httpx.BaseTransport | None = getattr(self._local, "transport", None)
        if own is None:
            own = self._make()
            with self._lock:
                if self._closed:
                    own.close()
                    raise RuntimeError("the transport is closed")
                self._all.append(own)
            self._local.transport = own
        return own

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._own().handle_request(request)

    @property
    def threads(self) -> int:
        """Threads that have sent through this transport."""
        with self._lock:
            return len(self._all)

    def close(self) -> None:
        """Close every thread's transport (a thread that sends after this gets an error)."""
        with self._lock:
            self._closed, transports, self._all = True, self._all, []
        for transport in transports:
            transport.close()
