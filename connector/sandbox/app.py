"""`create_app`: the Starlette application and its route table (reference §0, §9; OAuth
reference §1-§3 for `/oauth/...` and `/appinstalls/...`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from connector.sandbox.config import (
    CONTACTS_READ_SCOPE,
    CONTACTS_WRITE_SCOPE,
    READ_SCOPE,
    WRITE_SCOPE,
    SandboxConfig,
)
from connector.sandbox.errors import correlation_id
from connector.sandbox.pipeline import CONNECTION_KEY, bearer_or_developer_key, operation
from connector.sandbox.routes import (
    attendance,
    batch,
    contacts,
    events,
    lists,
    participations,
    settings,
)
from connector.sandbox.routes.admin import UnknownAccount, admin_routes, unknown_account
from connector.sandbox.routes.authorize import authorize_routes
from connector.sandbox.routes.installs import install_routes
from connector.sandbox.routes.oauth import oauth_routes
from connector.sandbox.runtime import Sandbox

V3_PREFIX = "/marketing/v3/marketing-events"
DATED_PREFIXES = tuple(
    f"/marketing/marketing-events/{v}" for v in ("2025-09", "2026-03", "2026-09")
)

R, W = READ_SCOPE, WRITE_SCOPE


class ConnectionDropped(httpx.RemoteProtocolError):
    """Raised to in-process (ASGITransport) callers when a fault drops the connection."""


Endpoint = Callable[[Request], Awaitable[Response]]


def _op(
    path: str, methods: list[str], name: str, scope: str | None, handler: Any, **kwargs: Any
) -> tuple[str, str, Endpoint]:
    return path, methods[0], operation(name, scope, handler, **kwargs)


def _group(ops: list[tuple[str, str, Endpoint]]) -> list[BaseRoute]:
    """One Route per path (in first-seen order) dispatching on method, so 405 answers carry
    an `Allow` header listing every method the path supports."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for path, method, endpoint in ops:
        by_path.setdefault(path, {})[method] = endpoint
    routes: list[BaseRoute] = []
    for path, table in by_path.items():
        if "GET" in table:
            table.setdefault("HEAD", table["GET"])

        async def dispatch(request: Request, _table: dict[str, Endpoint] = table) -> Response:
            return await _table[request.method](request)

        routes.append(Route(path, dispatch, methods=list(table)))
    return routes


def marketing_event_routes() -> list[BaseRoute]:
    """Routes relative to a marketing-events prefix, literal segments before parameters."""
    P = ""
    return _group(
        [
            _op(f"{P}/", ["GET"], "events.list", R, events.list_events),
            _op(f"{P}/events", ["POST"], "events.create", W, events.create),
            _op(f"{P}/events/upsert", ["POST"], "batch.upsert", W, batch.upsert),
            _op(f"{P}/events/delete", ["POST"], "batch.delete", W, batch.delete),
            _op(f"{P}/events/search", ["GET"], "identifiers.search", R, events.search),
            _op(f"{P}/events/{{externalEventId}}", ["GET"], "events.get", R, events.get),
            _op(f"{P}/events/{{externalEventId}}", ["PUT"], "events.upsert", W, events.upsert),
            _op(f"{P}/events/{{externalEventId}}", ["PATCH"], "events.update", W, events.update),
            _op(f"{P}/events/{{externalEventId}}", ["DELETE"], "events.delete", W, events.delete),
            _op(
                f"{P}/events/{{externalEventId}}/complete",
                ["POST"],
                "events.complete",
                W,
                events.complete,
            ),
            _op(
                f"{P}/events/{{externalEventId}}/cancel",
                ["POST"],
                "events.cancel",
                W,
                events.cancel,
            ),
            _op(
                f"{P}/events/{{externalEventId}}/{{subscriberState}}/upsert",
                ["POST"],
                "subscriber_state.upsert",
                W,
                attendance.upsert,
            ),
            _op(
                f"{P}/events/{{externalEventId}}/{{subscriberState}}/email-upsert",
                ["POST"],
                "subscriber_state.email_upsert",
                W,
                attendance.email_upsert,
            ),
            _op(f"{P}/batch/update", ["POST"], "batch.update", W, batch.update),
            _op(f"{P}/batch/archive", ["POST"], "batch.archive", W, batch.archive),
            _op(
                f"{P}/attendance/{{externalEventId}}/{{subscriberState}}/create",
                ["POST"],
                "attendance.create",
                W,
                attendance.create,
            ),
            _op(
                f"{P}/attendance/{{externalEventId}}/{{subscriberState}}/email-create",
                ["POST"],
                "attendance.email_create",
                W,
                attendance.email_create,
            ),
            _op(
                f"{P}/participations/contacts/{{contactIdentifier}}/breakdown",
                ["GET"],
                "participations.contact_breakdown",
                R,
                participations.breakdown_by_contact,
            ),
            _op(
                f"{P}/participations/{{marketingEventId}}/breakdown",
                ["GET"],
                "participations.breakdown_by_object_id",
                R,
                participations.breakdown_by_object_id,
            ),
            _op(
                f"{P}/participations/{{externalAccountId}}/{{externalEventId}}/breakdown",
                ["GET"],
                "participations.breakdown",
                R,
                participations.breakdown_by_external,
            ),
            _op(
                f"{P}/participations/{{externalAccountId}}/{{externalEventId}}",
                ["GET"],
                "participations.counters",
                R,
                participations.counters_by_external,
            ),
            _op(
                f"{P}/participations/{{marketingEventId}}",
                ["GET"],
                "participations.counters_by_object_id",
                R,
                participations.counters_by_object_id,
            ),
            _op(
                f"{P}/associations/{{marketingEventId}}/lists",
                ["GET"],
                "lists.get_by_object_id",
                W,
                lists.get_lists,
            ),
            _op(
                f"{P}/associations/{{marketingEventId}}/lists/{{listId}}",
                ["PUT"],
                "lists.associate_by_object_id",
                W,
                lists.associate,
            ),
            _op(
                f"{P}/associations/{{marketingEventId}}/lists/{{listId}}",
                ["DELETE"],
                "lists.disassociate_by_object_id",
                W,
                lists.disassociate,
            ),
            _op(
                f"{P}/associations/{{externalAccountId}}/{{externalEventId}}/lists",
                ["GET"],
                "lists.get",
                W,
                lists.get_lists,
            ),
            _op(
                f"{P}/associations/{{externalAccountId}}/{{externalEventId}}/lists/{{listId}}",
                ["PUT"],
                "lists.associate",
                W,
                lists.associate,
            ),
            _op(
                f"{P}/associations/{{externalAccountId}}/{{externalEventId}}/lists/{{listId}}",
                ["DELETE"],
                "lists.disassociate",
                W,
                lists.disassociate,
            ),
            _op(
                f"{P}/{{appId}}/settings",
                ["GET"],
                "settings.get",
                None,
                settings.get_settings,
                auth=bearer_or_developer_key,
            ),
            _op(
                f"{P}/{{appId}}/settings",
                ["POST"],
                "settings.update",
                None,
                settings.update_settings,
                auth=bearer_or_developer_key,
            ),
            _op(
                f"{P}/{{externalEventId}}/identifiers",
                ["GET"],
                "identifiers.portal",
                R,
                events.identifiers,
            ),
            _op(
                f"{P}/{{objectId}}/attendance/{{subscriberState}}/create",
                ["POST"],
                "attendance.create_by_object_id",
                W,
                attendance.create_by_object_id,
            ),
            _op(
                f"{P}/{{objectId}}/attendance/{{subscriberState}}/email-create",
                ["POST"],
                "attendance.email_create_by_object_id",
                W,
                attendance.email_create_by_object_id,
            ),
            _op(
                f"{P}/{{objectId}}", ["GET"], "events.get_by_object_id", R, events.get_by_object_id
            ),
            _op(
                f"{P}/{{objectId}}",
                ["PATCH"],
                "events.update_by_object_id",
                W,
                events.update_by_object_id,
            ),
            _op(
                f"{P}/{{objectId}}",
                ["DELETE"],
                "events.delete_by_object_id",
                W,
                events.delete_by_object_id,
            ),
        ]
    )


