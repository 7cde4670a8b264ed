"""Batching (pure): commands in, work items out, in an order that is always safe to apply.

Requests are the scarce resource (HubSpot allows 100-250 per 10 s), so the sink asks for work
only when the rate budget has a free slot, and :meth:`Batcher.take` then hands out the *best*
work item that may go now:

* Attendance is grouped by :class:`GroupKey` (event, state, identifier kind). A group is sealed
  when it holds ``max_inputs`` commands, when an event command of its event arrives, when
  :meth:`~Batcher.take` chooses it, or after a command a backfill's plan marks as its group's
  last (:data:`~connector.sink.work.H_PLAN_SEAL`). Nothing is sealed on a timer.
* Order only matters within an event (a person is a person *of an event*; an event command is
  about its own attendance), so each event has a *lane*: a FIFO of sealed work, applied
  strictly in sealing order, and its open groups, which may go only once its FIFO is empty.
  Lanes of different events are independent.
* Per-person order (:mod:`~connector.sink.persons`): a person is in at most one open group; a
  newer command of theirs is *deferred* until that group is sealed.
* Event commands (upsert, complete, cancel) first seal every open group of their event and
  place its deferred commands (sealing eagerly until none is left), then enter the lane's FIFO
  themselves: earlier attendance goes first, later attendance after.
* Work taken is in flight until :meth:`~Batcher.landed`; meanwhile its lane hands out only
  work that cannot change order (no shared person, no event command; see
  :mod:`~connector.sink.lanes`), so requests go out together and order stays exact.
* Which work goes next (:meth:`~Batcher.take`) is :meth:`Lanes.best
  <connector.sink.lanes.Lanes.best>`: lanes holding an event command first, then the fullest and
  oldest work; an open group only once it lingered (budget to spare) or ranks like a full batch.
  While the budget is spent nothing is taken and groups keep filling (the worker bounds how much
  it holds).

Every group holds commands of one webinar, and a webinar's commands share one partition, so every
work item belongs to exactly one partition. The clock is injected; nothing here sleeps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from connector.clock import Clock
from connector.sink.lanes import Allowed, Lane, Lanes, Spare
from connector.sink.persons import PersonOrder
from connector.sink.request import EventKey, GroupKey, attendance_of, group_key, is_event_upsert
from connector.sink.work import (
    AttendanceBatch,
    EventWork,
    Partition,
    PendingCommand,
    PersonKey,
    Work,
    partition_of,
    person_name,
    seals_its_group,
)

Predicate = Callable[[PendingCommand], bool]


class Batcher:
    """Per-event lanes of open groups and sealed work, deferred commands, and the choice of
    which work item goes next."""

    def __init__(self, *, max_inputs: int, linger_seconds: float, clock: Clock,
                 max_wait_seconds: float = 10.0) -> None:
        if max_inputs < 1:
            raise ValueError("max_inputs must be >= 1")
        if max_wait_seconds <= 0:
            raise ValueError("max_wait_seconds must be > 0")
        self._clock = clock
        self._lanes = Lanes(max_inputs=max_inputs, linger_seconds=linger_seconds,
                            max_wait_seconds=max_wait_seconds)
        self._persons = PersonOrder()
        self._held = 0
        self._held_by: Counter[str] = Counter()  # per platform account (externalAccountId)

    def __len__(self) -> int:
        """Commands held (open, deferred and sealed)."""
        return self._held

    def held_by(self, account: str) -> int:
        """Commands held of one platform account."""
        return self._held_by[account]

    @property
    def max_inputs(self) -> int:
        """Commands one request carries at most."""
        return self._lanes.max_inputs

    @property
    def ready_count(self) -> int:
        """Sealed work items waiting to be applied."""
        return sum(len(lane.sealed) for lane in self._lanes.by_event.values())

    @property
    def deferred_count(self) -> int:
        """Commands held aside behind an older command of the same person."""
        return self._persons.deferred_count

    # ----------------------------------------------------------------- adding

    def add(self, pending: PendingCommand) -> None:
        """Take one command (ValueError for an attendance that cannot form a group)."""
        if attendance_of(pending.command) is None:
            self.seal_event(pending.event)
            self._lanes.push(EventWork(pending), self._clock())
            self._count(pending.event, 1)
            return
        key = group_key(pending.command)  # raises ValueError before anything changes
        person = (key.event, person_name(pending))
        self._count(key.event, 1)
        if self._persons.is_busy(person):
            self._persons.defer(person, pending)
            return
        self._place(pending, key, person)
        self._release()

    def _place(self, pending: PendingCommand, key: GroupKey, person: PersonKey) -> None:
        lane = self._lanes.lane(key.event)
        group = lane.open.get(key)
        if group is None:
            group = lane.open[key] = AttendanceBatch(key, self._clock())
        group.items.append(pending)
        group.persons.add(person[1])
        self._persons.joined(person, key)
        if len(group.items) >= self.max_inputs or seals_its_group(pending):
            self._seal(key)

    def _seal(self, key: GroupKey) -> None:
        lane = self._lanes.by_event.get(key.event)
        group = lane.open.pop(key, None) if lane is not None else None
        if group is None:
            return
        self._persons.sealed(key.event, group.persons)
        self._lanes.push(group, group.opened_at)

    def _release(self) -> None:
        """Place the next deferred command of every person whose group was sealed."""
        while (released := self._persons.next_released()) is not None:
            person, pending = released
            self._place(pending, group_key(pending.command), person)

    def _open_keys(self, groups: Callable[[GroupKey], bool]) -> list[GroupKey]:
        return [k for lane in self._lanes.by_event.values() for k in lane.open if groups(k)]

    def _settle(self, groups: Callable[[GroupKey], bool],
                persons: Callable[[PersonKey, PendingCommand], bool]) -> None:
        """Seal matching groups and place matching deferred commands until none is left."""
        while True:
            for key in self._open_keys(groups):
                self._seal(key)
            self._release()
            if not self._open_keys(groups) and not self._persons.any_deferred(persons):
                return

    # ----------------------------------------------------------------- sealing

    def seal_event(self, event: EventKey) -> None:
        """Seal every open group of one event (and place its deferred commands)."""
        self._settle(lambda key: key.event == event, lambda person, _oldest: person[0] == event)

    def seal_all(self, partition: Partition | None = None) -> None:
        """Seal every open group and place every deferred command (of one partition)."""
        lanes = self._lanes.by_event

        def groups(key: GroupKey) -> bool:
            return partition is None or partition_of(lanes[key.event].open[key]) == partition

        def persons(_person: PersonKey, oldest: PendingCommand) -> bool:
            return partition is None or oldest.partition == partition

        self._settle(groups, persons)

    # ----------------------------------------------------------------- taking work

    def next_due(self, *, spare: Spare = True, allowed: Allowed | None = None) -> float | None:
        """When :meth:`take` (with the same ``spare`` and ``allowed``) will next have work, as
        things stand: now when something is sealed, else when the first open group becomes a
        candidate (None when nothing is held)."""
        return self._lanes.next_due(self._clock(), spare, allowed)

    def take(self, *, spare: Spare = True, everything: bool = False,
             allowed: Allowed | None = None) -> Work | None:
        """The work item to send now (removed), or None when nothing may go yet.

        Call it when the rate budget has a slot. ``spare``: the budget has more slots than the
        commands held need at full batches, so an open group may go once it has lingered;
        otherwise only once it ranks like a full batch (requests are what is scarce).
        ``everything``: every open group is a candidate (draining). ``allowed``: only work of
        these events (whose HubSpot account has a free slot); ``spare`` may answer per event."""
        chosen = self._lanes.best(self._clock(), spare, everything, allowed)
        if chosen is None:
            return None
        if isinstance(chosen, AttendanceBatch):
            event = chosen.event
            self._seal(chosen.key)  # its lane's FIFO was empty: it is the head now
            self._release()
            chosen = self._lanes.by_event[event]
        return self._handed_out(self._lanes.pop(chosen))

    def pop_ready(self, partition: Partition | None = None) -> Work | None:
        """The oldest sealed work item (of one partition, when given), or None."""
        work = self._lanes.pop_oldest(partition)
        return None if work is None else self._handed_out(work)

    def _handed_out(self, work: Work) -> Work:
        self._count(work.event, -len(work.items))
        return work

    def _count(self, event: EventKey, commands: int) -> None:
        self._held += commands
        self._held_by[event.account] += commands
        if not self._held_by[event.account]:
            del self._held_by[event.account]

    def landed(self, work: Work) -> None:
        """A taken work item's outcome was settled: its lane may hand out what it held back
        (see :mod:`~connector.sink.lanes`)."""
        self._lanes.land(work)

    def push_front(self, work: Work) -> None:
        """Put a taken (and landed) work item back at the head of its lane (it is retried
        first)."""
        since = work.opened_at if isinstance(work, AttendanceBatch) else self._clock()
        self._lanes.lane(work.event).push_front(since, work)
        self._count(work.event, len(work.items))

    # ----------------------------------------------------------------- taking commands out

    def extract(self, predicate: Predicate) -> list[PendingCommand]:
        """Remove and return every held command matching ``predicate``, in offset order."""
        taken: list[PendingCommand] = []
        lanes = self._lanes.by_event
        for event, lane in list(lanes.items()):
            taken += lane.extract_sealed(predicate)
            taken += self._extract_open(event, lane, predicate)
            if not lane:
                del lanes[event]
        taken += self._persons.extract(predicate)
        self._release()
        for p in taken:
            self._count(p.event, -1)
        return sorted(taken, key=lambda p: (p.partition, p.offset))

    def _extract_open(self, event: EventKey, lane: Lane,
                      predicate: Predicate) -> list[PendingCommand]:
        """Remove matching commands from a lane's open groups."""
        taken: list[PendingCommand] = []
        for key, group in list(lane.open.items()):
            if not any(predicate(p) for p in group.items):
                continue
            taken.extend(p for p in group.items if predicate(p))
            before = group.persons
            group.items = [p for p in group.items if not predicate(p)]
            group.persons = {person_name(p) for p in group.items}
            self._persons.regrouped(event, key, before, group.persons)
            if not group.items:
                del lane.open[key]
        return taken

    def extract_event(self, event: EventKey) -> list[PendingCommand]:
        """Every held command of ``event`` except upserts (which may yet create it)."""
        return self.extract(lambda p: p.event == event and not is_event_upsert(p.command))

    def drop_partition(self, partition: Partition) -> list[PendingCommand]:
        """Forget every command of a partition (revoked); returns them."""
        return self.extract(lambda p: p.partition == partition)

    def __iter__(self) -> Iterator[Work]:
        """Sealed work (in sealing order), then open groups (for inspection)."""
        yield from self._lanes.sealed_work()
        for lane in self._lanes.by_event.values():
            yield from lane.open.values()
