"""A minimal subset of HubSpot's CRM contacts API, so contacts can exist before attendance."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from connector.sandbox.errors import SandboxHTTPError, not_found, validation
from connector.sandbox.models import ContactRecord
from connector.sandbox.pipeline import Ctx, ok
from connector.sandbox.timefmt import iso_from_ms

DEFAULT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)


def render_contact(contact: ContactRecord, wanted: list[str] | None) -> dict[str, Any]:
    """A CRM `SimplePublicObject` for a contact."""
    every = {
        **contact.properties,
        "createdate": iso_from_ms(contact.created_at),
        "lastmodifieddate": iso_from_ms(contact.updated_at),
        "hs_object_id": str(contact.vid),
    }
    names = wanted if wanted is not None else list(DEFAULT_PROPERTIES)
    return {
        "id": str(contact.vid),
        "properties": {n: every.get(n) for n in names},
        "createdAt": iso_from_ms(contact.created_at),
        "updatedAt": iso_from_ms(contact.updated_at),
        "archived": False,
    }


async def create_contact(ctx: Ctx) -> Response:
    """POST /crm/v3/objects/contacts {properties} -> 201 (409 when the email exists)."""
    body = await ctx.json_object()
    props = body.get("properties")
    if not isinstance(props, dict):
        raise validation("properties is required and must be an object", field="properties")
    clean = {str(k): "" if v is None else str(v) for k, v in props.items()}
    email = clean.get("email", "").strip().lower() or None
    store = ctx.store
    if email:
        existing = store.contact_by_email(email)
        if existing is not None:
            raise SandboxHTTPError(
                409, "CONFLICT", f"Contact already exists. Existing ID: {existing.vid}"
            )
        clean["email"] = email
    now = ctx.sandbox.now_ms()
    contact = ContactRecord(store.next_id("contact"), email, clean, now, now)
    store.add_contact(contact)
    return ok(
        render_contact(contact, [*list(clean), "createdate", "hs_object_id", "lastmodifieddate"]),
        201,
    )


async def get_contact(ctx: Ctx) -> Response:
    """GET /crm/v3/objects/contacts/{contactId}[?idProperty=email][&properties=a,b]."""
    raw = ctx.path("contactId")
    id_property = ctx.query("idProperty")
    store = ctx.store
    contact: ContactRecord | None
    if id_property == "email":
        contact = store.contact_by_email(raw)
    elif id_property in (None, "", "hs_object_id"):
        contact = store.contacts.get(int(raw)) if raw.isdigit() else None
    else:
        raise validation(f"Unsupported idProperty {id_property!r}", field="idProperty")
    if contact is None:
        raise not_found(f"Contact {raw} not found")
    wanted = ctx.query("properties")
    names = [n for n in wanted.split(",") if n] if wanted else None
    return ok(render_contact(contact, names))
