"""What the sink holds and sends (pure): consumed commands and the work items made of them.

A :class:`PendingCommand` is one consumed command with its failure history. A work item is one
HubSpot request: an :class:`EventWork` (one event command) or an :class:`AttendanceBatch`
(attendance commands of one group). Every work item's commands share one partition (a
webinar's commands share one), see :func:`partition_of`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connector.normalize.command import Command
from connector.serde.record import SourceRecord
from connector.sink.request import (
    EventKey,
    GroupKey,
    IdentifierKind,
    attendance_of,
    person_of,
)

#: (topic, partition) a command was consumed from.
Partition = tuple[str, int]
#: A person of one event: who per-person ordering is about.
PersonKey = tuple[EventKey, str]
#: A backfill's planned commands (connector.replay.planned): on the last command of its batch
#: group in the event, so the group is sealed (sent) then instead of waiting to fill.
H_PLAN_SEAL = "connector.plan.seal"


def seals_its_group(pending: PendingCommand) -> bool:
    """The command is the last its batch group will get (a backfill's plan says so)."""
    headers = pending.source.headers  # most often empty: no generator then (a hot path)
    return bool(headers) and any(key == H_PLAN_SEAL for key, _ in headers)


@dataclass(eq=False, slots=True)
class PendingCommand:
    """One consumed command on its way to HubSpot, with its failure history."""

    source: SourceRecord
    command: Command
    attempts: int = 0
    first_failure_ms: int | None = None
    last_failure_ms: int | None = None

    @property
    def partition(self) -> Partition:
        """(topic, partition) it was consumed from."""
        return (self.source.topic, self.source.partition)

    @property
    def offset(self) -> int:
        """Its offset."""
        return self.source.offset

    @property
    def event(self) -> EventKey:
        """The event it is about."""
        return EventKey.of(self.command)

    def failed(self, now_ms: int) -> None:
        """Count one failed attempt at ``now_ms``."""
        self.attempts += 1
        if self.first_failure_ms is None:
            self.first_failure_ms = now_ms
        self.last_failure_ms = now_ms


@dataclass(eq=False, slots=True)
class EventWork:
    """One event command (upsert, complete or cancel): one request."""

    pending: PendingCommand

    @property
    def items(self) -> list[PendingCommand]:
        """The command, as a list."""
        return [self.pending]

    @property
    def event(self) -> EventKey:
        """Its event."""
        return self.pending.event


@dataclass(eq=False, slots=True)
class AttendanceBatch:
    """Attendance commands of one group: one request (at most ``max_inputs`` inputs)."""

    key: GroupKey
    opened_at: float
    items: list[PendingCommand] = field(default_factory=list)
    persons: set[str] = field(default_factory=set)

    @property
    def event(self) -> EventKey:
        """Its event."""
        return self.key.event


Work = EventWork | AttendanceBatch


def person_name(pending: PendingCommand) -> str:
    """The person an attendance command is about (see :func:`~connector.sink.request.person_of`)."""
    attendance = attendance_of(pending.command)
    assert attendance is not None
    return person_of(attendance)


def partition_of(work: Work) -> Partition:
    """The partition every command of a work item came from."""
    return work.items[0].partition


def operation_of(work: Work) -> str:
    """The HubSpotClient method a work item is sent with (the ``hubspot.operation`` of its
    requests), e.g. ``upsert_event`` or ``record_attendance_by_email``."""
    if isinstance(work, EventWork):
        return _EVENT_OPERATIONS.get(work.pending.command.kind, "event")
    if work.key.kind is IdentifierKind.VID:
        return "record_attendance"
    return "record_attendance_by_email"


_EVENT_OPERATIONS = {"EventUpsert": "upsert_event", "EventComplete": "complete_event",
                     "EventCancel": "cancel_event"}
