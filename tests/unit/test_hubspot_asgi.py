"""SyncASGITransport: a sync httpx.Client served by an in-process ASGI app."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.hubspot.asgi import SyncASGITransport


async def echo(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "method": request.method,
            "url": str(request.url),
            "body": (await request.body()).decode(),
            "auth": request.headers.get("authorization"),
        }
    )


async def gzipped(request: Request) -> Response:
    body = gzip.compress(json.dumps({"ok": True}).encode())
    return Response(body, headers={"Content-Encoding": "gzip"}, media_type="application/json")


async def boom(request: Request) -> Response:
    raise RuntimeError("app failed")


APP = Starlette(
    routes=[
        Route("/echo", echo, methods=["POST"]),
        Route("/gz", gzipped),
        Route("/boom", boom),
    ]
)


def test_request_reaches_the_app_and_state_survives_between_calls() -> None:
    with httpx.Client(transport=SyncASGITransport(APP), base_url="https://h.example") as client:
        for n in range(2):
            answer = client.post("/echo?x=1", content=f"b{n}", headers={"Authorization": "t"})
            assert answer.json() == {
                "method": "POST",
                "url": "https://h.example/echo?x=1",
                "body": f"b{n}",
                "auth": "t",
            }


def test_content_encoding_is_decoded_exactly_once() -> None:
    with httpx.Client(transport=SyncASGITransport(APP), base_url="http://h") as client:
        assert client.get("/gz").json() == {"ok": True}


def test_app_exceptions_propagate() -> None:
    with (
        httpx.Client(transport=SyncASGITransport(APP), base_url="http://h") as client,
        pytest.raises(RuntimeError, match="app failed"),
    ):
        client.get("/boom")


def test_closed_transport_refuses_requests() -> None:
    transport = SyncASGITransport(APP)
    transport.close()
    transport.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        transport.handle_request(httpx.Request("GET", "http://h/gz"))
