"""Per-person order in the batcher (pure): a person is in at most one open group.

A newer command of a person whose older one sits in an open group is *deferred* (held aside,
in order) until that group is sealed, and only then placed; so the older one is always in an
earlier work item of the same lane, and a conflict never forces a small batch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from connector.sink.request import EventKey, GroupKey
from connector.sink.work import PendingCommand, PersonKey


class PersonOrder:
    """Which open group each person is in, their deferred commands, and who may go next."""

    def __init__(self) -> None:
        self._group: dict[PersonKey, GroupKey] = {}
        self._deferred: dict[PersonKey, deque[PendingCommand]] = {}
        self._released: deque[PersonKey] = deque()

    @property
    def deferred_count(self) -> int:
        """Commands held aside behind an older command of the same person."""
        return sum(len(q) for q in self._deferred.values())

    def is_busy(self, person: PersonKey) -> bool:
        """The person has a command in an open group or deferred: a newer one must wait."""
        return person in self._deferred or person in self._group

    def defer(self, person: PersonKey, pending: PendingCommand) -> None:
        """Hold a command aside until the person's group is sealed."""
        self._deferred.setdefault(person, deque()).append(pending)

    def joined(self, person: PersonKey, key: GroupKey) -> None:
        """The person's command was placed in the open group ``key``."""
        self._group[person] = key

    def sealed(self, event: EventKey, names: set[str]) -> None:
        """A group of these persons was sealed: their next deferred commands may be placed."""
        for name in names:
            person = (event, name)
            self._group.pop(person, None)
            if person in self._deferred:
                self._released.append(person)

    def regrouped(self, event: EventKey, key: GroupKey, before: set[str],
                  after: set[str]) -> None:
        """Commands were taken out of the open group ``key``: ``after`` are its persons now."""
        for name in before:
            self._group.pop((event, name), None)
        for name in after:
            self._group[(event, name)] = key

    def next_released(self) -> tuple[PersonKey, PendingCommand] | None:
        """The next deferred command that may be placed now (removed), or None."""
        while self._released:
            person = self._released.popleft()
            queue = self._deferred.get(person)
            if not queue or person in self._group:
                continue
            pending = queue.popleft()
            if not queue:
                del self._deferred[person]
            return person, pending
        return None

    def any_deferred(self, match: Callable[[PersonKey, PendingCommand], bool]) -> bool:
        """Some person with deferred commands matches (given the oldest of them)."""
        return any(match(person, queue[0]) for person, queue in self._deferred.items())

    def extract(self, predicate: Callable[[PendingCommand], bool]) -> list[PendingCommand]:
        """Remove matching deferred commands; a person left without an open group is released
        (placed at the next release)."""
        taken: list[PendingCommand] = []
        for person, queue in list(self._deferred.items()):
            taken.extend(p for p in queue if predicate(p))
            rest = deque(p for p in queue if not predicate(p))
            if rest:
                self._deferred[person] = rest
            else:
                del self._deferred[person]
        for person in list(self._deferred):
            if person not in self._group:
                self._released.append(person)
        return taken
