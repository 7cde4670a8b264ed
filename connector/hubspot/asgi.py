"""``SyncASGITransport``: drive an in-process ASGI app (e.g. the sandbox) from a sync httpx.Client.

httpx's ``ASGITransport`` is async-only, and :class:`HubSpotClient` is synchronous (the sink is a
single-threaded loop). This adapter keeps one event loop alive in a helper thread (an anyio
blocking portal) and runs each request through ``httpx.ASGITransport`` there. One loop for the
transport's whole life matters: the app keeps state (locks, clients, stores) between requests.

It uses public APIs only (``httpx.ASGITransport``, ``anyio.from_thread``), unlike Starlette's
``TestClient`` transport, which is private. Exceptions raised by the app propagate to the caller
(so a sandbox "connection dropped" fault surfaces as the ``httpx.RemoteProtocolError`` it raises).
Lifespan events are not run. Call :meth:`close` (or close the client) to stop the loop thread.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import anyio.from_thread
import httpx
from anyio.from_thread import BlockingPortal


class SyncASGITransport(httpx.BaseTransport):
    """A synchronous httpx transport that serves requests from an ASGI application."""

    def __init__(
        self,
        app: Any,
        *,
        raise_app_exceptions: bool = True,
        root_path: str = "",
        client: tuple[str, int] = ("127.0.0.1", 123),
    ) -> None:
        self._inner = httpx.ASGITransport(
            app=app, raise_app_exceptions=raise_app_exceptions, root_path=root_path, client=client
        )
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = (
            anyio.from_thread.start_blocking_portal()
        )
        self._portal: BlockingPortal | None = self._portal_cm.__enter__()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._portal is None:
            raise RuntimeError("SyncASGITransport is closed")
        async_request = httpx.Request(
            request.method,
            request.url,
            headers=request.headers,
            content=request.read(),
            extensions=request.extensions,
        )
        status, headers, body = self._portal.call(self._serve, async_request)
        return httpx.Response(status, headers=headers, content=body)

    async def _serve(self, request: httpx.Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        response = await self._inner.handle_async_request(request)
        try:
            body = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        return response.status_code, response.headers.raw, body

    def close(self) -> None:
        if self._portal_cm is not None:
            self._portal_cm.__exit__(None, None, None)
            self._portal_cm = None
            self._portal = None
