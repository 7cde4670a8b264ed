"""Which offset of a partition may be committed (pure): the lowest offset not yet finished.

A command is *finished* once it was applied or its dead letter was delivered. Commands finish
out of order (a parked event's attendance waits while later commands are applied), so the
committable position is the lowest unfinished offset, or one past the highest seen when every
command has finished: at least once, never past an unfinished command.
"""

from __future__ import annotations

import heapq


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
