"""In-memory sandbox state (events, contacts, participations, lists, app settings) with indexes,
and optional write-through to SQLite so a restarted sandbox keeps its state.

The store enforces no HubSpot rules; the route modules do. It only keeps indexes consistent and
tracks which records changed so `flush()` can persist them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connector.sandbox.models import ContactRecord, EventRecord, ListRecord, ParticipationRecord
from connector.sandbox.persist import SqlitePersistence

ExternalKey = tuple[int, str, str]  # (app_id, externalAccountId, externalEventId)

_FIRST_IDS = {"event": 555000000001, "contact": 47700000001, "participation": 90000000001}


class SandboxStore:
    """All HubSpot-side state of one sandbox portal (account).

    id_offset: added to every first id, so that accounts allocate distinct object ids (HubSpot's
    ids are unique across portals). The default account uses 0.
    """

    def __init__(self, persist_path: Path | None = None, *, id_offset: int = 0) -> None:
        self._first_ids = {kind: first + id_offset for kind, first in _FIRST_IDS.items()}
        self.events: dict[str, EventRecord] = {}
        self.contacts: dict[int, ContactRecord] = {}
        self.participations: dict[tuple[str, int], ParticipationRecord] = {}
        self.lists: dict[str, ListRecord] = {}
        self.settings: dict[int, str] = {}
        self._by_external: dict[ExternalKey, str] = {}
        self._by_email: dict[str, int] = {}
        self._by_event: dict[str, dict[int, ParticipationRecord]] = {}
        self._by_contact: dict[int, dict[str, ParticipationRecord]] = {}
        self._next = dict(self._first_ids)
        self.participation_versions: dict[str, int] = {}
        self._dirty: dict[tuple[str, str], Any] = {}
        self._deleted: set[tuple[str, str]] = set()
        self._db = SqlitePersistence(persist_path) if persist_path else None
        if self._db is not None:
            self._load()

    # ---- ids -------------------------------------------------------------------------------
    def next_id(self, kind: str) -> int:
        """Allocate the next id of a kind (event, contact, participation)."""
        value = self._next[kind]
        self._next[kind] = value + 1
        self._mark("counter", kind, self._next[kind])
        return value

    # ---- events ----------------------------------------------------------------------------
    def add_event(self, event: EventRecord) -> None:
        """Insert a new event."""
        self.events[event.object_id] = event
        key = (event.app_id, event.external_account_id, event.external_event_id)
        self._by_external[key] = event.object_id
        self._by_event.setdefault(event.object_id, {})
        self.touch_event(event)

    def touch_event(self, event: EventRecord) -> None:
        """Mark an event changed."""
        self._mark("event", event.object_id, event)

    def event_by_external(self, app_id: int, account: str, external_id: str) -> EventRecord | None:
        """The app's event with these external ids."""
        object_id = self._by_external.get((app_id, account, external_id))
        return self.events.get(object_id) if object_id else None

    def events_of_app(self, app_id: int, external_id: str) -> list[EventRecord]:
        """The app's events with this externalEventId (any account)."""
        return [
            self.events[oid]
            for (aid, _, eid), oid in self._by_external.items()
            if aid == app_id and eid == external_id
        ]

    def events_with_external_id(self, external_id: str) -> list[EventRecord]:
        """Every event (any app) with this externalEventId."""
        return [
            self.events[oid] for (_, _, eid), oid in self._by_external.items() if eid == external_id
        ]

    def delete_event(self, object_id: str) -> bool:
        """Delete an event with its participations; False when it did not exist."""
        event = self.events.pop(object_id, None)
        if event is None:
            return False
        self._by_external.pop((event.app_id, event.external_account_id, event.external_event_id))
        for vid, record in self._by_event.pop(object_id, {}).items():
            self.participations.pop((object_id, vid), None)
            self._by_contact.get(vid, {}).pop(object_id, None)
            self._unmark("participation", record.participation_id)
        self._unmark("event", object_id)
        return True

    # ---- contacts --------------------------------------------------------------------------
    def add_contact(self, contact: ContactRecord) -> None:
        """Insert a new contact."""
        self.contacts[contact.vid] = contact
        if contact.email:
            self._by_email[contact.email.lower()] = contact.vid
        self._mark("contact", str(contact.vid), contact)

    def contact_by_email(self, email: str) -> ContactRecord | None:
        """Contact with this email (case-insensitive)."""
        vid = self._by_email.get(email.lower())
        return self.contacts.get(vid) if vid is not None else None

    def contact_by_identifier(self, identifier: str) -> ContactRecord | None:
        """Contact by id (digits) or email."""
        if identifier.isdigit():
            return self.contacts.get(int(identifier))
        return self.contact_by_email(identifier)

    # ---- participations --------------------------------------------------------------------
    def participation(self, object_id: str, vid: int) -> ParticipationRecord | None:
        """A contact's participation in an event."""
        return self.participations.get((object_id, vid))

    def add_participation(self, record: ParticipationRecord) -> None:
        """Insert a new participation."""
        self.participations[(record.object_id, record.vid)] = record
        self._by_event.setdefault(record.object_id, {})[record.vid] = record
        self._by_contact.setdefault(record.vid, {})[record.object_id] = record
        self.touch_participation(record)

    def touch_participation(self, record: ParticipationRecord) -> None:
        """Mark a participation changed."""
        versions = self.participation_versions
        versions[record.object_id] = versions.get(record.object_id, 0) + 1
        self._mark("participation", record.participation_id, record)

    def participations_of_event_unordered(self, object_id: str) -> list[ParticipationRecord]:
        """Participations of one event, in no particular order (for counting)."""
        return list(self._by_event.get(object_id, {}).values())

    def participations_of_event(self, object_id: str) -> list[ParticipationRecord]:
        """Participations of one event, ordered by id."""
        records = self._by_event.get(object_id, {}).values()
        return sorted(records, key=lambda r: int(r.participation_id))

    def participations_of_contact(self, vid: int) -> list[ParticipationRecord]:
        """Participations of one contact, ordered by id."""
        records = self._by_contact.get(vid, {}).values()
        return sorted(records, key=lambda r: int(r.participation_id))

    # ---- lists and settings ----------------------------------------------------------------
    def add_list(self, record: ListRecord) -> None:
        """Insert or replace a list."""
        self.lists[record.list_id] = record
        self._mark("list", record.list_id, record)

    def set_event_details_url(self, app_id: int, url: str) -> None:
        """Store an app's eventDetailsUrl."""
        self.settings[app_id] = url
        self._mark("settings", str(app_id), {"app_id": app_id, "url": url})

    # ---- persistence -----------------------------------------------------------------------
    def _mark(self, kind: str, key: str, value: Any) -> None:
        if self._db is not None:
            self._deleted.discard((kind, key))
            self._dirty[(kind, key)] = value

    def _unmark(self, kind: str, key: str) -> None:
        if self._db is not None:
            self._dirty.pop((kind, key), None)
            self._deleted.add((kind, key))

    def flush(self) -> None:
        """Write changed records to SQLite (no-op without persistence)."""
        if self._db is None or (not self._dirty and not self._deleted):
            return
        upserts = []
        for (kind, key), value in self._dirty.items():
            is_record = dataclasses.is_dataclass(value) and not isinstance(value, type)
            body = dataclasses.asdict(value) if is_record else value
            upserts.append((kind, key, body))
        self._db.write(upserts, self._deleted)
        self._dirty.clear()
        self._deleted.clear()

    def _load(self) -> None:
        assert self._db is not None
        participations: list[ParticipationRecord] = []
        for kind, key, body in self._db.load():
            if kind == "event":
                event = EventRecord.from_dict(body)
                self.events[event.object_id] = event
                ext = (event.app_id, event.external_account_id, event.external_event_id)
                self._by_external[ext] = event.object_id
                self._by_event.setdefault(event.object_id, {})
            elif kind == "contact":
                contact = ContactRecord.from_dict(body)
                self.contacts[contact.vid] = contact
                if contact.email:
                    self._by_email[contact.email.lower()] = contact.vid
            elif kind == "participation":
                participations.append(ParticipationRecord.from_dict(body))
            elif kind == "list":
                self.lists[key] = ListRecord.from_dict(body)
            elif kind == "settings":
                self.settings[int(body["app_id"])] = body["url"]
            elif kind == "counter":
                self._next[key] = int(body)
        for record in participations:
            self.participations[(record.object_id, record.vid)] = record
            self._by_event.setdefault(record.object_id, {})[record.vid] = record
            self._by_contact.setdefault(record.vid, {})[record.object_id] = record

    def reset(self) -> None:
        """Forget everything, including persisted state."""
        for mapping in (
            self.events,
            self.contacts,
            self.participations,
            self.lists,
            self.settings,
            self._by_external,
            self._by_email,
            self._by_event,
            self._by_contact,
        ):
            mapping.clear()
        self._next = dict(self._first_ids)
        self.participation_versions.clear()
        self._dirty.clear()
        self._deleted.clear()
        if self._db is not None:
            self._db.clear()

    def close(self) -> None:
        """Flush and close persistence."""
        self.flush()
        if self._db is not None:
            self._db.close()
            self._db = None

    def iter_events(self) -> Iterator[EventRecord]:
        """Events ordered by objectId."""
        for object_id in sorted(self.events, key=int):
            yield self.events[object_id]
