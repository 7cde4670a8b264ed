"""The request pipeline every HubSpot operation goes through.

faults (latency, outage, 429 storm, drop, error) -> authentication (401) -> rate limits (429)
-> scope (403) -> handler -> persistence flush -> rate-limit and correlation headers -> log.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from connector.sandbox.account import Account
from connector.sandbox.attendance import Counters
from connector.sandbox.auth import (
    AuthResolver,
    Caller,
    ExpiredToken,
    bearer_app,
    bearer_or_developer_key,
)
from connector.sandbox.errors import (
    AUTH_FAILURE_HEADERS,
    SandboxHTTPError,
    correlation_id,
    expired_authentication_body,
    missing_scopes_body,
    rate_limit_body,
    server_error_body,
    unauthenticated_body,
    validation,
)
from connector.sandbox.faults import FaultKind
from connector.sandbox.latency import batch_inputs
from connector.sandbox.models import EventRecord
from connector.sandbox.ratelimit import TEN_SECONDLY
from connector.sandbox.runtime import Sandbox
from connector.sandbox.store import SandboxStore

__all__ = [
    "CONNECTION_KEY",
    "AuthResolver",
    "Ctx",
    "DropResponse",
    "Handler",
    "bearer_app",
    "bearer_or_developer_key",
    "no_content",
    "ok",
    "operation",
]

CONNECTION_KEY = "sandbox.connection"


@dataclass
class Ctx:
    """What a handler gets: the request, the sandbox, the calling app and its account."""

    request: Request
    sandbox: Sandbox
    app: Caller
    operation: str
    account: Account
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> SandboxStore:
        """The calling account's store."""
        return self.account.store

    def counters_of(self, event: EventRecord) -> Counters:
        """Participation counters of one of the account's events, now."""
        return self.account.counters_of(event, self.sandbox.now_ms())

    def path(self, name: str) -> str:
        """A path parameter."""
        return str(self.request.path_params[name])

    def query(self, name: str) -> str | None:
        """A query parameter (None when absent)."""
        return self.request.query_params.get(name)

    def required_query(self, name: str) -> str:
        """A required query parameter (400 when absent)."""
        value = self.request.query_params.get(name)
        if value is None:
            raise validation(f"Missing required query parameter {name}", field=name)
        return value

    async def json(self) -> Any:
        """The JSON body (400 when absent or invalid)."""
        raw = await self.request.body()
        if not raw:
            raise validation("Request body is required", field="body")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise validation(f"Invalid input JSON: {exc}", field="body") from exc

    async def json_object(self) -> dict[str, Any]:
        """The JSON body, which must be an object."""
        body = await self.json()
        if not isinstance(body, dict):
            raise validation("Request body must be a JSON object", field="body")
        return body

    def base_url(self) -> str:
        """scheme://host of this request."""
        return str(self.request.base_url).rstrip("/")


Handler = Callable[[Ctx], Awaitable[Response]]


class DropResponse(Response):
    """Sends nothing and asks `SandboxApp` to drop the connection."""

    def __init__(self) -> None:
        super().__init__(status_code=499)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        holder = scope.get(CONNECTION_KEY)
        if isinstance(holder, dict):
            holder["drop"] = True


def _json(status: int, body: Any, headers: Mapping[str, str]) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=dict(headers))


