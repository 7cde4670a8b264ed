"""Which offset of a partition may be committed (pure): the lowest offset not yet finished.

A command is *finished* once it was applied or its dead letter was delivered. Commands finish
out of order (a parked event's attendance waits while later commands are applied), so the
committable position is the lowest unfinished offset, or one past the highest seen when every
command has finished: at least once, never past an unfinished command.
:class:`AssignedOffsets` keeps a tracker per assigned partition and receives the broker's
answers to commits.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable
from typing import Any

from connector.sink.work import Partition
from connector.telemetry.progress import ProgressWatch

log = logging.getLogger("connector.sink")


class OffsetTracker:
    """Seen and finished offsets of one partition."""

    def __init__(self) -> None:
        self._unfinished: set[int] = set()
        self._heap: list[int] = []
        self._next: int | None = None
        self.committed: int | None = None

    def seen(self, offset: int) -> None:
        """A command was consumed (in offset order)."""
        self._unfinished.add(offset)
        heapq.heappush(self._heap, offset)
        self._next = offset + 1 if self._next is None else max(self._next, offset + 1)

    def finished(self, offset: int) -> None:
        """A command was applied or dead-lettered."""
        self._unfinished.discard(offset)

    def below_read_position(self, offset: int) -> bool:
        """``offset`` was read before (a partition sought back reads it again)."""
        return self._next is not None and offset < self._next

    @property
    def unfinished(self) -> int:
        """How many commands are still in hand."""
        return len(self._unfinished)

    def position(self) -> int | None:
        """The offset to commit (the next one to read after a restart), None if nothing seen."""
        while self._heap and self._heap[0] not in self._unfinished:
            heapq.heappop(self._heap)
        if self._heap:
            return self._heap[0]
        return self._next

    def to_commit(self) -> int | None:
        """The position, when it moved since the last commit."""
        position = self.position()
        if position is None or position == self.committed:
            return None
        return position


class AssignedOffsets:
    """The offsets of the partitions assigned to the worker: one :class:`OffsetTracker` each,
    and the commit waiting for the broker's answer.

    :meth:`on_commit` is the consumer's ``on_commit`` callback: only what it confirms counts as
    committed. It exists before the consumer (whose config names it) and before the worker."""

    def __init__(self, progress: ProgressWatch) -> None:
        self.trackers: dict[Partition, OffsetTracker] = {}
        #: When the outstanding commit was sent (None: none is outstanding).
        self.commit_sent: float | None = None
        self._progress = progress

    def __contains__(self, key: object) -> bool:
        return key in self.trackers

    def keys(self) -> list[Partition]:
        """The assigned partitions."""
        return list(self.trackers)

    def assign(self, keys: Iterable[Partition]) -> None:
        """Partitions added (a tracker each, kept if already there)."""
        for key in keys:
            self.trackers.setdefault(key, OffsetTracker())

    def forget(self, keys: Iterable[Partition]) -> None:
        """Partitions revoked or lost."""
        for key in keys:
            self.trackers.pop(key, None)

    def finished(self, key: Partition, offset: int) -> None:
        """A command of an assigned partition was applied or its dead letter delivered."""
        tracker = self.trackers.get(key)
        if tracker is not None:
            tracker.finished(offset)

    def unfinished(self) -> int:
        """Commands consumed and not yet finished."""
        return sum(t.unfinished for t in self.trackers.values())

    def unconfirmed(self) -> list[Partition]:
        """Partitions whose position the broker has not confirmed."""
        return [key for key, tracker in self.trackers.items() if tracker.to_commit() is not None]

    def to_commit(self, keys: Iterable[Partition]) -> list[tuple[Partition, int]]:
        """The positions of ``keys`` that moved since the last confirmed commit."""
        moved = []
        for key in keys:
            tracker = self.trackers.get(key)
            position = tracker.to_commit() if tracker else None
            if position is not None:
                moved.append((key, position))
        return moved

    def on_commit(self, error: Any, partitions: list[Any]) -> None:
        """The broker's answer to a commit (served by consume or poll). Confirmed offsets
        become each tracker's ``committed``; errors are logged and the next interval commits
        again."""
        self.commit_sent = None
        if error is not None:
            log.warning("sink.commit_failed error=%s", error)
            return
        confirmed = []
        for tp in partitions or ():
            if tp.error is not None:
                log.warning("sink.commit_failed partition=%s error=%s", tp.partition, tp.error)
                continue
            tracker = self.trackers.get((tp.topic, tp.partition))
            if tracker is None or tp.offset < 0:
                continue  # revoked meanwhile
            if tracker.committed is None or tp.offset > tracker.committed:
                tracker.committed = tp.offset
                confirmed.append((tp.partition, tp.offset))
        if confirmed:
            self._progress.progressed()
            log.debug("sink.committed offsets=%s", confirmed)
