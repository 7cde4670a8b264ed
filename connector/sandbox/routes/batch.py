"""Batch endpoints: upsert and delete by external ids, update and archive by objectId.

Per-input failures are values in `errors[]`; 207 only where the spec declares it
(batch/update) or documents it (batch/archive).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from connector.sandbox.errors import SandboxHTTPError, standard_error, validation
from connector.sandbox.pipeline import Ctx, no_content, ok
from connector.sandbox.routes.common import (
    apply_changes,
    batch_envelope,
    inputs_of,
    is_int,
    parse_event_changes,
    require_str,
)
from connector.sandbox.routes.events import upsert_one


def _injected(ids: dict[str, list[str]]) -> dict[str, Any]:
    return standard_error(
        "INTERNAL_ERROR", "Sandbox injected a failure for this input; retry it.", ids
    )


def _input_object(item: Any, index: int) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise validation(f"inputs[{index}] must be an object", field=f"inputs[{index}]")
    return item


async def upsert(ctx: Ctx) -> Response:
    """#12 POST /events/upsert -> BatchResponseMarketingEventPublicDefaultResponse (200)."""
    started = ctx.sandbox.now_ms()
    inputs = [_input_object(i, n) for n, i in enumerate(inputs_of(await ctx.json_object()))]
    for n, item in enumerate(inputs):  # whole-request validation first, like HubSpot
        for name in ("externalAccountId", "externalEventId"):
            require_str(item, name)
        if not ctx.store.event_by_external(
            ctx.app.app_id, item["externalAccountId"], item["externalEventId"]
        ):
            require_str(item, "eventName")
        if item.get("eventOrganizer") is not None and not isinstance(item["eventOrganizer"], str):
            raise validation("eventOrganizer must be a string", field=f"inputs[{n}].eventOrganizer")
        parse_event_changes(ctx, item)
    results, errors = [], []
    for item in inputs:
        ids = {"externalEventId": [item["externalEventId"]]}
        if ctx.sandbox.faults.fail_batch_input():
            errors.append(_injected(ids))
            continue
        try:
            event, _ = upsert_one(ctx, item, item["externalEventId"])
        except SandboxHTTPError as exc:
            errors.append(standard_error(exc.category, exc.message, ids))
            continue
        results.append(ctx.sandbox.renderer.public_default(event))
    return ok(batch_envelope(ctx, started, results, errors))


async def delete(ctx: Ctx) -> Response:
    """#13 POST /events/delete -> 202 (observed); only the caller app's events are deleted."""
    inputs = [_input_object(i, n) for n, i in enumerate(inputs_of(await ctx.json_object()))]
    keys = []
    for n, item in enumerate(inputs):
        app_id = item.get("appId")
        if not is_int(app_id, 2**31 - 1):
            raise validation("appId is required and must be an integer", field=f"inputs[{n}].appId")
        keys.append(
            (app_id, require_str(item, "externalAccountId"), require_str(item, "externalEventId"))
        )
    for app_id, account, external_id in keys:
        if app_id != ctx.app.app_id:
            continue
        event = ctx.store.event_by_external(app_id, account, external_id)
        if event is not None:
            ctx.store.delete_event(event.object_id)
    return no_content(202)


async def update(ctx: Ctx) -> Response:
    """#14 POST /batch/update -> 200 BatchResponse...V2, or 207 ...V2WithErrors."""
    started = ctx.sandbox.now_ms()
    inputs = [_input_object(i, n) for n, i in enumerate(inputs_of(await ctx.json_object()))]
    parsed = []
    for n, item in enumerate(inputs):
        if not isinstance(item.get("objectId"), str):
            raise validation(
                "objectId is required and must be a string", field=f"inputs[{n}].objectId"
            )
        if "eventName" in item and item["eventName"] is not None:
            require_str(item, "eventName")
        parsed.append(parse_event_changes(ctx, item, allow_completed=False))
    results: list[Any] = []
    errors: list[dict[str, Any]] = []
    missing: list[str] = []
    for item, changes in zip(inputs, parsed, strict=True):
        object_id = item["objectId"]
        ids = {"objectId": [object_id]}
        event = ctx.store.events.get(object_id)
        if event is None:
            missing.append(object_id)
            continue
        if ctx.sandbox.faults.fail_batch_input():
            errors.append(_injected(ids))
            continue
        apply_changes(ctx, event, changes)
        results.append(ctx.sandbox.renderer.default_v2(event))
    if missing:
        errors.insert(
            0,
            standard_error(
                "OBJECT_NOT_FOUND",
                f"Could not get some MARKETING_EVENT objects, they may be deleted or not exist. "
                f"Check that ids are valid: {missing}",
                {"ids": missing},
            ),
        )
    return ok(batch_envelope(ctx, started, results, errors), 207 if errors else 200)


async def archive(ctx: Ctx) -> Response:
    """#15 POST /batch/archive -> 204 when every id was deleted, else 207 with errors."""
    started = ctx.sandbox.now_ms()
    inputs = [_input_object(i, n) for n, i in enumerate(inputs_of(await ctx.json_object()))]
    for n, item in enumerate(inputs):
        if not isinstance(item.get("objectId"), str):
            raise validation(
                "objectId is required and must be a string", field=f"inputs[{n}].objectId"
            )
    missing: list[str] = []
    errors: list[dict[str, Any]] = []
    for item in inputs:
        object_id = item["objectId"]
        if object_id not in ctx.store.events:
            missing.append(object_id)
            continue
        if ctx.sandbox.faults.fail_batch_input():
            errors.append(_injected({"objectId": [object_id]}))
            continue
        ctx.store.delete_event(object_id)
    if missing:
        errors.insert(
            0,
            standard_error(
                "OBJECT_NOT_FOUND",
                f"Could not find some MARKETING_EVENT objects: {missing}",
                {"ids": missing},
            ),
        )
    if not errors:
        return no_content()
    return ok(batch_envelope(ctx, started, [], errors), 207)
