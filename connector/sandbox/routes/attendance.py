"""Recording participation: attendance by objectId / external ids, legacy state upserts.

Malformed bodies are whole-request 400s; unknown contacts, invalid emails and disallowed
properties are per-input errors beside the successes (200 with errors[]/numErrors).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from connector.sandbox.attendance import parse_subscriber_state, record_interaction
from connector.sandbox.errors import not_found, standard_error, validation
from connector.sandbox.models import (
    ATTENDED,
    ContactRecord,
    EventRecord,
    Interaction,
    ParticipationRecord,
)
from connector.sandbox.pipeline import Ctx, no_content, ok
from connector.sandbox.routes.common import (
    batch_envelope,
    event_by_object_id,
    inputs_of,
    is_int,
    new_event,
)
from connector.sandbox.timefmt import ms_from_iso

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ALLOWED_PROPERTIES = ("joinedAt", "leftAt")


@dataclass
class Input:
    """One validated attendance input."""

    occurred_at: int
    vid: int | None = None
    email: str | None = None
    properties: dict[str, Any] | None = None
    contact_properties: dict[str, Any] | None = None


def _state(ctx: Ctx) -> str:
    state = parse_subscriber_state(ctx.path("subscriberState"))
    if state is None:
        raise validation(
            f"Invalid subscriberState {ctx.path('subscriberState')!r}: expected register, "
            "attend or cancel",
            field="subscriberState",
        )
    return state


async def _inputs(ctx: Ctx, *, by_email: bool) -> list[Input]:
    out = []
    for n, item in enumerate(inputs_of(await ctx.json_object())):
        where = f"inputs[{n}]"
        if not isinstance(item, dict):
            raise validation(f"{where} must be an object", field=where)
        if not is_int(item.get("interactionDateTime")):
            raise validation(
                "interactionDateTime is required (epoch milliseconds)",
                field=f"{where}.interactionDateTime",
            )
        parsed = Input(occurred_at=item["interactionDateTime"])
        if by_email:
            if not isinstance(item.get("email"), str):
                raise validation("email is required", field=f"{where}.email")
            parsed.email = item["email"].strip()
            contact_props = item.get("contactProperties")
            if contact_props is not None and not isinstance(contact_props, dict):
                raise validation("contactProperties must be an object", field=where)
            parsed.contact_properties = contact_props
        else:
            if not is_int(item.get("vid")):
                raise validation("vid is required (contact id)", field=f"{where}.vid")
            parsed.vid = item["vid"]
        props = item.get("properties")
        if props is not None and not isinstance(props, dict):
            raise validation("properties must be an object", field=f"{where}.properties")
        parsed.properties = props
        out.append(parsed)
    return out


def _interaction(ctx: Ctx, state: str, item: Input) -> Interaction | dict[str, Any]:
    """The interaction to record, or a per-input StandardError."""
    ids = {"vids": [str(item.vid)]} if item.vid is not None else {"emails": [item.email or ""]}
    joined = left = None
    for name, value in (item.properties or {}).items():
        if name not in ALLOWED_PROPERTIES:
            return standard_error(
                "VALIDATION_ERROR",
                f"Unknown participation property {name!r}; only joinedAt and leftAt are allowed",
                ids,
            )
        if state != ATTENDED:
            return standard_error(
                "VALIDATION_ERROR", f"{name} is only allowed when recording attendance", ids
            )
        try:
            ms = ms_from_iso(value)
        except (ValueError, TypeError, OverflowError):
            return standard_error(
                "VALIDATION_ERROR", f"{name} must be an ISO-8601 instant, got {value!r}", ids
            )
        if name == "joinedAt":
            joined = ms
        else:
            left = ms
    return Interaction(state, item.occurred_at, ctx.sandbox.now_ms(), joined, left)


def record(ctx: Ctx, event: EventRecord, contact: ContactRecord, interaction: Interaction) -> None:
    """Add one interaction to the contact's participation (idempotent)."""
    store = ctx.store
    participation = store.participation(event.object_id, contact.vid)
    if participation is None:
        participation = ParticipationRecord(
            participation_id=str(store.next_id("participation")),
            object_id=event.object_id,
            vid=contact.vid,
            created_at=interaction.recorded_at,
        )
        store.add_participation(participation)
    if record_interaction(participation, interaction):
        store.touch_participation(participation)


def _new_contact(ctx: Ctx, email: str, properties: dict[str, Any] | None) -> ContactRecord:
    now = ctx.sandbox.now_ms()
    props = {k: "" if v is None else str(v) for k, v in (properties or {}).items()}
    props["email"] = email
    contact = ContactRecord(ctx.store.next_id("contact"), email, props, now, now)
    ctx.store.add_contact(contact)
    return contact


