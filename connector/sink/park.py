"""Parked events (pure): commands waiting for their event to exist in HubSpot.

Event and attendance commands of one webinar may come from different normalizer tasks, so
attendance can arrive before the event was created. Its commands are *parked* rather than
blocking the partition: everything later for that event joins the parking (in offset order)
except an EventUpsert, which may create it. The event is probed (one GET) with backoff, and
released as soon as it exists — or when an upsert of it succeeds. When it still does not exist
after the retry budget, every parked command is dead-lettered as ``event-not-found``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from connector.clock import Clock
from connector.hubspot import HubSpotError
from connector.sink.request import EventKey
from connector.sink.work import Partition, PendingCommand


@dataclass(eq=False)
class ParkedEvent:
    """One missing event and its commands, oldest first."""

    event: EventKey
    since: float
    next_probe: float
    probes: int = 0
    items: list[PendingCommand] = field(default_factory=list)
    last_error: HubSpotError | None = None


class ParkingLot:
    """Missing events, their parked commands and when to look for them again."""

    def __init__(
        self,
        *,
        budget_seconds: float,
        clock: Clock,
        first_probe_seconds: float = 1.0,
        max_probe_seconds: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.budget_seconds = budget_seconds
        self._clock = clock
        self._first = first_probe_seconds
        self._max = max_probe_seconds
        self._rng = rng or random.Random()
        self._events: dict[EventKey, ParkedEvent] = {}

    def __contains__(self, event: object) -> bool:
        return event in self._events

    def __len__(self) -> int:
        """Parked commands."""
        return sum(len(p.items) for p in self._events.values())

    def __iter__(self) -> Iterator[ParkedEvent]:
        return iter(list(self._events.values()))

    def park(self, items: list[PendingCommand]) -> None:
        """Park commands (of one or more events) whose event was not found."""
        now = self._clock()
        for p in items:
            parked = self._events.get(p.event)
            if parked is None:
                origin = min((q.first_failure_ms for q in items
                              if q.event == p.event and q.first_failure_ms is not None),
                             default=None)
                since = origin / 1000 if origin is not None else now
                parked = self._events[p.event] = ParkedEvent(p.event, since, now + self._first)
            parked.items.append(p)
            parked.items.sort(key=lambda q: q.offset)

    def add(self, pending: PendingCommand) -> None:
        """A newer command of a parked event joins it."""
        self._events[pending.event].items.append(pending)

    def due(self) -> list[ParkedEvent]:
        """Events to probe now."""
        now = self._clock()
        return [p for p in self._events.values() if p.next_probe <= now]

    def probed(self, event: EventKey, error: HubSpotError | None = None) -> None:
        """A probe found nothing: look again later (exponential, jittered, capped)."""
        parked = self._events[event]
        parked.probes += 1
        parked.last_error = error or parked.last_error
        now_ms = int(self._clock() * 1000)
        for p in parked.items:
            p.failed(now_ms)
        delay = min(self._max, self._first * 2 ** parked.probes)
        parked.next_probe = self._clock() + delay / 2 + self._rng.uniform(0, delay / 2)

    def is_expired(self, event: EventKey) -> bool:
        """The event is still missing after the retry budget."""
        return self._clock() - self._events[event].since >= self.budget_seconds

    def release(self, event: EventKey) -> list[PendingCommand]:
        """Unpark an event: its commands, oldest first."""
        parked = self._events.pop(event, None)
        return parked.items if parked else []

    def last_error(self, event: EventKey) -> HubSpotError | None:
        """What the latest probe of a parked event got."""
        parked = self._events.get(event)
        return parked.last_error if parked else None

    def drop_partition(self, partition: Partition) -> list[PendingCommand]:
        """Forget parked commands of a revoked partition."""
        dropped: list[PendingCommand] = []
        for event, parked in list(self._events.items()):
            if parked.items and parked.items[0].partition == partition:
                dropped.extend(self._events.pop(event).items)
        return dropped

    def next_probe(self) -> float | None:
        """When the next probe is due."""
        return min((p.next_probe for p in self._events.values()), default=None)
