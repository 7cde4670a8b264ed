"""The commands the normalizer emits for the sink (schema: schemas/connector/hubspot-command.avsc).

A command is a plain value; `to_avro` gives the datum the commands topic carries. Its id is a hash
of its content, so replaying the same input yields a byte-identical command stream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
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
# because a frozen dataclass's __init__ costs more. Values all the same: never mutate one. Each
# has its own __init__, which mypyc compiles (the one `dataclass` generates stays interpreted).
@dataclass(slots=True, init=False)
class Attendance:
    """One person's participation state for the event."""

    state: str  # REGISTERED | CANCELLED | ATTENDED
    vid: int | None
    email: str | None
    interactionDateTime: int
    contactProperties: dict[str, str]
    joinedAt: int | None
    leftAt: int | None
    attendedMillis: int | None

    def __init__(self, state: str, vid: int | None, email: str | None,
                 interactionDateTime: int, contactProperties: dict[str, str] | None = None,
                 joinedAt: int | None = None, leftAt: int | None = None,
                 attendedMillis: int | None = None):
        self.state = state
        self.vid = vid
        self.email = email
        self.interactionDateTime = interactionDateTime
        self.contactProperties = {} if contactProperties is None else contactProperties
        self.joinedAt = joinedAt
        self.leftAt = leftAt
        self.attendedMillis = attendedMillis


Body = EventUpsert | EventComplete | EventCancel | Attendance


@dataclass(slots=True, init=False)
class Command:
    """A command about one webinar: the Kafka key is its webinarId (externalEventId)."""

    externalEventId: str
    externalAccountId: str
    body: Body

    def __init__(self, externalEventId: str, externalAccountId: str, body: Body):
        self.externalEventId = externalEventId
        self.externalAccountId = externalAccountId
        self.body = body

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
        # stdlib's dataclasses.asdict + json.dumps would be a large share of the normalizer).
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
    kind, branch, datum = _LAYOUT[type(body)]
    return kind, branch, datum(body)


_KINDS: dict[str, type[Any]] = {
    "EventUpsert": EventUpsert, "EventComplete": EventComplete,
    "EventCancel": EventCancel, "Attendance": Attendance,
}


def _datum_function(kind: type[Any]) -> Callable[[Any], dict[str, Any]]:
    """``body -> {field: value}`` in declaration order, maps copied: a dict display generated
    once per class (``dict(zip(names, attrgetter(*names)(body)))`` costs over twice as much,
    once per command the normalizer emits). Field names are identifiers, so the source is safe."""
    items = ", ".join(f"{f.name!r}: dict(b.{f.name})" if _is_map(f.type)
                      else f"{f.name!r}: b.{f.name}" for f in fields(kind))
    namespace: dict[str, Any] = {}
    exec(compile(f"def datum(b):\n    return {{{items}}}\n", f"<datum {kind.__name__}>",
                 "exec"), namespace)
    function: Callable[[Any], dict[str, Any]] = namespace["datum"]
    return function


def _is_map(annotation: Any) -> bool:
    """A dict field: a string annotation interpreted (``from __future__ import annotations``),
    the class itself where mypyc compiled the dataclass."""
    return annotation is dict or str(annotation).startswith("dict")


#: Per body class: kind, union branch name, its datum function.
_LAYOUT = {kind: (kind.__name__, f"{NS}.{kind.__name__}", _datum_function(kind))
           for kind in _KINDS.values()}
