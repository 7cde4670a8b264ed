"""List associations by objectId and by external ids (write scope even for reads, per spec)."""

from __future__ import annotations

from starlette.responses import Response

from connector.sandbox.errors import not_found
from connector.sandbox.models import EventRecord, ListRecord
from connector.sandbox.pipeline import Ctx, no_content, ok
from connector.sandbox.routes.common import event_by_external, event_by_object_id
from connector.sandbox.timefmt import iso_from_ms


def _event(ctx: Ctx) -> EventRecord:
    if "marketingEventId" in ctx.request.path_params:
        return event_by_object_id(ctx, ctx.path("marketingEventId"))
    return event_by_external(ctx, ctx.path("externalAccountId"), ctx.path("externalEventId"))


def _list(ctx: Ctx, list_id: str) -> ListRecord:
    store = ctx.store
    record = store.lists.get(list_id)
    if record is None:
        if not ctx.sandbox.config.auto_create_lists:
            raise not_found(f"List {list_id} not found")
        record = ListRecord(
            list_id=list_id, name=f"List {list_id}", created_at=ctx.sandbox.now_ms()
        )
        store.add_list(record)
    return record


def public_list(record: ListRecord, size: int) -> dict[str, object]:
    """`PublicList`."""
    created = iso_from_ms(record.created_at)
    return {
        "listId": record.list_id,
        "listVersion": 1,
        "name": record.name,
        "objectTypeId": record.object_type_id,
        "processingStatus": "COMPLETE",
        "processingType": record.processing_type,
        "createdAt": created,
        "updatedAt": created,
        "size": size,
    }


async def get_lists(ctx: Ctx) -> Response:
    """#29 / #32 GET .../lists -> CollectionResponseWithTotalPublicList."""
    event = _event(ctx)
    store = ctx.store
    results = [
        public_list(store.lists[list_id], 0) for list_id in event.list_ids if list_id in store.lists
    ]
    return ok({"total": len(results), "results": results})


async def associate(ctx: Ctx) -> Response:
    """#30 / #33 PUT .../lists/{listId} -> 204."""
    event = _event(ctx)
    record = _list(ctx, ctx.path("listId"))
    if record.list_id not in event.list_ids:
        event.list_ids.append(record.list_id)
        ctx.store.touch_event(event)
    return no_content()


async def disassociate(ctx: Ctx) -> Response:
    """#31 / #34 DELETE .../lists/{listId} -> 204 (also when not associated)."""
    event = _event(ctx)
    list_id = ctx.path("listId")
    if list_id in event.list_ids:
        event.list_ids.remove(list_id)
        ctx.store.touch_event(event)
    return no_content()
