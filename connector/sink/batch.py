"""Batching (pure): commands in, work items out, in an order that is always safe to apply.

* Attendance is grouped by :class:`GroupKey` (event, state, identifier kind). A group is sealed
  — moved to the ready queue — when it holds ``max_inputs`` commands or its oldest command has
  waited ``linger`` seconds.
* Per-person order: a person is in at most one open group. A newer command of a person whose
  older one sits in an open group is *deferred* (held aside, in order) until that group is
  sealed — by size or linger — and only then placed; so the older one is always in an earlier
  work item, and a conflict never forces a small batch. Ready items are applied strictly in
  sealing order.
* Event commands (upsert, complete, cancel) first seal every open group of their event and
  place its deferred commands (sealing eagerly until none is left), then enter the ready queue
  themselves: earlier attendance goes first, later attendance after.

Every group holds commands of one webinar, and a webinar's commands share one partition, so every
work item belongs to exactly one partition. The clock is injected; nothing here sleeps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from connector.normalize.command import Command
from connector.serde import SourceRecord
from connector.sink.request import (
    EventKey,
    GroupKey,
    attendance_of,
    group_key,
    is_event_upsert,
    person_of,
)

Partition = tuple[str, int]
Person = tuple[EventKey, str]
Clock = Callable[[], float]


@dataclass(eq=False, slots=True)
class Pending:
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

    pending: Pending

    @property
    def items(self) -> list[Pending]:
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
    items: list[Pending] = field(default_factory=list)
    persons: set[str] = field(default_factory=set)

    @property
    def event(self) -> EventKey:
        """Its event."""
        return self.key.event


Work = EventWork | AttendanceBatch


def _person(pending: Pending) -> str:
    attendance = attendance_of(pending.command)
    assert attendance is not None
    return person_of(attendance)


def partition_of(work: Work) -> Partition:
    """The partition every command of a work item came from."""
    return work.items[0].partition


class Batcher:
    """Open attendance groups, deferred commands, and a FIFO of sealed work."""

    def __init__(self, *, max_inputs: int, linger_seconds: float, clock: Clock) -> None:
        if max_inputs < 1:
            raise ValueError("max_inputs must be >= 1")
        self.max_inputs = max_inputs
        self.linger_seconds = linger_seconds
        self._clock = clock
        self._open: dict[GroupKey, AttendanceBatch] = {}
        self._person_group: dict[Person, GroupKey] = {}
        self._deferred: dict[Person, deque[Pending]] = {}
        self._released: deque[Person] = deque()
        self._ready: deque[Work] = deque()

    def __len__(self) -> int:
        """Commands held (open, deferred and ready)."""
        return (sum(len(w.items) for w in self._open.values())
                + sum(len(q) for q in self._deferred.values())
                + sum(len(w.items) for w in self._ready))

    @property
    def ready_count(self) -> int:
        """Sealed work items waiting to be applied."""
        return len(self._ready)

    @property
    def deferred_count(self) -> int:
        """Commands held aside behind an older command of the same person."""
        return sum(len(q) for q in self._deferred.values())

    # ----------------------------------------------------------------- adding

    def add(self, pending: Pending) -> None:
        """Take one command (ValueError for an attendance that cannot form a group)."""
        if attendance_of(pending.command) is None:
            self._settle(lambda key: key.event == pending.event,
                         lambda person: person[0] == pending.event)
            self._ready.append(EventWork(pending))
            return
        key = group_key(pending.command)  # raises ValueError before anything changes
        person = (key.event, _person(pending))
        if person in self._deferred or person in self._person_group:
            self._deferred.setdefault(person, deque()).append(pending)
            return
        self._place(pending, key, person)
        self._release()

    def _place(self, pending: Pending, key: GroupKey, person: Person) -> None:
        group = self._open.get(key)
        if group is None:
            group = self._open[key] = AttendanceBatch(key, self._clock())
        group.items.append(pending)
        group.persons.add(person[1])
        self._person_group[person] = key
        if len(group.items) >= self.max_inputs:
            self._seal(key)

    def _seal(self, key: GroupKey) -> None:
        group = self._open.pop(key, None)
        if group is None:
            return
        for name in group.persons:
            person = (key.event, name)
            self._person_group.pop(person, None)
            if person in self._deferred:
                self._released.append(person)
        self._ready.append(group)

    def _release(self) -> None:
        """Place the next deferred command of every person whose group was sealed."""
        while self._released:
            person = self._released.popleft()
            queue = self._deferred.get(person)
            if not queue or person in self._person_group:
                continue
            pending = queue.popleft()
            if not queue:
                del self._deferred[person]
            self._place(pending, group_key(pending.command), person)

    def _settle(self, groups: Callable[[GroupKey], bool],
                persons: Callable[[Person], bool]) -> None:
        """Seal matching groups and place matching deferred commands until none is left."""
        while True:
            for key in [k for k in self._open if groups(k)]:
                self._seal(key)
            self._release()
            if not any(groups(k) for k in self._open) and not any(
                    persons(p) for p in self._deferred):
                return

    # ----------------------------------------------------------------- sealing

    def seal_event(self, event: EventKey) -> None:
        """Seal every open group of one event (and place its deferred commands)."""
        self._settle(lambda key: key.event == event, lambda person: person[0] == event)

    def seal_due(self) -> None:
        """Seal the groups that have lingered long enough."""
        now = self._clock()
        for key in [k for k, g in self._open.items() if now - g.opened_at >= self.linger_seconds]:
            self._seal(key)
        self._release()

    def seal_all(self, partition: Partition | None = None) -> None:
        """Seal every open group and place every deferred command (of one partition)."""
        def groups(key: GroupKey) -> bool:
            return partition is None or partition_of(self._open[key]) == partition

        def persons(person: Person) -> bool:
            return partition is None or self._deferred[person][0].partition == partition

        self._settle(groups, persons)

    def next_due(self) -> float | None:
        """When the oldest open group's linger ends (None when nothing is open)."""
        if not self._open:
            return None
        return min(g.opened_at for g in self._open.values()) + self.linger_seconds

    # ----------------------------------------------------------------- taking work

    def pop_ready(self, partition: Partition | None = None) -> Work | None:
        """The next sealed work item (of one partition, when given), or None."""
        if partition is None:
            return self._ready.popleft() if self._ready else None
        for work in self._ready:
            if partition_of(work) == partition:
                self._ready.remove(work)
                return work
        return None

    def push_front(self, work: Work) -> None:
        """Put a work item back at the head of the ready queue (it is retried next)."""
        self._ready.appendleft(work)

    def extract(self, predicate: Callable[[Pending], bool]) -> list[Pending]:
        """Remove and return every held command matching ``predicate``, in offset order."""
        taken: list[Pending] = []
        for work in list(self._ready):
            keep = [p for p in work.items if not predicate(p)]
            taken.extend(p for p in work.items if predicate(p))
            if not keep:
                self._ready.remove(work)
            elif isinstance(work, AttendanceBatch) and len(keep) != len(work.items):
                work.items = keep
        for key, group in list(self._open.items()):
            if not any(predicate(p) for p in group.items):
                continue
            taken.extend(p for p in group.items if predicate(p))
            for name in group.persons:
                self._person_group.pop((key.event, name), None)
            group.items = [p for p in group.items if not predicate(p)]
            group.persons = {_person(p) for p in group.items}
            for name in group.persons:
                self._person_group[(key.event, name)] = key
            if not group.items:
                del self._open[key]
        for person, queue in list(self._deferred.items()):
            taken.extend(p for p in queue if predicate(p))
            rest = deque(p for p in queue if not predicate(p))
            if rest:
                self._deferred[person] = rest
            else:
                del self._deferred[person]
        for person in list(self._deferred):  # a person left without an open group: place them
            if person not in self._person_group:
                self._released.append(person)
        self._release()
        return sorted(taken, key=lambda p: (p.partition, p.offset))

    def extract_event(self, event: EventKey) -> list[Pending]:
        """Every held command of ``event`` except upserts (which may yet create it)."""
        return self.extract(lambda p: p.event == event and not is_event_upsert(p.command))

    def drop_partition(self, partition: Partition) -> list[Pending]:
        """Forget every command of a partition (revoked); returns them."""
        return self.extract(lambda p: p.partition == partition)

    def __iter__(self) -> Iterator[Work]:
        """Ready work, then open groups (for inspection)."""
        yield from self._ready
        yield from self._open.values()
