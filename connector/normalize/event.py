"""EventProjector: webinar descriptions in, marketing-event commands out (for one partition).

A webinar record is the platform's whole current description; the projector emits only what
changed in HubSpot's terms: an upsert when a mapped field changed, complete once the webinar ENDED
(again only if the actual times change), cancel once it is CANCELLED. Stale versions (older
updatedAt than what was applied) are ignored, so a replayed compacted topic changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from connector.normalize.command import Command, EventCancel, EventComplete, EventUpsert


def event_upsert(webinar: dict[str, Any]) -> EventUpsert:
    """The contract's mapping of a webinar to HubSpot marketing-event fields."""
    return EventUpsert(
        eventName=webinar["title"],
        eventOrganizer=webinar["organizer"],
        eventType=webinar.get("eventType") or "WEBINAR",
        eventDescription=webinar.get("description"),
        eventUrl=webinar.get("url"),
        startDateTime=webinar.get("scheduledStart"),
        endDateTime=webinar.get("scheduledEnd"),
        eventCancelled=webinar["status"] == "CANCELLED",
        customProperties=dict(sorted((webinar.get("customProperties") or {}).items())),
    )


def event_complete(webinar: dict[str, Any]) -> EventComplete | None:
    """HubSpot's complete call once the webinar ENDED (actual times, else scheduled ones)."""
    if webinar["status"] != "ENDED":
        return None
    start = webinar.get("actualStart") or webinar.get("scheduledStart")
    end = webinar.get("actualEnd") or webinar.get("scheduledEnd")
    if start is None or end is None:
        return None
    return EventComplete(startDateTime=start, endDateTime=end)


class EventProjector:
    """What was last sent to HubSpot for each webinar of one webinars-topic partition."""

    def __init__(self) -> None:
        self.applied: dict[str, dict[str, Any]] = {}
        self._changed: set[str] = set()

    def on_webinar(self, webinar: dict[str, Any]) -> list[Command]:
        webinar_id = webinar["webinarId"]
        last = self.applied.get(webinar_id, {})
        if webinar["updatedAt"] < last.get("updatedAt", -1):
            return []
        upsert, complete = event_upsert(webinar), event_complete(webinar)
        cancelled = webinar["status"] == "CANCELLED"
        ids = (webinar_id, webinar["accountId"])
        commands = []
        if asdict(upsert) != last.get("upsert"):
            commands.append(Command(*ids, upsert))
        if complete is not None and asdict(complete) != last.get("complete"):
            commands.append(Command(*ids, complete))
        if cancelled and not last.get("cancelled"):
            commands.append(Command(*ids, EventCancel()))
        self.applied[webinar_id] = {
            "updatedAt": webinar["updatedAt"], "upsert": asdict(upsert),
            "complete": asdict(complete) if complete else last.get("complete"),
            "cancelled": cancelled or bool(last.get("cancelled")),
        }
        self._changed.add(webinar_id)
        return commands

    def drain_changes(self) -> list[tuple[str, Any]]:
        changes = [(f"e|{w}", self.applied[w]) for w in sorted(self._changed)]
        self._changed.clear()
        return changes

    def restore(self, key: str, value: Any) -> None:
        _, _, webinar_id = key.partition("|")
        if value is None:
            self.applied.pop(webinar_id, None)
        else:
            self.applied[webinar_id] = value
