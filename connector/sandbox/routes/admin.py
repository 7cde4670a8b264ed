"""`/_sandbox/...`: inspect and steer the sandbox. Not HubSpot paths; no token needed."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector.sandbox.attendance import attendance_seconds, current_state
from connector.sandbox.faults import FaultConfig
from connector.sandbox.models import ListRecord
from connector.sandbox.runtime import Sandbox


def _sandbox(request: Request) -> Sandbox:
    return request.app.state.sandbox


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


def _events(sb: Sandbox) -> list[dict[str, Any]]:
    out = []
    for event in sb.store.iter_events():
        row = dataclasses.asdict(event)
        row["counters"] = sb.counters_of(event).as_attendance_counters()
        out.append(row)
    return out


def _participations(sb: Sandbox) -> list[dict[str, Any]]:
    now = sb.now_ms()
    out = []
    for record in sorted(sb.store.participations.values(), key=lambda r: int(r.participation_id)):
        row = dataclasses.asdict(record)
        event = sb.store.events.get(record.object_id)
        row["currentState"] = current_state(record, event, now) if event else None
        row["attendanceDurationSeconds"] = attendance_seconds(record)
        out.append(row)
    return out


async def health(request: Request) -> Response:
    """Liveness."""
    return JSONResponse({"ok": True})


async def state(request: Request) -> Response:
    """Everything the sandbox holds."""
    sb = _sandbox(request)
    return JSONResponse(
        {
            "events": _events(sb),
            "contacts": [dataclasses.asdict(c) for c in sb.store.contacts.values()],
            "participations": _participations(sb),
            "lists": [dataclasses.asdict(x) for x in sb.store.lists.values()],
            "settings": {str(k): v for k, v in sb.store.settings.items()},
        }
    )


async def events(request: Request) -> Response:
    """Stored events with counters."""
    return JSONResponse(_events(_sandbox(request)))


async def contacts(request: Request) -> Response:
    """Stored contacts."""
    return JSONResponse([dataclasses.asdict(c) for c in _sandbox(request).store.contacts.values()])


async def participations(request: Request) -> Response:
    """Stored participations with their current state."""
    return JSONResponse(_participations(_sandbox(request)))


async def reset(request: Request) -> Response:
    """Clear state, logs and rate-limit budgets; `{"faults": true}` also clears faults."""
    sb = _sandbox(request)
    try:
        body = await _body(request)
    except ValueError as exc:
        return _error(str(exc))
    sb.reset(
        state=bool(body.get("state", True)),
        logs=bool(body.get("logs", True)),
        limits=bool(body.get("limits", True)),
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
    """The HubSpot request log, newest last; `?operation=` and `?limit=` filter it."""
    sb = _sandbox(request)
    rows = list(sb.request_log)
    if op := request.query_params.get("operation"):
        rows = [r for r in rows if r.get("operation") == op]
    if limit := request.query_params.get("limit"):
        rows = rows[-int(limit) :]
    return JSONResponse(rows)


async def counters(request: Request) -> Response:
    """Request counters (total, per status, per operation, 429s, faults), with `monotonic`:
    the sandbox's `time.monotonic()` when it counted. Counting runs without yielding, so that
    instant is exact however late the answer arrives; CLOCK_MONOTONIC is system-wide on Linux,
    so a benchmark in another process can set it against its own clock."""
    counted_at = time.monotonic()
    return JSONResponse({**_sandbox(request).stats(), "monotonic": counted_at})


async def callbacks(request: Request) -> Response:
    """eventDetailsUrl calls made."""
    return JSONResponse(list(_sandbox(request).callback_log))


async def lists(request: Request) -> Response:
    """GET stored lists; POST {listId, name} creates one."""
    sb = _sandbox(request)
    if request.method == "POST":
        try:
            body = await _body(request)
        except ValueError as exc:
            return _error(str(exc))
        list_id = str(body.get("listId") or len(sb.store.lists) + 1)
        record = ListRecord(list_id, str(body.get("name") or f"List {list_id}"), sb.now_ms())
        sb.store.add_list(record)
        sb.store.flush()
        return JSONResponse(dataclasses.asdict(record), status_code=201)
    return JSONResponse([dataclasses.asdict(x) for x in sb.store.lists.values()])


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