def contact_routes() -> list[BaseRoute]:
    """The CRM contacts subset."""
    return _group(
        [
            _op(
                "/crm/v3/objects/contacts",
                ["POST"],
                "contacts.create",
                CONTACTS_WRITE_SCOPE,
                contacts.create_contact,
            ),
            _op(
                "/crm/v3/objects/contacts/{contactId}",
                ["GET"],
                "contacts.get",
                CONTACTS_READ_SCOPE,
                contacts.get_contact,
            ),
        ]
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    category = "OBJECT_NOT_FOUND" if exc.status_code == 404 else "VALIDATION_ERROR"
    message = "Resource not found" if exc.status_code == 404 else str(exc.detail)
    body = {
        "status": "error",
        "message": message,
        "correlationId": correlation_id(),
        "category": category,
    }
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


class SandboxApp(Starlette):
    """The sandbox's Starlette app. Drops connections when a fault asks for it."""

    @property
    def sandbox(self) -> Sandbox:
        """The running sandbox (state, limiter, faults, logs)."""
        return self.state.sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        holder: dict[str, bool] = {"drop": False}
        scope[CONNECTION_KEY] = holder
        await super().__call__(scope, receive, send)
        if holder["drop"]:
            await _drop(send)


async def _drop(send: Send) -> None:
    """Close the connection without a response: abort uvicorn's transport when reachable,
    otherwise (in-process transports) raise a transport-level error."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None and hasattr(transport, "abort"):
        transport.abort()
        for _ in range(3):  # let connection_lost run so the server sees a disconnect
            await asyncio.sleep(0)
        return
    raise ConnectionDropped("Server disconnected without sending a response (sandbox fault).")


def create_app(
    config: SandboxConfig | None = None,
    *,
    callback_transport: httpx.AsyncBaseTransport | None = None,
) -> SandboxApp:
    """Build a sandbox app. `callback_transport` overrides config.callback_transport."""
    cfg = config or SandboxConfig.default()
    sandbox = Sandbox(cfg, callback_transport=callback_transport)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        sandbox.close()

    routes: list[BaseRoute] = [
        *admin_routes(),
        *install_routes(),
        *authorize_routes(),
        *oauth_routes(),
        *contact_routes(),
    ]
    for prefix in (V3_PREFIX, *DATED_PREFIXES):
        inner = marketing_event_routes()
        list_route = inner[0]
        assert isinstance(list_route, Route)
        routes.append(Route(prefix, list_route.endpoint, methods=["GET"]))
        routes.append(Mount(prefix, routes=inner))
    app = SandboxApp(
        routes=routes,
        exception_handlers={
            404: _http_error,
            405: _http_error,
            UnknownAccount: unknown_account,
        },
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.sandbox = sandbox
    return app