def _apply(
    ctx: Ctx,
    event: EventRecord,
    state: str,
    items: list[Input],
    *,
    by_email: bool,
    create_contacts: bool,
) -> tuple[list[Any], list[dict[str, Any]]]:
    results: list[Any] = []
    errors: list[dict[str, Any]] = []
    store = ctx.store
    for item in items:
        ids = {"vids": [str(item.vid)]} if not by_email else {"emails": [item.email or ""]}
        if ctx.sandbox.faults.fail_batch_input():
            errors.append(
                standard_error(
                    "INTERNAL_ERROR", "Sandbox injected a failure for this input; retry it.", ids
                )
            )
            continue
        interaction = _interaction(ctx, state, item)
        if isinstance(interaction, dict):
            errors.append(interaction)
            continue
        if by_email:
            email = item.email or ""
            if not EMAIL.match(email):
                errors.append(standard_error("VALIDATION_ERROR", f"Invalid email {email!r}", ids))
                continue
            contact = store.contact_by_email(email)
            if contact is None and create_contacts:
                contact = _new_contact(ctx, email.lower(), item.contact_properties)
            if contact is None:
                errors.append(
                    standard_error("OBJECT_NOT_FOUND", f"No contact with email {email}", ids)
                )
                continue
            record(ctx, event, contact, interaction)
            results.append({"email": email, "vid": contact.vid})
        else:
            contact_by_id = store.contacts.get(item.vid or 0)
            if contact_by_id is None:
                errors.append(
                    standard_error("OBJECT_NOT_FOUND", f"Contact {item.vid} does not exist", ids)
                )
                continue
            record(ctx, event, contact_by_id, interaction)
            results.append({"vid": contact_by_id.vid})
    return results, errors


async def _external_event(ctx: Ctx, account: str | None) -> EventRecord:
    """The caller's event by external ids; when unknown, ask the app's eventDetailsUrl."""
    sandbox = ctx.sandbox
    external_id = ctx.path("externalEventId")
    if account is None:
        candidates = ctx.store.events_of_app(ctx.app.app_id, external_id)
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            raise validation(
                f"Several events have externalEventId={external_id}; pass externalAccountId",
                field="externalAccountId",
            )
    else:
        event = ctx.store.event_by_external(ctx.app.app_id, account, external_id)
        if event is not None:
            return event
    # settings are per app: they live in the default account's store
    template = sandbox.store.settings.get(ctx.app.app_id)
    if template is None or account is None:
        raise not_found(f"Marketing event with externalEventId={external_id} not found")
    outcome = await sandbox.fetcher.fetch(
        template=template,
        external_event_id=external_id,
        app_id=ctx.app.app_id,
        account=account,
        client_secret=ctx.app.client_secret,
        now_ms=sandbox.now_ms(),
    )
    sandbox.callback_log.append(
        {**outcome.as_log(), "appId": ctx.app.app_id, "hubId": ctx.app.hub_id}
    )
    existing = ctx.store.event_by_external(ctx.app.app_id, account, external_id)
    if existing is not None:  # created by a concurrent request while we waited
        return existing
    if outcome.details is None:
        raise not_found(
            f"Marketing event with externalEventId={external_id} not found and the app's "
            f"eventDetailsUrl gave no details ({outcome.error})"
        )
    details = {k: v for k, v in outcome.details.items() if k != "eventCompleted"}
    try:
        return new_event(ctx, account, external_id, details)
    except Exception as exc:
        raise not_found(f"eventDetailsUrl answer for {external_id} is invalid: {exc}") from exc


async def _record(ctx: Ctx, *, by_email: bool, external: bool) -> Response:
    state = _state(ctx)
    items = await _inputs(ctx, by_email=by_email)  # body problems never trigger a callback
    if external:
        event = await _external_event(ctx, ctx.query("externalAccountId"))
    else:
        event = event_by_object_id(ctx, ctx.path("objectId"))
    started = ctx.sandbox.now_ms()
    results, errors = _apply(ctx, event, state, items, by_email=by_email, create_contacts=by_email)
    return ok(batch_envelope(ctx, started, results, errors))


async def create_by_object_id(ctx: Ctx) -> Response:
    """#18 POST /{objectId}/attendance/{subscriberState}/create."""
    return await _record(ctx, by_email=False, external=False)


async def email_create_by_object_id(ctx: Ctx) -> Response:
    """#19 POST /{objectId}/attendance/{subscriberState}/email-create (creates contacts)."""
    return await _record(ctx, by_email=True, external=False)


async def create(ctx: Ctx) -> Response:
    """#20 POST /attendance/{externalEventId}/{subscriberState}/create[?externalAccountId=]."""
    return await _record(ctx, by_email=False, external=True)


async def email_create(ctx: Ctx) -> Response:
    """#21 POST /attendance/{externalEventId}/{subscriberState}/email-create."""
    return await _record(ctx, by_email=True, external=True)


async def _legacy(ctx: Ctx, *, by_email: bool) -> Response:
    """Legacy state change: contacts must exist (others are skipped), joinedAt/leftAt ignored,
    no detailed answer (204)."""
    state = _state(ctx)
    items = await _inputs(ctx, by_email=by_email)
    event = await _external_event(ctx, ctx.required_query("externalAccountId"))
    store = ctx.store
    for item in items:
        contact = (
            store.contact_by_email(item.email or "")
            if by_email
            else store.contacts.get(item.vid or 0)
        )
        if contact is not None:
            record(ctx, event, contact, Interaction(state, item.occurred_at, ctx.sandbox.now_ms()))
    return no_content()


async def upsert(ctx: Ctx) -> Response:
    """#22 POST /events/{externalEventId}/{subscriberState}/upsert -> 204."""
    return await _legacy(ctx, by_email=False)


async def email_upsert(ctx: Ctx) -> Response:
    """#23 POST /events/{externalEventId}/{subscriberState}/email-upsert -> 204."""
    return await _legacy(ctx, by_email=True)
