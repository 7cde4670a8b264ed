"""Commands -> HubSpot requests (pure): which endpoint, which group, which body.

* Event commands use the external-ID endpoints: EventUpsert -> ``PUT /events/{externalEventId}``
  (#2), EventComplete -> ``/complete`` (#6), EventCancel -> ``/cancel`` (#7). Every answer carries
  the objectId, which the sink caches per :class:`EventKey`.
* Attendance goes to the objectId endpoints: ``/{objectId}/attendance/{state}/create`` (#18) when
  the contact id (``vid``) is known, else ``/email-create`` (#19) with ``contactProperties``.
  The path state is the spec's verb (REGISTERED -> ``register``, CANCELLED -> ``cancel``,
  ATTENDED -> ``attend``); ``joinedAt``/``leftAt`` are sent as ISO-8601 instants, ATTENDED only.
* Attendance is batched by :class:`GroupKey` = (event, state, identifier kind): one request
  carries inputs of one endpoint only.
* List associations: :class:`ListTargets` says which HubSpot lists an event joins (configured by
  webinar id = externalEventId, or by account = externalAccountId); the sink links them with
  ``PUT /associations/{objectId}/lists/{listId}`` (#30) after an upsert taught it the objectId.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from connector.config import ListAssociation
from connector.hubspot import (
    AttendanceProperties,
    CustomProperty,
    MarketingEventCreateRequestParams,
    MarketingEventEmailSubscriber,
    MarketingEventSubscriber,
    SubscriberState,
    WireInputs,
)
from connector.hubspot.models import format_instant
from connector.normalize.command import Attendance, Command, EventUpsert

STATE_PATHS = {
    "REGISTERED": SubscriberState.REGISTER,
    "CANCELLED": SubscriberState.CANCEL,
    "ATTENDED": SubscriberState.ATTEND,
}

Subscriber = MarketingEventSubscriber | MarketingEventEmailSubscriber


class IdentifierKind(StrEnum):
    """How an attendance input names the contact: by contact id or by email."""

    VID = "vid"
    EMAIL = "email"


_VID, _EMAIL = IdentifierKind.VID, IdentifierKind.EMAIL  # (an enum member lookup costs ~70 ns)
#: Makes the key tuples below field by field without the generated ``__new__`` of a named tuple
#: (a Python lambda): the hottest constructors of the sink, so their callers here pass exactly
#: the fields, in order.
_new_tuple = tuple.__new__


class EventKey(NamedTuple):
    """A marketing event by external IDs (the objectId cache key).

    A named tuple, not a frozen dataclass: every consumed command makes a few, and the sink's
    lanes, persons, parking lot and objectId cache hash and compare them on every command; a
    tuple does all three in C (a frozen dataclass runs its ``__init__``, ``__hash__`` and
    ``__eq__`` as Python, several times the cost). Immutable all the same."""

    account: str
    event: str

    @classmethod
    def of(cls, command: Command) -> EventKey:
        """The event a command is about."""
        return _new_tuple(cls, (command.externalAccountId, command.externalEventId))


class GroupKey(NamedTuple):
    """Attendance inputs that can share one request (a named tuple, as :class:`EventKey`)."""

    event: EventKey
    state: SubscriberState
    kind: IdentifierKind


def attendance_of(command: Command) -> Attendance | None:
    """The Attendance body, or None for event commands."""
    body = command.body
    return body if isinstance(body, Attendance) else None


def is_event_upsert(command: Command) -> bool:
    """True for the command that can create the event."""
    return isinstance(command.body, EventUpsert)


def subscriber_state(attendance: Attendance) -> SubscriberState:
    """The path state for an attendance state (ValueError for an unknown one)."""
    try:
        return STATE_PATHS[attendance.state]
    except KeyError:
        raise ValueError(f"unknown attendance state {attendance.state!r}") from None


def identifier_kind(attendance: Attendance) -> IdentifierKind:
    """VID when the contact id is known, else EMAIL (ValueError when neither is set)."""
    if attendance.vid is not None:
        return _VID
    if attendance.email:
        return _EMAIL
    raise ValueError("attendance names no contact: neither vid nor email is set")


def group_key(command: Command) -> GroupKey:
    """The batch group of an attendance command."""
    attendance = command.body
    if not isinstance(attendance, Attendance):
        raise ValueError(f"{command.kind} is not an attendance command")
    return _new_tuple(GroupKey, (EventKey.of(command), subscriber_state(attendance),
                                 identifier_kind(attendance)))


def person_of(attendance: Attendance) -> str:
    """The person an attendance is about, as HubSpot will identify them."""
    if attendance.vid is not None:
        return f"vid:{attendance.vid}"
    return f"email:{(attendance.email or '').strip().lower()}"


def subject_of(attendance: Attendance) -> str:
    """How a batch error names this input (``context.vids`` / ``context.emails``)."""
    if attendance.vid is not None:
        return str(attendance.vid)
    return (attendance.email or "").strip().lower()


def instant(epoch_ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)  # tz positional: half the cost


def subscriber(attendance: Attendance) -> Subscriber:
    """The attendance input for #18 (by vid) or #19 (by email); ValueError when the attendance
    names no contact (see :func:`identifier_kind`)."""
    properties = None
    joined, left = attendance.joinedAt, attendance.leftAt
    if attendance.state == "ATTENDED" and (joined or left):
        properties = AttendanceProperties(
            joined_at=instant(joined) if joined is not None else None,
            left_at=instant(left) if left is not None else None,
        )
    vid = attendance.vid
    if vid is not None:
        return MarketingEventSubscriber(
            vid=vid, interaction_date_time=attendance.interactionDateTime, properties=properties)
    email = attendance.email
    if not email:
        identifier_kind(attendance)  # raises: neither vid nor email
    return MarketingEventEmailSubscriber(
        email=(email or "").strip(),
        interaction_date_time=attendance.interactionDateTime,
        contact_properties=dict(attendance.contactProperties) or None,
        properties=properties,
    )


def subscriber_wire(attendance: Attendance) -> dict[str, Any] | None:
    """What ``plain_subscriber_wire(subscriber(attendance))`` gives (the same keys, in the same
    order, with the same values), built straight from the command, or None unless its values
    have exactly the types Avro decodes them to (then :func:`subscriber` is the way).

    The sink's hottest builder (up to 100 inputs a request): a validated model per input, only
    to be read back field by field, was most of its cost. ValueError when the attendance names
    no contact, as :func:`subscriber`."""
    when, vid, email = attendance.interactionDateTime, attendance.vid, attendance.email
    if type(when) is not int:
        return None
    wire: dict[str, Any] = {"interactionDateTime": when}
    joined, left = attendance.joinedAt, attendance.leftAt
    if attendance.state == "ATTENDED" and (joined or left):
        properties: dict[str, str] = {}
        if joined is not None:
            properties["joinedAt"] = format_instant(instant(joined))
        if left is not None:
            properties["leftAt"] = format_instant(instant(left))
        wire["properties"] = properties
    if vid is not None:
        if type(vid) is not int:
            return None
        wire["vid"] = vid
        return wire
    if type(email) is not str or not email:
        identifier_kind(attendance)  # raises: neither vid nor email
        return None
    wire["email"] = email.strip()
    contact = attendance.contactProperties
    if contact:
        if type(contact) is not dict or not all(
                type(k) is str and type(v) is str for k, v in contact.items()):
            return None
        wire["contactProperties"] = dict(contact)
    return wire


def attendance_inputs(attendances: Iterable[Attendance]) -> WireInputs | list[Subscriber]:
    """The inputs of one attendance request: in wire form when every one can be built
    directly (:func:`subscriber_wire`), else as models."""
    listed = list(attendances)
    wire = WireInputs()
    for attendance in listed:
        built = subscriber_wire(attendance)
        if built is None:
            return [subscriber(a) for a in listed]
        wire.append(built)
    return wire


def event_params(command: Command) -> MarketingEventCreateRequestParams:
    """The PUT body of an EventUpsert."""
    body = command.body
    if not isinstance(body, EventUpsert):
        raise ValueError(f"{command.kind} is not an EventUpsert")
    return MarketingEventCreateRequestParams(
        external_account_id=command.externalAccountId,
        external_event_id=command.externalEventId,
        event_name=body.eventName,
        event_organizer=body.eventOrganizer,
        event_type=body.eventType,
        event_description=body.eventDescription,
        event_url=body.eventUrl,
        start_date_time=instant(body.startDateTime) if body.startDateTime is not None else None,
        end_date_time=instant(body.endDateTime) if body.endDateTime is not None else None,
        event_cancelled=body.eventCancelled,
        custom_properties=[
            CustomProperty(name=name, value=value)
            for name, value in sorted(body.customProperties.items())
        ],
    )


@dataclass(frozen=True)
class ListTargets:
    """Which HubSpot lists each event is associated with (from ``hubspot.list_associations``)."""

    by_webinar: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    by_account: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, associations: Iterable[ListAssociation]) -> ListTargets:
        """Merge the configured associations (several entries may name the same webinar)."""
        by_webinar: dict[str, tuple[str, ...]] = {}
        by_account: dict[str, tuple[str, ...]] = {}
        for item in associations:
            if item.webinar_id is not None:
                target, key = by_webinar, item.webinar_id
            elif item.account_id is not None:
                target, key = by_account, item.account_id
            else:  # pragma: no cover - the settings validator requires one of them
                continue
            target[key] = tuple(dict.fromkeys((*target.get(key, ()), *item.list_ids)))
        return cls(by_webinar, by_account)

    def lists_for(self, event: EventKey) -> tuple[str, ...]:
        """The event's lists: those of its webinar, then those of its account, each once."""
        return tuple(dict.fromkeys((*self.by_webinar.get(event.event, ()),
                                    *self.by_account.get(event.account, ()))))

    def __bool__(self) -> bool:
        return bool(self.by_webinar or self.by_account)
