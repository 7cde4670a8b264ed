"""Per-event lanes (pure): sealed work in sealing order, open groups, and which goes next.

Order only matters within an event, so the :class:`~connector.sink.batch.Batcher` keeps one
:class:`Lane` per event: a FIFO of sealed work, applied strictly in sealing order, and its open
groups, which may go only once the FIFO is empty. Lanes of different events are independent.

Requests of one lane may be in flight together, as long as order cannot change: a work item is
*lifted* when it is handed out and *landed* when its outcome was settled, and while it is in
flight its lane gives out nothing that shares a person with it; an event command waits until
nothing of its lane is in flight, and nothing of the lane goes while it is in flight. Only a
lane's head (or, with an empty FIFO, an open group) is ever a candidate, so sealing order is
handing-out order, and a person's later command never starts before their earlier one landed.

Which work goes next (:meth:`Lanes.best`): lanes holding an event command first (their partial
batches must go anyway, and the event unblocks its attendance); otherwise the highest
``fill + age / max_wait``, where fill is the share of ``max_inputs`` a batch carries and age how
long its oldest command has waited: under a tight budget the fullest batch goes, and a small
group of a quiet webinar still goes once it has waited about ``max_wait``. Which open groups are
candidates depends on the budget: with slots to spare (more than the held commands need at full
batches: idle or low traffic) a group goes once it has lingered, for latency; otherwise only
once it ranks like a full batch (``fill + age / max_wait >= 1``), so a slot is not spent on a
partial batch that a little waiting fills.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from connector.sink.request import EventKey, GroupKey
from connector.sink.work import (
    AttendanceBatch,
    EventWork,
    Partition,
    PendingCommand,
    Work,
    partition_of,
)


class Sealed(NamedTuple):
    """A sealed work item: its sealing number, since when it waits, the work."""

    seq: int
    since: float
    work: Work


#: How candidates compare: (holds an event command, fill + age / max_wait, older first).
Rank = tuple[bool, float, float]


@dataclass(eq=False, slots=True)
class Lane:
    """One event's work: sealed items (seal order, applied in that order) and open groups."""

    sealed: deque[Sealed] = field(default_factory=deque)
    open: dict[GroupKey, AttendanceBatch] = field(default_factory=dict)
    barriers: int = 0  # event commands among ``sealed``
    flying: int = 0  # work items handed out, not yet landed
    flying_event: bool = False  # one of them is an event command
    flying_persons: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.sealed or self.open or self.flying)

    def may_go(self, work: Work) -> bool:
        """``work`` may be handed out while the lane's flying work is in the air: an event
        command only alone, attendance only beside attendance of other persons."""
        if isinstance(work, EventWork):
            return self.flying == 0
        if self.flying_event:
            return False
        flying = self.flying_persons
        return not flying or all(person not in flying for person in work.persons)

    def lift(self, work: Work) -> None:
        """``work`` was handed out."""
        self.flying += 1
        if isinstance(work, EventWork):
            self.flying_event = True
            return
        flying = self.flying_persons
        for person in work.persons:
            flying[person] = flying.get(person, 0) + 1

    def land(self, work: Work) -> None:
        """``work``'s outcome was settled (or it was put back)."""
        self.flying -= 1
        if isinstance(work, EventWork):
            self.flying_event = False
            return
        flying = self.flying_persons
        for person in work.persons:
            left = flying.get(person, 0) - 1
            if left > 0:
                flying[person] = left
            else:
                flying.pop(person, None)

    def push(self, seq: int, since: float, work: Work) -> None:
        """Seal a work item at the end of the FIFO."""
        self.sealed.append(Sealed(seq, since, work))
        if isinstance(work, EventWork):
            self.barriers += 1

    def push_front(self, since: float, work: Work) -> None:
        """Put a taken work item back at the head of the FIFO."""
        seq = self.sealed[0].seq - 1 if self.sealed else 0
        self.sealed.appendleft(Sealed(seq, since, work))
        if isinstance(work, EventWork):
            self.barriers += 1

    def pop(self) -> Work:
        """The head of the FIFO (removed)."""
        work = self.sealed.popleft().work
        if isinstance(work, EventWork):
            self.barriers -= 1
        return work

    def extract_sealed(self, predicate: Callable[[PendingCommand], bool]) -> list[PendingCommand]:
        """Remove the sealed commands matching ``predicate`` (emptied work items go too)."""
        taken: list[PendingCommand] = []
        kept: deque[Sealed] = deque()
        for entry in self.sealed:
            work = entry.work
            keep = [p for p in work.items if not predicate(p)]
            taken.extend(p for p in work.items if predicate(p))
            if not keep:
                if isinstance(work, EventWork):
                    self.barriers -= 1
                continue
            if isinstance(work, AttendanceBatch) and len(keep) != len(work.items):
                work.items = keep
            kept.append(entry)
        self.sealed = kept
        return taken


#: Whether the rate budget has slots to spare: one answer, or one per event (its account's).
Spare = bool | Callable[[EventKey], bool]
#: Which events' lanes may hand out work now.
Allowed = Callable[[EventKey], bool]


