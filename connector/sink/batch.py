"""Batching (pure): commands in, work items out, in an order that is always safe to apply.

Requests are the scarce resource (HubSpot allows 100-250 per 10 s), so the sink asks for work
only when the rate budget has a free slot, and :meth:`Batcher.take` then hands out the *best*
work item that may go now:

* Attendance is grouped by :class:`GroupKey` (event, state, identifier kind). A group is sealed
  when it holds ``max_inputs`` commands, when an event command of its event arrives, or when
  :meth:`~Batcher.take` chooses it. Nothing is sealed on a timer.
* Order only matters within an event (a person is a person *of an event*; an event command is
  about its own attendance), so each event has a *lane*: a FIFO of sealed work, applied
  strictly in sealing order, and its open groups, which may go only once its FIFO is empty.
  Lanes of different events are independent.
* Per-person order: a person is in at most one open group. A newer command of a person whose
  older one sits in an open group is *deferred* (held aside, in order) until that group is
  sealed, and only then placed; so the older one is always in an earlier work item of the same
  lane, and a conflict never forces a small batch.
* Event commands (upsert, complete, cancel) first seal every open group of their event and
  place its deferred commands (sealing eagerly until none is left), then enter the lane's FIFO
  themselves: earlier attendance goes first, later attendance after.
* Which work goes next (:meth:`~Batcher.take`): lanes holding an event command first (their
  partial batches must go anyway, and the event unblocks its attendance); otherwise the highest
  ``fill + age / max_wait``, where fill is the share of ``max_inputs`` a batch carries and age
  how long its oldest command has waited: under a tight budget the fullest batch goes, and a
  small group of a quiet webinar still goes once it has waited about ``max_wait``. Which open
  groups are candidates depends on the budget: with slots to spare (more than the held commands
  need at full batches: idle or low traffic) a group goes once it has lingered, for latency;
  otherwise only once it ranks like a full batch (``fill + age / max_wait >= 1``), so a slot is
  not spent on a partial batch that a little waiting fills. While the budget is spent nothing is
  taken and groups keep filling (the worker bounds how much it holds).

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


@dataclass(eq=False, slots=True)
class _Lane:
    """One event's work: sealed items (seal order, applied in that order) and open groups."""

    sealed: deque[tuple[int, float, Work]] = field(default_factory=deque)  # (seq, since, work)
    open: dict[GroupKey, AttendanceBatch] = field(default_factory=dict)
    barriers: int = 0  # event commands among ``sealed``

    def __bool__(self) -> bool:
        return bool(self.sealed or self.open)


