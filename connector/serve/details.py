"""The eventDetailsUrl answer: a webinar as HubSpot wants it to create an unknown event.

HubSpot calls ``GET {eventDetailsUrl}?appId=&externalAccountId=`` when it gets a state change for
an event it does not know (reference §3.13) and creates the event from the JSON answer:
``eventName`` and ``eventOrganizer`` (required), ``eventType``, ``startDateTime``,
``endDateTime``, ``eventDescription``, ``eventUrl`` (optional) and ``eventCancelled`` (default
false). Fields come from :func:`connector.normalize.event.event_upsert`, the same mapping the
sink upserts, so an event created through the callback is the event the sink would have created.
Unset optional fields are left out (HubSpot's create treats absent and null alike); date-times are
ISO-8601 UTC with milliseconds and ``Z``, as HubSpot writes them. ``customProperties`` and
``eventCompleted`` are not part of the callback contract: the sink's next upsert / complete of the
webinar sets them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connector.normalize.event import event_upsert

#: The fields of the callback contract, in HubSpot's order.
DETAIL_FIELDS = (
    "eventName",
    "eventOrganizer",
    "eventType",
    "startDateTime",
    "endDateTime",
    "eventDescription",
    "eventUrl",
    "eventCancelled",
)


def iso_ms(epoch_ms: int) -> str:
    """Epoch milliseconds as HubSpot writes instants: ``2026-01-01T10:00:00.000Z``."""
    instant = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_details(webinar: dict[str, Any]) -> dict[str, Any]:
    """The eventDetailsUrl answer for one webinar of the webinar table."""
    upsert = event_upsert(webinar)
    values: dict[str, Any] = {
        "eventName": upsert.eventName,
        "eventOrganizer": upsert.eventOrganizer,
        "eventType": upsert.eventType,
        "startDateTime": iso_ms(upsert.startDateTime) if upsert.startDateTime is not None
        else None,
        "endDateTime": iso_ms(upsert.endDateTime) if upsert.endDateTime is not None else None,
        "eventDescription": upsert.eventDescription,
        "eventUrl": upsert.eventUrl,
        "eventCancelled": upsert.eventCancelled,
    }
    return {name: values[name] for name in DETAIL_FIELDS if values[name] is not None}
