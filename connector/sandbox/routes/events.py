"""Event CRUD by external ids and by objectId, complete/cancel, list, identifier lookups."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from connector.sandbox.errors import validation
from connector.sandbox.pipeline import Ctx, no_content, ok
from connector.sandbox.routes.common import (
    apply_event_fields,
    conflict,
    decode_cursor,
    encode_cursor,
    event_by_external,
    event_by_object_id,
    new_event,
    next_link,
    page_limit,
    parse_date,
    require_str,
)


async def create(ctx: Ctx) -> Response:
    """#1 POST /events -> MarketingEventDefaultResponse."""
    body = await ctx.json_object()
    account = require_str(body, "externalAccountId")
    external_id = require_str(body, "externalEventId")
    if ctx.store.event_by_external(ctx.app.app_id, account, external_id):
        raise conflict(
            f"A marketing event with externalAccountId={account} and "
            f"externalEventId={external_id} already exists for app {ctx.app.app_id}"
        )
    event = new_event(ctx, account, external_id, body)
    return ok(ctx.sandbox.renderer.default_v1(event))


def upsert_one(ctx: Ctx, body: dict[str, Any], external_id: str) -> tuple[Any, bool]:
    """Create or update the caller's event from create params; returns (event, created)."""
    account = require_str(body, "externalAccountId")
    event = ctx.store.event_by_external(ctx.app.app_id, account, external_id)
    if event is None:
        return new_event(ctx, account, external_id, body), True
    if "eventName" in body:
        require_str(body, "eventName")
    apply_event_fields(ctx, event, body)
    return event, False


async def upsert(ctx: Ctx) -> Response:
    """#2 PUT /events/{externalEventId} -> MarketingEventPublicDefaultResponse."""
    body = await ctx.json_object()
    event, _ = upsert_one(ctx, body, ctx.path("externalEventId"))
    return ok(ctx.sandbox.renderer.public_default(event))


async def get(ctx: Ctx) -> Response:
    """#3 GET /events/{externalEventId}?externalAccountId= -> MarketingEventPublicReadResponse."""
    event = event_by_external(
        ctx, ctx.required_query("externalAccountId"), ctx.path("externalEventId")
    )
    return ok(ctx.sandbox.renderer.public_read(event, ctx.counters_of(event)))


async def update(ctx: Ctx) -> Response:
    """#4 PATCH /events/{externalEventId}?externalAccountId= -> PublicDefaultResponse."""
    account = ctx.required_query("externalAccountId")
    event = event_by_external(ctx, account, ctx.path("externalEventId"))
    body = await ctx.json_object()
    if "eventName" in body and body["eventName"] is not None:
        require_str(body, "eventName")
    apply_event_fields(ctx, event, body)
    return ok(ctx.sandbox.renderer.public_default(event))


async def delete(ctx: Ctx) -> Response:
    """#5 DELETE /events/{externalEventId}?externalAccountId= -> 204."""
    event = event_by_external(
        ctx, ctx.required_query("externalAccountId"), ctx.path("externalEventId")
    )
    ctx.store.delete_event(event.object_id)
    return no_content()


async def complete(ctx: Ctx) -> Response:
    """#6 POST /events/{externalEventId}/complete -> MarketingEventDefaultResponse."""
    event = event_by_external(
        ctx, ctx.required_query("externalAccountId"), ctx.path("externalEventId")
    )
    body = await ctx.json_object()
    for name in ("startDateTime", "endDateTime"):
        if body.get(name) is None:
            raise validation(f"{name} is required", field=name)
    start, end = parse_date(body, "startDateTime"), parse_date(body, "endDateTime")
    event.start_ms, event.end_ms, event.completed = start, end, True
    apply_event_fields(ctx, event, {})
    return ok(ctx.sandbox.renderer.default_v1(event))


async def cancel(ctx: Ctx) -> Response:
    """#7 POST /events/{externalEventId}/cancel (no body) -> MarketingEventDefaultResponse."""
    event = event_by_external(
        ctx, ctx.required_query("externalAccountId"), ctx.path("externalEventId")
    )
    event.cancelled = True
    apply_event_fields(ctx, event, {})
    return ok(ctx.sandbox.renderer.default_v1(event))


async def list_events(ctx: Ctx) -> Response:
    """#8 GET / -> CollectionResponse...V2ForwardPaging (every app's events, by objectId)."""
    limit = page_limit(ctx, strict=False)
    after = decode_cursor(ctx.query("after"))
    now = ctx.sandbox.now_ms()
    events = [
        e for e in ctx.store.iter_events() if after is None or int(e.object_id) >= after
    ]
    page = events[:limit]
    out: dict[str, Any] = {
        "results": [ctx.sandbox.renderer.read_v2(e, ctx.counters_of(e), now) for e in page]
    }
    if len(events) > limit:
        cursor = encode_cursor(events[limit].object_id)
        out["paging"] = {"next": {"after": cursor, "link": next_link(ctx, cursor)}}
    return ok(out)


async def get_by_object_id(ctx: Ctx) -> Response:
    """#9 GET /{objectId} -> MarketingEventPublicReadResponseV2."""
    event = event_by_object_id(ctx, ctx.path("objectId"))
    counters = ctx.counters_of(event)
    return ok(ctx.sandbox.renderer.read_v2(event, counters, ctx.sandbox.now_ms()))


async def update_by_object_id(ctx: Ctx) -> Response:
    """#10 PATCH /{objectId} -> MarketingEventPublicDefaultResponseV2."""
    event = event_by_object_id(ctx, ctx.path("objectId"))
    body = await ctx.json_object()
    if "eventName" in body and body["eventName"] is not None:
        require_str(body, "eventName")
    apply_event_fields(ctx, event, body)
    return ok(ctx.sandbox.renderer.default_v2(event))


async def delete_by_object_id(ctx: Ctx) -> Response:
    """#11 DELETE /{objectId} -> 204 (404 when unknown)."""
    event = event_by_object_id(ctx, ctx.path("objectId"))
    ctx.store.delete_event(event.object_id)
    return no_content()


async def search(ctx: Ctx) -> Response:
    """#16 GET /events/search?q= -> the caller app's events whose externalEventId equals q."""
    q = ctx.required_query("q")
    results = [
        {
            "appId": e.app_id,
            "externalAccountId": e.external_account_id,
            "externalEventId": e.external_event_id,
            "objectId": e.object_id,
        }
        for e in sorted(
            ctx.store.events_of_app(ctx.app.app_id, q), key=lambda e: int(e.object_id)
        )
    ]
    return ok({"results": results})


async def identifiers(ctx: Ctx) -> Response:
    """#17 GET /{externalEventId}/identifiers -> every app's events with that externalEventId."""
    events = ctx.store.events_with_external_id(ctx.path("externalEventId"))
    results = [
        {
            "externalEventId": e.external_event_id,
            "marketingEventName": e.event_name,
            "objectId": e.object_id,
            "appInfo": ctx.sandbox.renderer.app_info(e.app_id),
            "externalAccountId": e.external_account_id,
        }
        for e in sorted(events, key=lambda e: int(e.object_id))
    ]
    return ok({"total": len(results), "results": results})
