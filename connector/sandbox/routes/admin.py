"""`/_sandbox/...`: inspect and steer the sandbox. Not HubSpot paths; no token needed.

State endpoints take `?hub_id=` (default: the default account); an unknown hub id is a 404.
OAuth installs and accounts: `routes/installs.py`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector.sandbox.account import Account
from connector.sandbox.attendance import attendance_seconds, current_state
from connector.sandbox.faults import FaultConfig
from connector.sandbox.models import ListRecord
from connector.sandbox.runtime import Sandbox


def _sandbox(request: Request) -> Sandbox:
    return request.app.state.sandbox


class UnknownAccount(Exception):
    """`?hub_id=` names no account."""


def hub_id_param(request: Request) -> int | None:
    """`?hub_id=` as an int (None when absent)."""
    raw = request.query_params.get("hub_id")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise UnknownAccount(f"hub_id must be an integer, got {raw!r}")
    return int(raw)


def account_of(request: Request) -> Account:
    """The account `?hub_id=` names (default: the default account)."""
    sb = _sandbox(request)
    hub_id = hub_id_param(request)
    if hub_id is None:
        return sb.default_account
    account = sb.account(hub_id)
    if account is None:
        raise UnknownAccount(f"no account with hub_id {hub_id}")
    return account


def unknown_account(request: Request, exc: Exception) -> JSONResponse:
    """404 for an unknown `?hub_id=`."""
    return JSONResponse({"error": str(exc)}, status_code=404)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def _error(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


def _events(sb: Sandbox, account: Account) -> list[dict[str, Any]]:
    out = []
    for event in account.store.iter_events():
        row = dataclasses.asdict(event)
        row["counters"] = sb.counters_of(event, account).as_attendance_counters()
        out.append(row)
    return out


def _participations(sb: Sandbox, account: Account) -> list[dict[str, Any]]:
    now = sb.now_ms()
    store = account.store
    out = []
    for record in sorted(store.participations.values(), key=lambda r: int(r.participation_id)):
        row = dataclasses.asdict(record)
        event = store.events.get(record.object_id)
        row["currentState"] = current_state(record, event, now) if event else None
        row["attendanceDurationSeconds"] = attendance_seconds(record)
        out.append(row)
    return out


async def health(request: Request) -> Response:
    """Liveness."""
    return JSONResponse({"ok": True})


async def state(request: Request) -> Response:
    """Everything one account holds (`?hub_id=`), with every app's settings."""
    sb = _sandbox(request)
    account = account_of(request)
    return JSONResponse(
        {
            "hubId": account.hub_id,
            "events": _events(sb, account),
            "contacts": [dataclasses.asdict(c) for c in account.store.contacts.values()],
            "participations": _participations(sb, account),
            "lists": [dataclasses.asdict(x) for x in account.store.lists.values()],
            "settings": {str(k): v for k, v in sb.store.settings.items()},
        }
    )


async def events(request: Request) -> Response:
    """Stored events with counters."""
    return JSONResponse(_events(_sandbox(request), account_of(request)))


async def contacts(request: Request) -> Response:
    """Stored contacts."""
    store = account_of(request).store
    return JSONResponse([dataclasses.asdict(c) for c in store.contacts.values()])


async def participations(request: Request) -> Response:
    """Stored participations with their current state."""
    return JSONResponse(_participations(_sandbox(request), account_of(request)))


async def reset(request: Request) -> Response:
    """Clear state, logs and rate-limit budgets; `{"faults": true}` also clears faults."""
    sb = _sandbox(request)
    try:
        body = await _body(request)
    except ValueError as exc:
        return _error(str(exc))
    hub_id = body.get("hub_id")
    if hub_id is not None and (not isinstance(hub_id, int) or sb.account(hub_id) is None):
        return _error(f"no account with hub_id {hub_id!r}")
    oauth = body.get("oauth")
    sb.reset(
        state=bool(body.get("state", True)),
        logs=bool(body.get("logs", True)),
        limits=bool(body.get("limits", True)),
        oauth=None if oauth is None else bool(oauth),
        hub_id=hub_id,
    )
    if body.get("faults", False):
        sb.set_faults(FaultConfig())
    return JSONResponse({"reset": True})


async def faults(request: Request) -> Response:
    """GET the fault settings; PUT replaces them (see README); DELETE clears them."""
    sb = _sandbox(request)
    if request.method == "PUT":
        try:
            sb.set_faults(FaultConfig.from_dict(await _body(request), now=sb.now()))
        except (ValueError, TypeError) as exc:
            return _error(str(exc))
    elif request.method == "DELETE":
        sb.set_faults(FaultConfig())
    return JSONResponse(sb.faults.config.to_dict())


async def requests_log(request: Request) -> Response:
    """The HubSpot request log, newest last; `?operation=`, `?hub_id=` and `?limit=` filter
    it."""
    sb = _sandbox(request)
    rows = list(sb.request_log)
    if op := request.query_params.get("operation"):
        rows = [r for r in rows if r.get("operation") == op]
    if (hub_id := hub_id_param(request)) is not None:
        rows = [r for r in rows if r.get("hubId") == hub_id]
    if limit := request.query_params.get("limit"):
        rows = rows[-int(limit) :]
    return JSONResponse(rows)


async def counters(request: Request) -> Response:
    """Request counters (total, per status, per operation, 429s, faults), with `monotonic`:
    the sandbox's `time.monotonic()` when it counted. Counting runs without yielding, so that
    instant is exact however late the answer arrives; CLOCK_MONOTONIC is system-wide on Linux,
    so a benchmark in another process can set it against its own clock."""
    counted_at = time.monotonic()
    sb = _sandbox(request)
    hub_id = account_of(request).hub_id if hub_id_param(request) is not None else None
    return JSONResponse({**sb.stats(hub_id), "monotonic": counted_at})


async def callbacks(request: Request) -> Response:
    """eventDetailsUrl calls made."""
    return JSONResponse(list(_sandbox(request).callback_log))


async def lists(request: Request) -> Response:
    """GET stored lists; POST {listId, name} creates one (in `?hub_id=`'s account)."""
    sb = _sandbox(request)
    store = account_of(request).store
    if request.method == "POST":
        try:
            body = await _body(request)
        except ValueError as exc:
            return _error(str(exc))
        list_id = str(body.get("listId") or len(store.lists) + 1)
        record = ListRecord(list_id, str(body.get("name") or f"List {list_id}"), sb.now_ms())
        store.add_list(record)
        store.flush()
        return JSONResponse(dataclasses.asdict(record), status_code=201)
    return JSONResponse([dataclasses.asdict(x) for x in store.lists.values()])


def admin_routes(prefix: str = "/_sandbox") -> list[BaseRoute]:
    """The admin routes."""
    return [
        Route(f"{prefix}/health", health, methods=["GET"]),
        Route(f"{prefix}/state", state, methods=["GET"]),
        Route(f"{prefix}/events", events, methods=["GET"]),
        Route(f"{prefix}/contacts", contacts, methods=["GET"]),
        Route(f"{prefix}/participations", participations, methods=["GET"]),
        Route(f"{prefix}/reset", reset, methods=["POST"]),
        Route(f"{prefix}/faults", faults, methods=["GET", "PUT", "DELETE"]),
        Route(f"{prefix}/requests", requests_log, methods=["GET"]),
        Route(f"{prefix}/counters", counters, methods=["GET"]),
        Route(f"{prefix}/callbacks", callbacks, methods=["GET"]),
        Route(f"{prefix}/lists", lists, methods=["GET", "POST"]),
    ]