class Lanes:
    """Every event's lane, the sealing order, and the choice of the next work item."""

    def __init__(self, *, max_inputs: int, linger_seconds: float,
                 max_wait_seconds: float) -> None:
        self.max_inputs = max_inputs
        self.linger_seconds = linger_seconds
        self.max_wait_seconds = max_wait_seconds
        self.by_event: dict[EventKey, Lane] = {}
        self._seq = 0

    def lane(self, event: EventKey) -> Lane:
        """The event's lane (a new one when it has none)."""
        lane = self.by_event.get(event)
        if lane is None:
            lane = self.by_event[event] = Lane()
        return lane

    def push(self, work: Work, since: float) -> None:
        """Seal a work item at the end of its lane."""
        self._seq += 1
        self.lane(work.event).push(self._seq, since, work)

    def pop(self, lane: Lane) -> Work:
        """The head of a lane (removed and lifted)."""
        work = lane.pop()
        lane.lift(work)
        return work

    def land(self, work: Work) -> None:
        """A lifted work item landed (an emptied lane goes)."""
        lane = self.by_event.get(work.event)
        if lane is None:
            return
        lane.land(work)
        if not lane:
            del self.by_event[work.event]

    def pop_oldest(self, partition: Partition | None = None) -> Work | None:
        """The oldest sealed work item that may go (of one partition, when given), removed and
        lifted, or None."""
        head: tuple[int, Lane] | None = None
        for lane in self.by_event.values():
            if lane.sealed and (partition is None
                                or partition_of(lane.sealed[0].work) == partition) \
                    and lane.may_go(lane.sealed[0].work):
                seq = lane.sealed[0].seq
                if head is None or seq < head[0]:
                    head = (seq, lane)
        return None if head is None else self.pop(head[1])

    def sealed_work(self) -> Iterator[Work]:
        """Sealed work, in sealing order."""
        sealed = sorted((entry for lane in self.by_event.values() for entry in lane.sealed),
                        key=lambda entry: entry.seq)
        return (entry.work for entry in sealed)

    def eligible_at(self, group: AttendanceBatch, spare: bool) -> float:
        """When an open group becomes a candidate: once it lingered when the budget has slots
        to spare, else once it ranks like a full batch (``fill + age / max_wait >= 1``)."""
        lingered = group.opened_at + self.linger_seconds
        if spare:
            return lingered
        fill = len(group.items) / self.max_inputs
        return max(lingered, group.opened_at + self.max_wait_seconds * (1.0 - fill))

    def next_due(self, now: float, spare: Spare,
                 allowed: Allowed | None = None) -> float | None:
        """``now`` when a sealed head may go, else when the first open group that may go
        becomes a candidate (None when nothing may go: nothing is held, or what is held waits
        for flying work to land). ``allowed``: only lanes of these events (their HubSpot
        account can take a request); ``spare`` may be a question per event."""
        due: float | None = None
        for event, lane in self.by_event.items():
            if allowed is not None and not allowed(event):
                continue
            if lane.sealed:
                if not lane.flying or lane.may_go(lane.sealed[0].work):
                    return now
                continue  # it goes once the flying work landed
            lane_spare = spare(event) if callable(spare) else spare
            for group in lane.open.values():
                if lane.flying and not lane.may_go(group):
                    continue
                at = self.eligible_at(group, lane_spare)
                if due is None or at < due:
                    due = at
        return due

    def best(self, now: float, spare: Spare, everything: bool,
             allowed: Allowed | None = None) -> Lane | AttendanceBatch | None:
        """The best candidate: a lane's sealed head, or an open group of a lane with none
        (``everything``: every open group is a candidate; ``allowed``, ``spare``: as for
        :meth:`next_due`)."""
        best: Rank | None = None
        chosen: Lane | AttendanceBatch | None = None
        for event, lane in self.by_event.items():
            if allowed is not None and not allowed(event):
                continue
            if lane.sealed:
                if lane.flying and not lane.may_go(lane.sealed[0].work):
                    continue
                rank = self._head_rank(lane, now)
                if best is None or rank > best:
                    best, chosen = rank, lane
                continue
            lane_spare = spare(event) if callable(spare) else spare
            for group in lane.open.values():
                if not everything and now < self.eligible_at(group, lane_spare):
                    continue
                if lane.flying and not lane.may_go(group):
                    continue
                rank = self._group_rank(group, now)
                if best is None or rank > best:
                    best, chosen = rank, group
        return chosen

    def _head_rank(self, lane: Lane, now: float) -> Rank:
        _, since, work = lane.sealed[0]
        fill = 1.0 if isinstance(work, EventWork) else len(work.items) / self.max_inputs
        return (lane.barriers > 0, fill + (now - since) / self.max_wait_seconds, -since)

    def _group_rank(self, group: AttendanceBatch, now: float) -> Rank:
        age = now - group.opened_at
        return (False, len(group.items) / self.max_inputs + age / self.max_wait_seconds,
                -group.opened_at)
