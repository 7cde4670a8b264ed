"""Helpers shared by the handlers: event lookup, field parsing, batch envelopes, paging."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import urlencode

from connector.sandbox.errors import SandboxHTTPError, not_found, validation
from connector.sandbox.models import CustomProperty, EventRecord
from connector.sandbox.pipeline import Ctx
from connector.sandbox.timefmt import iso_from_ms, ms_from_iso

STRING_FIELDS = {
    "eventName": "event_name",
    "eventOrganizer": "event_organizer",
    "eventType": "event_type",
    "eventDescription": "event_description",
    "eventUrl": "event_url",
}
MAX_PAGE = 100
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def is_int(value: Any, maximum: int = INT64_MAX) -> bool:
    """A JSON integer (not a bool) within [-maximum-1, maximum]."""
    return (
        isinstance(value, int) and not isinstance(value, bool) and -maximum - 1 <= value <= maximum
    )


def event_by_external(ctx: Ctx, account: str, external_id: str) -> EventRecord:
    """The caller app's event (404 for unknown ids and for other apps' events)."""
    event = ctx.store.event_by_external(ctx.app.app_id, account, external_id)
    if event is None:
        raise not_found(
            f"Marketing event with externalAccountId={account} and "
            f"externalEventId={external_id} not found"
        )
    return event


def event_by_object_id(ctx: Ctx, object_id: str) -> EventRecord:
    """Any app's event by objectId (404 when unknown)."""
    event = ctx.store.events.get(object_id.strip())
    if event is None:
        raise not_found(f"Marketing event with objectId={object_id} not found")
    return event


def require_str(body: dict[str, Any], name: str, *, non_empty: bool = True) -> str:
    """A required string field."""
    value = body.get(name)
    if not isinstance(value, str) or (non_empty and not value.strip()):
        raise validation(f"{name} is required and must be a non-empty string", field=name)
    return value


