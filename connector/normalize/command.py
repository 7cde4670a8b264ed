"""The commands the normalizer emits for the sink (schema: schemas/connector/hubspot-command.avsc).

A command is a plain value; `to_avro` gives the datum the commands topic carries. Its id is a hash
of its content, so replaying the same input yields a byte-identical command stream.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

import orjson

# Re-exported (`as`): serde keeps the schema names of all the connector's topics together.
from connector.serde.catalog import COMMAND_SCHEMA as COMMAND_SCHEMA

NS = "connector.v1"


@dataclass(frozen=True, slots=True)
class EventUpsert:
    """Create or update the marketing event (PUT/upsert by external IDs)."""

    eventName: str
    eventOrganizer: str
    eventType: str
    eventDescription: str | None = None
    eventUrl: str | None = None
    startDateTime: int | None = None
    endDateTime: int | None = None
    eventCancelled: bool = False
    customProperties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventComplete:
    """Mark the event completed with its actual start and end."""

    startDateTime: int
    endDateTime: int


@dataclass(frozen=True, slots=True)
class EventCancel:
    """Mark the event cancelled."""


# Attendance and Command are made for every command the normalizer emits: plain slots classes,
# because a frozen dataclass's __init__ costs ~3x. Values all the same: never mutate one.
@dataclass(slots=True)
class Attendance:
    """One person's participation state for the event."""

    state: str  # REGISTERED | CANCELLED | ATTENDED
    vid: int | None
    email: str | None
    interactionDateTime: int
    contactProperties: dict[str, str] = field(default_factory=dict)
    joinedAt: int | None = None
    leftAt: int | None = None
    attendedMillis: int | None = None


Body = EventUpsert | EventComplete | EventCancel | Attendance


@dataclass(slots=True)
class Command:
    """A command about one webinar: the Kafka key is its webinarId (externalEventId)."""

    externalEventId: str
    externalAccountId: str
    body: Body

    @property
    def kind(self) -> str:
        """EventUpsert, EventComplete, EventCancel or Attendance."""
        return type(self.body).__name__

    @property
    def key(self) -> bytes:
        """The Kafka key: everything about one webinar stays in one partition, in order."""
        return self.externalEventId.encode()

    def to_avro(self) -> dict[str, Any]:
        """The Avro datum (union branch named) for the commands topic."""
        kind, branch, body = _fields(self.body)
        # orjson with sorted keys is a deterministic rendering of the content, and cheap (the
        # stdlib's dataclasses.asdict + json.dumps were a third of the normalizer's time).
        content = orjson.dumps([self.externalEventId, self.externalAccountId, kind, body],
                               option=orjson.OPT_SORT_KEYS)
        command_id = hashlib.blake2b(content, digest_size=12).hexdigest()
        return {
            "commandId": command_id,
            "externalEventId": self.externalEventId,
            "externalAccountId": self.externalAccountId,
            "command": (branch, body),
        }

    @classmethod
    def from_avro(cls, datum: dict[str, Any]) -> Command:
        """Inverse of to_avro (the sink reads commands with this)."""
        name, body = datum["command"]
        kind = _KINDS[name.rsplit(".", 1)[-1]]
        return cls(datum["externalEventId"], datum["externalAccountId"], kind(**body))


def _fields(body: Body) -> tuple[str, str, dict[str, Any]]:
    """(kind, union branch name, the body's fields as a new dict in declaration order, maps
    copied)."""
    kind, branch, names, read, maps = _LAYOUT[type(body)]
    datum = dict(zip(names, read(body), strict=True))
    for name in maps:
        datum[name] = dict(datum[name])
    return kind, branch, datum


_KINDS: dict[str, type[Any]] = {
    "EventUpsert": EventUpsert, "EventComplete": EventComplete,
    "EventCancel": EventCancel, "Attendance": Attendance,
}


def _layout(kind: type[Any]) -> tuple[str, str, tuple[str, ...], Any, tuple[str, ...]]:
    names = tuple(f.name for f in fields(kind))
    maps = tuple(f.name for f in fields(kind) if str(f.type).startswith("dict"))
    # attrgetter of one name returns the value itself, not a 1-tuple: always ask for a tuple.
    read = attrgetter(*names) if len(names) > 1 else (
        (lambda body: (getattr(body, names[0]),)) if names else (lambda body: ()))
    return kind.__name__, f"{NS}.{kind.__name__}", names, read, maps


#: Per body class: kind, branch name, field names, a getter of their values, the map fields.
_LAYOUT = {kind: _layout(kind) for kind in _KINDS.values()}
