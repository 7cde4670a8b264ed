"""The sandbox's records: events, contacts, participations, lists. Plain mutable dataclasses,
serialisable with `dataclasses.asdict` for SQLite persistence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Participation states as the participation API names them.
REGISTERED = "REGISTERED"
ATTENDED = "ATTENDED"
CANCELLED = "CANCELLED"
NO_SHOW = "NO_SHOW"
STATES = (REGISTERED, ATTENDED, CANCELLED, NO_SHOW)


@dataclass
class CustomProperty:
    """A customProperties entry as stored: value and when it was written (epoch ms)."""

    value: str
    timestamp: int


@dataclass
class EventRecord:
    """One marketing event."""

    object_id: str
    app_id: int
    external_account_id: str
    external_event_id: str
    event_name: str
    event_organizer: str
    created_at: int
    updated_at: int
    event_type: str | None = None
    event_description: str | None = None
    event_url: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    cancelled: bool = False
    completed: bool = False
    custom_properties: dict[str, CustomProperty] = field(default_factory=dict)
    list_ids: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventRecord:
        """Inverse of `dataclasses.asdict`."""
        props = {k: CustomProperty(**v) for k, v in data.pop("custom_properties").items()}
        return cls(custom_properties=props, **data)


@dataclass
class ContactRecord:
    """A CRM contact (only what attendance needs)."""

    vid: int
    email: str | None
    properties: dict[str, str]
    created_at: int
    updated_at: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContactRecord:
        """Inverse of `dataclasses.asdict`."""
        return cls(**data)


@dataclass
class Interaction:
    """One recorded state change: the state, when the contact acted, join/leave times (ms)."""

    state: str
    occurred_at: int
    recorded_at: int
    joined_at: int | None = None
    left_at: int | None = None


@dataclass
class ParticipationRecord:
    """A contact's participation in one event: every distinct interaction, oldest first."""

    participation_id: str
    object_id: str
    vid: int
    created_at: int
    interactions: list[Interaction] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParticipationRecord:
        """Inverse of `dataclasses.asdict`."""
        interactions = [Interaction(**i) for i in data.pop("interactions")]
        return cls(interactions=interactions, **data)


@dataclass
class ListRecord:
    """An ILS list that events can be associated with."""

    list_id: str
    name: str
    created_at: int
    object_type_id: str = "0-1"
    processing_type: str = "MANUAL"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ListRecord:
        """Inverse of `dataclasses.asdict`."""
        return cls(**data)