def operation(
    name: str,
    scope: str | None,
    handler: Handler,
    *,
    auth: AuthResolver = bearer_app,
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler into a Starlette endpoint running the full pipeline."""

    async def endpoint(request: Request) -> Response:
        sandbox: Sandbox = request.app.state.sandbox
        cid = correlation_id()
        found = auth(request, sandbox)
        app = found if isinstance(found, Caller) else None
        entry: dict[str, Any] = {
            "time": sandbox.now(),
            "method": request.method,
            "path": request.url.path,
            "query": _redacted_query(request),
            "operation": name,
            "appId": app.app_id if app else None,
            "hubId": app.hub_id if app else None,
            "auth": app.kind if app else None,
            "correlationId": cid,
        }
        response = await _serve(request, sandbox, found, cid, entry, name, scope, handler)
        entry["status"] = None if isinstance(response, DropResponse) else response.status_code
        sandbox.log_request(entry)
        return response

    endpoint.__name__ = name.replace(".", "_")
    return endpoint


def _redacted_query(request: Request) -> str:
    """The query string with a developer key (`hapikey`) masked: the log holds no secrets."""
    query = request.url.query
    if "hapikey=" not in query:
        return query
    return "&".join(
        "hapikey=***" if part.startswith("hapikey=") else part for part in query.split("&")
    )


async def _serve(
    request: Request,
    sandbox: Sandbox,
    found: Caller | ExpiredToken | None,
    cid: str,
    entry: dict[str, Any],
    name: str,
    scope: str | None,
    handler: Handler,
) -> Response:
    """Injected faults, authentication, rate limits and scopes, in this order, then the
    handler."""
    base = {"X-HubSpot-Correlation-Id": cid}
    app = found if isinstance(found, Caller) else None
    faulted = await _injected_fault(request, name, sandbox, app, cid, entry, base)
    if faulted is not None:
        return faulted
    if isinstance(found, ExpiredToken):
        body = expired_authentication_body(cid, found.expired_at, sandbox.now())
        return _json(401, body, base)
    if app is None:
        return _json(401, unauthenticated_body(cid), {**base, **AUTH_FAILURE_HEADERS})
    limiter, key = sandbox.limits_of(app)
    verdict = limiter.admit(key)
    headers = {**base, **verdict.headers}
    if not verdict.is_allowed:
        assert verdict.policy is not None
        entry["policy"] = verdict.policy
        body = rate_limit_body(cid, verdict.policy, app.app_id, app.hub_id, kind=app.kind)
        return _json(429, body, headers)
    if scope is not None and not app.has_scope(scope):
        return _json(403, missing_scopes_body(cid, [scope]), headers)
    account = sandbox.accounts[app.hub_id]
    ctx = Ctx(request=request, sandbox=sandbox, app=app, operation=name, account=account)
    try:
        response = await handler(ctx)
    except SandboxHTTPError as exc:
        response = _json(exc.status, exc.body(cid), {})
    finally:
        account.store.flush()
        sandbox.store.flush()  # app settings live in the default account's store
    response.headers.update(headers)
    return response


async def _injected_fault(
    request: Request,
    name: str,
    sandbox: Sandbox,
    app: Caller | None,
    cid: str,
    entry: dict[str, Any],
    base: dict[str, str],
) -> Response | None:
    """The answer of the fault the sandbox's knobs inject now (after its latency), or None."""
    inputs = await _inputs(request, sandbox, name)
    if inputs:
        entry["inputs"] = inputs  # (counted when the latency model needs it)
    decision = sandbox.faults.decide(name, sandbox.now(), inputs)
    if decision.latency:
        # config.sleep is asyncio.sleep: the held request leaves the event loop to the others
        await sandbox.config.sleep(decision.latency)
    if decision.kind is not FaultKind.NONE:
        entry["fault"] = decision.kind.value
    if decision.kind is FaultKind.DROP:
        return DropResponse()
    if decision.kind in (FaultKind.OUTAGE, FaultKind.ERROR):
        assert decision.status is not None
        return _json(decision.status, server_error_body(cid, decision.status), base)
    if decision.kind is FaultKind.STORM:
        headers = dict(base)
        if app is not None:
            limiter, key = sandbox.limits_of(app)
            headers.update(limiter.exhaust(key))
        entry["policy"] = TEN_SECONDLY
        body = rate_limit_body(
            cid,
            TEN_SECONDLY,
            app.app_id if app else 0,
            app.hub_id if app else sandbox.config.portal_id,
            kind=app.kind if app else "private_app",
        )
        return _json(429, body, headers)
    return None


async def _inputs(request: Request, sandbox: Sandbox, name: str) -> int:
    """The request's batch inputs, read only when its latency depends on them (the body is
    cached by Starlette, so the handler reads it again for free)."""
    if not sandbox.faults.config.latency_model.counts_inputs(name):
        return 0
    return batch_inputs(await request.body())


def ok(body: Any, status: int = 200) -> JSONResponse:
    """A JSON answer."""
    return JSONResponse(body, status_code=status)


def no_content(status: int = 204) -> Response:
    """An empty answer."""
    return Response(status_code=status)
