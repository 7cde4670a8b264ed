"""Attendance inputs and participation read models (reference §3.9 to §3.11).

Attendance is written per contact, by contact id (``vid``) or by email; ``interactionDateTime``
is epoch milliseconds and, with the contact, makes the write idempotent. ``properties`` may carry
only ``joinedAt``/``leftAt`` and only for ``attend``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from connector.hubspot.models import (
    HubSpotDateTime,
    RequestModel,
    ResponseModel,
    epoch_ms,
    format_instant,
)
from connector.redact import mask_email


class AttendanceProperties(RequestModel):
    """``properties`` of an attendance input: when the contact joined and left (attend only)."""

    joined_at: HubSpotDateTime | None = None
    left_at: HubSpotDateTime | None = None


class _Subscriber(RequestModel):
    interaction_date_time: int
    properties: AttendanceProperties | None = None

    @field_validator("interaction_date_time", mode="before")
    @classmethod
    def _epoch_ms(cls, value: Any) -> Any:
        return epoch_ms(value) if isinstance(value, datetime) else value

    @field_validator("properties")
    @classmethod
    def _drop_empty(cls, value: AttendanceProperties | None) -> AttendanceProperties | None:
        if value is None or (value.joined_at is None and value.left_at is None):
            return None
        return value


class MarketingEventSubscriber(_Subscriber):
    """One contact by id: inputs of ``create`` (#18, #20) and legacy ``upsert`` (#22)."""

    vid: int


class MarketingEventEmailSubscriber(_Subscriber):
    """One contact by email: inputs of ``email-create`` (#19, #21) and ``email-upsert`` (#23).

    ``contact_properties`` apply only when HubSpot creates the contact.
    """

    email: str
    contact_properties: dict[str, str] | None = None

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, (mask_email(value) if name == "email" else value)


Subscriber = MarketingEventSubscriber | MarketingEventEmailSubscriber


class WireInputs(list[dict[str, Any]]):
    """Attendance inputs already in their wire form, as :func:`plain_subscriber_wire` gives
    them (keys in declaration order, None left out, every leaf a str, an int or a dict of str):
    a caller that holds the values with exactly those types (the sink, from Avro) builds them
    directly, without a model per input in between. Sent as they are."""


def plain_subscriber_wire(subscriber: Subscriber) -> dict[str, Any] | None:
    """``to_wire(subscriber)`` (the same keys, in the same order, with the same values) built by
    hand, or None unless the input is exactly one of the two classes holding values of exactly
    the declared types (what validation gives): ``to_wire`` is for those.

    An attendance batch serialises up to 100 inputs: pydantic's ``model_dump`` (and its call
    back into Python for every datetime) was most of the cost of building one; this reads the
    fields directly, in declaration order, leaving out None as ``to_wire`` does. Every leaf of
    what it returns is a str, an int or a dict of str (no float), so it is safe for
    :func:`~connector.hubspot.wire.plain_json`."""
    when = subscriber.interaction_date_time
    if type(when) is not int:
        return None
    wire: dict[str, Any] = {"interactionDateTime": when}
    if subscriber.properties is not None:
        properties = _properties_wire(subscriber.properties)
        if properties is None:
            return None
        wire["properties"] = properties
    if type(subscriber) is MarketingEventSubscriber:
        if type(subscriber.vid) is not int:
            return None
        wire["vid"] = subscriber.vid
        return wire
    if type(subscriber) is MarketingEventEmailSubscriber and type(subscriber.email) is str:
        wire["email"] = subscriber.email
        contact = subscriber.contact_properties
        if contact is not None:
            if not _str_map(contact):
                return None
            wire["contactProperties"] = contact
        return wire
    return None


def _properties_wire(properties: AttendanceProperties) -> dict[str, str] | None:
    """``properties`` of an input on the wire (None unless exactly AttendanceProperties)."""
    if type(properties) is not AttendanceProperties:
        return None
    wire: dict[str, str] = {}
    for key, value in (("joinedAt", properties.joined_at), ("leftAt", properties.left_at)):
        if value is not None:
            if not isinstance(value, datetime):
                return None
            wire[key] = format_instant(value)
    return wire


def _str_map(value: object) -> bool:
    """A dict of str to str, exactly (``contactProperties`` as validation leaves it)."""
    return type(value) is dict and all(
        type(k) is str and type(v) is str for k, v in value.items())


class SubscriberVidResponse(ResponseModel):
    """A success of ``create``: the contact id."""

    vid: int


class SubscriberEmailResponse(ResponseModel):
    """A success of ``email-create``: the email and the (possibly new) contact id."""

    email: str
    vid: int | None = None

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, (mask_email(value) if name == "email" else value)


class AttendanceCounters(ResponseModel):
    """Participation counters (#24, #25): each contact counted once, by current state."""

    attended: int = 0
    registered: int = 0
    cancelled: int = 0
    no_shows: int = 0


class ContactAssociation(ResponseModel):
    """The contact of a participation."""

    contact_id: str
    email: str | None = None
    firstname: str | None = None
    lastname: str | None = None


class MarketingEventAssociation(ResponseModel):
    """The event of a participation."""

    marketing_event_id: str
    name: str | None = None
    external_account_id: str | None = None
    external_event_id: str | None = None


class ParticipationAssociations(ResponseModel):
    """Who and which event."""

    contact: ContactAssociation
    marketing_event: MarketingEventAssociation


class ParticipationProperties(ResponseModel):
    """State and timing of a participation; ``occurredAt`` arrives as epoch ms or ISO text."""

    attendance_state: str
    occurred_at: int | datetime | None = None
    attendance_duration_seconds: int | None = None
    attendance_percentage: str | None = None


class ParticipationBreakdown(ResponseModel):
    """One contact's participation in one event (#26 to #28)."""

    id: str
    created_at: datetime | None = None
    associations: ParticipationAssociations
    properties: ParticipationProperties = Field(
        default_factory=lambda: ParticipationProperties(attendance_state="EMPTY")
    )