def parse_date(body: dict[str, Any], name: str) -> int | None:
    """An optional ISO-8601 date-time field -> epoch ms."""
    value = body.get(name)
    if value is None:
        return None
    try:
        return ms_from_iso(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise validation(
            f"{name} must be an ISO-8601 date-time, got {value!r}", field=name
        ) from exc


def parse_custom_properties(ctx: Ctx, body: dict[str, Any]) -> dict[str, str] | None:
    """customProperties -> {name: value}; names not defined on the portal are dropped."""
    raw = body.get("customProperties")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise validation("customProperties must be an array", field="customProperties")
    defined = ctx.sandbox.config.custom_property_names
    out: dict[str, str] = {}
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise validation(
                "customProperties items must be objects with a string name",
                field="customProperties",
            )
        value = item.get("value")
        if isinstance(value, dict | list):
            raise validation("customProperties values must be scalars", field="customProperties")
        if defined is not None and item["name"] not in defined:
            continue  # HubSpot silently drops properties the portal does not define
        out[item["name"]] = "" if value is None else _scalar(value)
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_event_changes(
    ctx: Ctx, body: dict[str, Any], *, allow_completed: bool = True
) -> dict[str, Any]:
    """Validate the optional event fields present in `body` -> attribute changes (incl.
    `custom_properties`: {name: value}). Raises 400 before anything is written."""
    changes: dict[str, Any] = {}
    for key, attr in STRING_FIELDS.items():
        if key in body and body[key] is not None:
            if not isinstance(body[key], str):
                raise validation(f"{key} must be a string", field=key)
            changes[attr] = body[key]
    flags = {"eventCancelled": "cancelled"}
    if allow_completed:
        flags["eventCompleted"] = "completed"
    for key, attr in flags.items():
        if key in body and body[key] is not None:
            if not isinstance(body[key], bool):
                raise validation(f"{key} must be a boolean", field=key)
            changes[attr] = body[key]
    for key, attr in (("startDateTime", "start_ms"), ("endDateTime", "end_ms")):
        if key in body and body[key] is not None:
            changes[attr] = parse_date(body, key)
    props = parse_custom_properties(ctx, body)
    if props:
        changes["custom_properties"] = props
    return changes


def apply_changes(ctx: Ctx, event: EventRecord, changes: dict[str, Any]) -> None:
    """Write parsed changes (see parse_event_changes) and bump updatedAt."""
    now = ctx.sandbox.now_ms()
    for attr, value in changes.items():
        if attr == "custom_properties":
            for name, text in value.items():
                event.custom_properties[name] = CustomProperty(value=text, timestamp=now)
        else:
            setattr(event, attr, value)
    event.updated_at = max(now, event.created_at)
    ctx.store.touch_event(event)


def apply_event_fields(
    ctx: Ctx, event: EventRecord, body: dict[str, Any], *, allow_completed: bool = True
) -> None:
    """Validate then apply the optional event fields present in `body`."""
    apply_changes(ctx, event, parse_event_changes(ctx, body, allow_completed=allow_completed))


def new_event(ctx: Ctx, account: str, external_id: str, body: dict[str, Any]) -> EventRecord:
    """Create (and store) an event owned by the calling app from a create-params body."""
    name = require_str(body, "eventName")
    organizer = body.get("eventOrganizer")
    if not isinstance(organizer, str):
        raise validation("eventOrganizer is required and must be a string", field="eventOrganizer")
    changes = parse_event_changes(ctx, body)  # validate before an id is allocated
    now = ctx.sandbox.now_ms()
    event = EventRecord(
        object_id=str(ctx.store.next_id("event")),
        app_id=ctx.app.app_id,
        external_account_id=account,
        external_event_id=external_id,
        event_name=name,
        event_organizer=organizer,
        created_at=now,
        updated_at=now,
    )
    apply_changes(ctx, event, changes)
    ctx.store.add_event(event)
    return event


def inputs_of(body: dict[str, Any]) -> list[Any]:
    """The `inputs` array of a batch body."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise validation("inputs is required and must be an array", field="inputs")
    return inputs


def batch_envelope(
    ctx: Ctx, started_ms: int, results: list[Any], errors: list[dict[str, Any]]
) -> dict[str, Any]:
    """`BatchResponse*` body; errors/numErrors only when some inputs failed."""
    now = ctx.sandbox.now_ms()
    out: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "requestedAt": iso_from_ms(started_ms),
        "startedAt": iso_from_ms(started_ms),
        "completedAt": iso_from_ms(max(now, started_ms)),
    }
    if errors:
        out["errors"] = errors
        out["numErrors"] = len(errors)
    return out


def encode_cursor(value: str) -> str:
    """HubSpot-style opaque cursor: base64 of the next id."""
    return base64.b64encode(value.encode()).decode()


def decode_cursor(value: str | None) -> int | None:
    """Inverse of encode_cursor (400 for anything else)."""
    if value is None or value == "":
        return None
    try:
        text = base64.b64decode(value.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise validation(f"Invalid paging cursor {value!r}", field="after") from exc
    if not text.isdigit():
        raise validation(f"Invalid paging cursor {value!r}", field="after")
    return int(text)


def page_limit(ctx: Ctx, default: int = 10, *, strict: bool) -> int:
    """`limit`: 1..100; `strict` answers 400 outside the range, else clamps to 100."""
    raw = ctx.query("limit")
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except ValueError as exc:
        raise validation(f"limit must be an integer, got {raw!r}", field="limit") from exc
    if limit < 1 or limit > INT32_MAX or (strict and limit > MAX_PAGE):
        raise validation(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    return min(limit, MAX_PAGE)


def next_link(ctx: Ctx, after: str) -> str:
    """The absolute URL of the next page (same path and query, new `after`)."""
    params = [(k, v) for k, v in ctx.request.query_params.multi_items() if k != "after"]
    params.append(("after", after))
    return f"{ctx.base_url()}{ctx.request.url.path}?{urlencode(params)}"


def conflict(message: str) -> SandboxHTTPError:
    """409 CONFLICT."""
    return SandboxHTTPError(409, "CONFLICT", message)
