"""Event records -> HubSpot's response models (reference §2.2)."""

from __future__ import annotations

from typing import Any

from connector.sandbox.attendance import Counters
from connector.sandbox.models import CustomProperty, EventRecord
from connector.sandbox.timefmt import iso_from_ms


class EventRenderer:
    """Renders events; `emit_nulls` writes unset optional fields as null (live HubSpot) rather
    than omitting them (the spec, which declares no nullable fields)."""

    def __init__(self, *, emit_nulls: bool, app_names: dict[int, str]) -> None:
        self.emit_nulls = emit_nulls
        self.app_names = app_names

    def _optional(self, out: dict[str, Any], key: str, value: Any) -> None:
        if value is not None or self.emit_nulls:
            out[key] = value

    def _common(self, event: EventRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "eventName": event.event_name,
            "eventOrganizer": event.event_organizer,
        }
        self._optional(out, "eventType", event.event_type)
        self._optional(out, "eventDescription", event.event_description)
        self._optional(out, "eventUrl", event.event_url)
        out["eventCancelled"] = event.cancelled
        out["eventCompleted"] = event.completed
        start = iso_from_ms(event.start_ms) if event.start_ms is not None else None
        end = iso_from_ms(event.end_ms) if event.end_ms is not None else None
        self._optional(out, "startDateTime", start)
        self._optional(out, "endDateTime", end)
        return out

    @staticmethod
    def property_value(name: str, prop: CustomProperty, app_id: int) -> dict[str, Any]:
        """A `PropertyValue` with every field the spec and SDK require."""
        return {
            "name": name,
            "value": prop.value,
            "timestamp": prop.timestamp,
            "source": "API",
            "sourceId": str(app_id),
            "sourceLabel": "",
            "sourceMetadata": "",
            "sourceUpstreamDeployable": "",
            "sourceVid": [],
            "requestId": "",
            "selectedByUser": False,
            "selectedByUserTimestamp": 0,
            "updatedByUserId": 0,
            "persistenceTimestamp": prop.timestamp,
            "useTimestampAsPersistenceTimestamp": True,
            "isLargeValue": False,
            "isEncrypted": False,
            "dataSensitivity": "none",
            "unit": "",
            "maskedSubstrings": {"substrings": []},
        }

    def default_v1(self, event: EventRecord) -> dict[str, Any]:
        """`MarketingEventDefaultResponse` (create, complete, cancel)."""
        out = self._common(event)
        out["objectId"] = event.object_id
        out["customProperties"] = [
            self.property_value(n, p, event.app_id) for n, p in event.custom_properties.items()
        ]
        return out

    def public_default(self, event: EventRecord) -> dict[str, Any]:
        """`MarketingEventPublicDefaultResponse` (upsert, patch by external ids)."""
        out = self.default_v1(event)
        out["id"] = event.object_id
        out["createdAt"] = iso_from_ms(event.created_at)
        out["updatedAt"] = iso_from_ms(event.updated_at)
        return out

    def public_read(self, event: EventRecord, counters: Counters) -> dict[str, Any]:
        """`MarketingEventPublicReadResponse` (get by external ids)."""
        out = self.public_default(event)
        out["externalEventId"] = event.external_event_id
        out.update(counters.as_event_fields())
        return out

    def app_info(self, app_id: int) -> dict[str, str]:
        """`AppInfo`."""
        return {"id": str(app_id), "name": self.app_names.get(app_id, f"App {app_id}")}

    def default_v2(self, event: EventRecord) -> dict[str, Any]:
        """`MarketingEventPublicDefaultResponseV2` (patch by objectId, batch update)."""
        out = self._common(event)
        out["objectId"] = event.object_id
        out["appInfo"] = self.app_info(event.app_id)
        out["customProperties"] = [
            {"name": n, "value": p.value} for n, p in event.custom_properties.items()
        ]
        out["createdAt"] = iso_from_ms(event.created_at)
        out["updatedAt"] = iso_from_ms(event.updated_at)
        return out

    def read_v2(self, event: EventRecord, counters: Counters, now_ms: int) -> dict[str, Any]:
        """`MarketingEventPublicReadResponseV2` (get by objectId, list)."""
        out = self.default_v2(event)
        out["externalEventId"] = event.external_event_id
        status = event_status(event, now_ms)
        out["eventStatus"] = status
        out["eventStatusV2"] = status.lower()
        out.update(counters.as_event_fields())
        return out


def event_status(event: EventRecord, now_ms: int) -> str:
    """CANCELLED | COMPLETED | UPCOMING | ONGOING (only ONGOING and CANCELLED are observed)."""
    if event.cancelled:
        return "CANCELLED"
    if event.completed or (event.end_ms is not None and event.end_ms <= now_ms):
        return "COMPLETED"
    if event.start_ms is not None and event.start_ms > now_ms:
        return "UPCOMING"
    return "ONGOING"