class Batcher:
    """Per-event lanes of open groups and sealed work, deferred commands, and the choice of
    which work item goes next."""

    def __init__(self, *, max_inputs: int, linger_seconds: float, clock: Clock,
                 max_wait_seconds: float = 10.0) -> None:
        if max_inputs < 1:
            raise ValueError("max_inputs must be >= 1")
        if max_wait_seconds <= 0:
            raise ValueError("max_wait_seconds must be > 0")
        self.max_inputs = max_inputs
        self.linger_seconds = linger_seconds
        self.max_wait_seconds = max_wait_seconds
        self._clock = clock
        self._lanes: dict[EventKey, _Lane] = {}
        self._person_group: dict[Person, GroupKey] = {}
        self._deferred: dict[Person, deque[Pending]] = {}
        self._released: deque[Person] = deque()
        self._seq = 0
        self._held = 0

    def __len__(self) -> int:
        """Commands held (open, deferred and sealed)."""
        return self._held

    @property
    def ready_count(self) -> int:
        """Sealed work items waiting to be applied."""
        return sum(len(lane.sealed) for lane in self._lanes.values())

    @property
    def deferred_count(self) -> int:
        """Commands held aside behind an older command of the same person."""
        return sum(len(q) for q in self._deferred.values())

    # ----------------------------------------------------------------- adding

    def add(self, pending: Pending) -> None:
        """Take one command (ValueError for an attendance that cannot form a group)."""
        if attendance_of(pending.command) is None:
            event = pending.event
            self._settle(lambda key: key.event == event, lambda person: person[0] == event)
            self._push(EventWork(pending), self._clock())
            self._held += 1
            return
        key = group_key(pending.command)  # raises ValueError before anything changes
        person = (key.event, _person(pending))
        self._held += 1
        if person in self._deferred or person in self._person_group:
            self._deferred.setdefault(person, deque()).append(pending)
            return
        self._place(pending, key, person)
        self._release()

    def _lane(self, event: EventKey) -> _Lane:
        lane = self._lanes.get(event)
        if lane is None:
            lane = self._lanes[event] = _Lane()
        return lane

    def _push(self, work: Work, since: float) -> None:
        self._seq += 1
        lane = self._lane(work.event)
        lane.sealed.append((self._seq, since, work))
        if isinstance(work, EventWork):
            lane.barriers += 1

    def _place(self, pending: Pending, key: GroupKey, person: Person) -> None:
        lane = self._lane(key.event)
        group = lane.open.get(key)
        if group is None:
            group = lane.open[key] = AttendanceBatch(key, self._clock())
        group.items.append(pending)
        group.persons.add(person[1])
        self._person_group[person] = key
        if len(group.items) >= self.max_inputs:
            self._seal(key)

    def _seal(self, key: GroupKey) -> None:
        lane = self._lanes.get(key.event)
        group = lane.open.pop(key, None) if lane is not None else None
        if group is None:
            return
        for name in group.persons:
            person = (key.event, name)
            self._person_group.pop(person, None)
            if person in self._deferred:
                self._released.append(person)
        self._push(group, group.opened_at)

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

    def _open_keys(self, groups: Callable[[GroupKey], bool]) -> list[GroupKey]:
        return [k for lane in self._lanes.values() for k in lane.open if groups(k)]

    def _settle(self, groups: Callable[[GroupKey], bool],
                persons: Callable[[Person], bool]) -> None:
        """Seal matching groups and place matching deferred commands until none is left."""
        while True:
            for key in self._open_keys(groups):
                self._seal(key)
            self._release()
            if not self._open_keys(groups) and not any(persons(p) for p in self._deferred):
                return

    # ----------------------------------------------------------------- sealing

    def seal_event(self, event: EventKey) -> None:
        """Seal every open group of one event (and place its deferred commands)."""
        self._settle(lambda key: key.event == event, lambda person: person[0] == event)

    def seal_all(self, partition: Partition | None = None) -> None:
        """Seal every open group and place every deferred command (of one partition)."""
        def groups(key: GroupKey) -> bool:
            return partition is None or partition_of(self._lanes[key.event].open[key]) == partition

        def persons(person: Person) -> bool:
            return partition is None or self._deferred[person][0].partition == partition

        self._settle(groups, persons)

    def next_due(self, *, spare: bool = True) -> float | None:
        """When :meth:`take` (with the same ``spare``) will next have work, as things stand:
        now when something is sealed, else when the first open group becomes a candidate
        (None when nothing is held)."""
        due: float | None = None
        for lane in self._lanes.values():
            if lane.sealed:
                return self._clock()
            for group in lane.open.values():
                at = self._eligible_at(group, spare)
                if due is None or at < due:
                    due = at
        return due

    def _eligible_at(self, group: AttendanceBatch, spare: bool) -> float:
        """When an open group becomes a candidate: once it lingered when the budget has slots
        to spare, else once it ranks like a full batch (``fill + age / max_wait >= 1``)."""
        lingered = group.opened_at + self.linger_seconds
        if spare:
            return lingered
        fill = len(group.items) / self.max_inputs
        return max(lingered, group.opened_at + self.max_wait_seconds * (1.0 - fill))

    # ----------------------------------------------------------------- taking work

    def take(self, *, spare: bool = True, everything: bool = False) -> Work | None:
        """The work item to send now (removed), or None when nothing may go yet.

        Call it when the rate budget has a slot. ``spare``: the budget has more slots than the
        commands held need at full batches, so an open group may go once it has lingered;
        otherwise only once it ranks like a full batch (requests are what is scarce).
        ``everything``: every open group is a candidate (draining)."""
        now = self._clock()
        best: tuple[bool, float, float] | None = None
        chosen: _Lane | AttendanceBatch | None = None
        for lane in self._lanes.values():
            if lane.sealed:
                _, since, work = lane.sealed[0]
                fill = 1.0 if isinstance(work, EventWork) else len(work.items) / self.max_inputs
                rank = (lane.barriers > 0, fill + (now - since) / self.max_wait_seconds, -since)
                if best is None or rank > best:
                    best, chosen = rank, lane
                continue
            for group in lane.open.values():
                if not everything and now < self._eligible_at(group, spare):
                    continue
                age = now - group.opened_at
                rank = (False, len(group.items) / self.max_inputs + age / self.max_wait_seconds,
                        -group.opened_at)
                if best is None or rank > best:
                    best, chosen = rank, group
        if chosen is None:
            return None
        if isinstance(chosen, AttendanceBatch):
            event = chosen.event
            self._seal(chosen.key)  # its lane's FIFO was empty: it is the head now
            self._release()
            return self._pop(self._lanes[event])
        return self._pop(chosen)

    def _pop(self, lane: _Lane) -> Work:
        _, _, work = lane.sealed.popleft()
        if isinstance(work, EventWork):
            lane.barriers -= 1
        if not lane:
            del self._lanes[work.event]
        self._held -= len(work.items)
        return work

    def pop_ready(self, partition: Partition | None = None) -> Work | None:
        """The oldest sealed work item (of one partition, when given), or None."""
        head: tuple[int, _Lane] | None = None
        for lane in self._lanes.values():
            if lane.sealed and (partition is None
                                or partition_of(lane.sealed[0][2]) == partition):
                seq = lane.sealed[0][0]
                if head is None or seq < head[0]:
                    head = (seq, lane)
        return None if head is None else self._pop(head[1])

    def push_front(self, work: Work) -> None:
        """Put a taken work item back at the head of its lane (it is retried first)."""
        lane = self._lane(work.event)
        since = work.opened_at if isinstance(work, AttendanceBatch) else self._clock()
        seq = lane.sealed[0][0] - 1 if lane.sealed else 0
        lane.sealed.appendleft((seq, since, work))
        if isinstance(work, EventWork):
            lane.barriers += 1
        self._held += len(work.items)

    def extract(self, predicate: Callable[[Pending], bool]) -> list[Pending]:
        """Remove and return every held command matching ``predicate``, in offset order."""
        taken: list[Pending] = []
        for event, lane in list(self._lanes.items()):
            kept: deque[tuple[int, float, Work]] = deque()
            for seq, since, work in lane.sealed:
                keep = [p for p in work.items if not predicate(p)]
                taken.extend(p for p in work.items if predicate(p))
                if not keep:
                    if isinstance(work, EventWork):
                        lane.barriers -= 1
                    continue
                if isinstance(work, AttendanceBatch) and len(keep) != len(work.items):
                    work.items = keep
                kept.append((seq, since, work))
            lane.sealed = kept
            for key, group in list(lane.open.items()):
                if not any(predicate(p) for p in group.items):
                    continue
                taken.extend(p for p in group.items if predicate(p))
                for name in group.persons:
                    self._person_group.pop((event, name), None)
                group.items = [p for p in group.items if not predicate(p)]
                group.persons = {_person(p) for p in group.items}
                for name in group.persons:
                    self._person_group[(event, name)] = key
                if not group.items:
                    del lane.open[key]
            if not lane:
                del self._lanes[event]
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
        self._held -= len(taken)
        return sorted(taken, key=lambda p: (p.partition, p.offset))

    def extract_event(self, event: EventKey) -> list[Pending]:
        """Every held command of ``event`` except upserts (which may yet create it)."""
        return self.extract(lambda p: p.event == event and not is_event_upsert(p.command))

    def drop_partition(self, partition: Partition) -> list[Pending]:
        """Forget every command of a partition (revoked); returns them."""
        return self.extract(lambda p: p.partition == partition)

    def __iter__(self) -> Iterator[Work]:
        """Sealed work (in sealing order), then open groups (for inspection)."""
        sealed = sorted((entry for lane in self._lanes.values() for entry in lane.sealed),
                        key=lambda entry: entry[0])
        yield from (work for _, _, work in sealed)
        for lane in self._lanes.values():
            yield from lane.open.values()
