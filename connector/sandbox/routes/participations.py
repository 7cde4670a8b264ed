"""Participation counters and breakdowns (by external ids, by objectId, by contact)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from connector.sandbox.attendance import attendance_seconds, current_state, latest
from connector.sandbox.errors import not_found, validation
from connector.sandbox.models import STATES, EventRecord, ParticipationRecord
from connector.sandbox.pipeline import Ctx, ok
from connector.sandbox.routes.common import (
    decode_cursor,
    encode_cursor,
    event_by_external,
    is_int,
    next_link,
    page_limit,
)
from connector.sandbox.timefmt import iso_from_ms


def _event_by_int_id(ctx: Ctx) -> EventRecord:
    raw = ctx.path("marketingEventId")
    try:
        number = int(raw)
    except ValueError as exc:
        raise validation(
            f"marketingEventId must be an integer, got {raw!r}", field="marketingEventId"
        ) from exc
    if not is_int(number):
        raise validation("marketingEventId is out of the int64 range", field="marketingEventId")
    event = ctx.store.events.get(str(int(raw)))
    if event is None:
        raise not_found(f"Marketing event with id {raw} not found")
    return event


async def counters_by_external(ctx: Ctx) -> Response:
    """#24 GET /participations/{externalAccountId}/{externalEventId} -> AttendanceCounters."""
    event = event_by_external(ctx, ctx.path("externalAccountId"), ctx.path("externalEventId"))
    return ok(ctx.counters_of(event).as_attendance_counters())


async def counters_by_object_id(ctx: Ctx) -> Response:
    """#25 GET /participations/{marketingEventId} -> AttendanceCounters."""
    event = _event_by_int_id(ctx)
    return ok(ctx.counters_of(event).as_attendance_counters())


def _row(ctx: Ctx, record: ParticipationRecord, event: EventRecord, state: str) -> dict[str, Any]:
    contact = ctx.store.contacts.get(record.vid)
    contact_assoc: dict[str, Any] = {
        "contactId": str(record.vid),
        "email": (contact.email if contact and contact.email else ""),
    }
    for name in ("firstname", "lastname"):
        if contact and contact.properties.get(name):
            contact_assoc[name] = contact.properties[name]
    last = latest(record)
    properties: dict[str, Any] = {
        "attendanceState": state,
        "occurredAt": last.occurred_at if last else record.created_at,
    }
    duration = attendance_seconds(record)
    if duration is not None:
        properties["attendanceDurationSeconds"] = duration
    return {
        "id": record.participation_id,
        "createdAt": iso_from_ms(record.created_at),
        "associations": {
            "marketingEvent": {
                "marketingEventId": event.object_id,
                "name": event.event_name,
                "externalAccountId": event.external_account_id,
                "externalEventId": event.external_event_id,
            },
            "contact": contact_assoc,
        },
        "properties": properties,
    }


def _breakdown(ctx: Ctx, records: list[ParticipationRecord], *, contact_filter: bool) -> Response:
    state_filter = ctx.query("state")
    if state_filter is not None and state_filter not in STATES:
        raise validation(
            f"state must be one of {', '.join(STATES)}, got {state_filter!r}", field="state"
        )
    limit = page_limit(ctx, strict=True)
    after = decode_cursor(ctx.query("after"))
    identifier = ctx.query("contactIdentifier") if contact_filter else None
    vid_filter: int | None = None
    if identifier:
        contact = ctx.store.contact_by_identifier(identifier.strip())
        vid_filter = contact.vid if contact else -1
    now = ctx.sandbox.now_ms()
    rows: list[tuple[ParticipationRecord, EventRecord, str]] = []
    for record in records:
        event = ctx.store.events.get(record.object_id)
        if event is None or (vid_filter is not None and record.vid != vid_filter):
            continue
        state = current_state(record, event, now)
        if state_filter is not None and state != state_filter:
            continue
        rows.append((record, event, state))
    total = len(rows)
    if after is not None:
        rows = [r for r in rows if int(r[0].participation_id) >= after]
    page = rows[:limit]
    out: dict[str, Any] = {"total": total, "results": [_row(ctx, *r) for r in page]}
    if len(rows) > limit:
        cursor = encode_cursor(rows[limit][0].participation_id)
        out["paging"] = {"next": {"after": cursor, "link": next_link(ctx, cursor)}}
    return ok(out)


async def breakdown_by_external(ctx: Ctx) -> Response:
    """#26 GET /participations/{externalAccountId}/{externalEventId}/breakdown."""
    event = event_by_external(ctx, ctx.path("externalAccountId"), ctx.path("externalEventId"))
    records = ctx.store.participations_of_event(event.object_id)
    return _breakdown(ctx, records, contact_filter=True)


async def breakdown_by_object_id(ctx: Ctx) -> Response:
    """#27 GET /participations/{marketingEventId}/breakdown."""
    event = _event_by_int_id(ctx)
    records = ctx.store.participations_of_event(event.object_id)
    return _breakdown(ctx, records, contact_filter=True)


async def breakdown_by_contact(ctx: Ctx) -> Response:
    """#28 GET /participations/contacts/{contactIdentifier}/breakdown."""
    identifier = ctx.path("contactIdentifier").strip()
    contact = ctx.store.contact_by_identifier(identifier)
    if contact is None:
        raise not_found(f"Contact {identifier} not found")
    records = ctx.store.participations_of_contact(contact.vid)
    return _breakdown(ctx, records, contact_filter=False)
