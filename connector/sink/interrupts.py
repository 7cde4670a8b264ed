"""What cuts the sink's waits short, checked at every turn of a wait.

A wait inside a work item (rate budget, retry backoff) ends with
:class:`~connector.sink.errors.SinkInterrupted` when the worker is stopping and its drain time
is over, or when the partition of the work in hand was revoked; a fatal error caught in a
rebalance callback (401/403) is raised from the loop once the callback returned; and inside a
rebalance callback nothing may wait at all (a callback cannot poll).

Work in flight on a pool thread asks :meth:`Interrupts.check` about its own work item: it ends
at its next wait when the worker stops past its drain time, when a fatal error was seen, or when
its partition is being revoked (:meth:`Interrupts.revoking`: the revoke waits for it to land).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from connector.clock import Clock
from connector.sink.errors import HubSpotAccessError, SinkInterrupted
from connector.sink.offsets import AssignedOffsets
from connector.sink.work import Partition, Work, partition_of


class Interrupts:
    """The stop request and drain deadline, a deferred fatal error, the work in hand."""

    def __init__(self, stop: threading.Event, *, clock: Clock, drain_seconds: float,
                 offsets: AssignedOffsets) -> None:
        self.stop = stop
        self.fatal: HubSpotAccessError | None = None
        self._clock = clock
        self._drain_seconds = drain_seconds
        self._offsets = offsets
        self._drain_deadline: float | None = None
        self._in_flight: Work | None = None
        self._no_wait = False
        self._revoking: frozenset[Partition] = frozenset()

    @property
    def busy(self) -> bool:
        """A work item is being applied."""
        return self._in_flight is not None

    def start_drain(self) -> None:
        """The drain time starts now (unless it already started)."""
        if self._drain_deadline is None:
            self._drain_deadline = self._clock() + self._drain_seconds

    def raise_fatal(self) -> None:
        """Raise the fatal error a rebalance callback caught, if any."""
        if self.fatal is not None:
            raise self.fatal

    def check(self, work: Work | None = None) -> None:
        """Raise when the wait in hand (of ``work``, else of the work applied inline) must end
        now. Safe from any thread."""
        self.raise_fatal()
        if self.stop.is_set():
            now = self._clock()
            if self._drain_deadline is None:
                self._drain_deadline = now + self._drain_seconds
            if now >= self._drain_deadline:
                raise SinkInterrupted("shutting down: the drain time is over")
        work = work if work is not None else self._in_flight
        if work is not None:
            key = partition_of(work)
            if key not in self._offsets or key in self._revoking:
                raise SinkInterrupted("the partition of the work in hand was revoked")

    @contextmanager
    def revoking(self, keys: list[Partition]) -> Iterator[None]:
        """Work of these partitions ends at its next wait, for the duration."""
        self._revoking = self._revoking | frozenset(keys)
        try:
            yield
        finally:
            self._revoking = self._revoking - frozenset(keys)

    def is_revoking(self, key: Partition) -> bool:
        """``key`` is being revoked: its work is not put back."""
        return key in self._revoking

    def check_may_wait(self) -> None:
        """Raise inside a rebalance callback: no waiting there."""
        if self._no_wait:
            raise SinkInterrupted("no waiting inside a rebalance callback")

    @contextmanager
    def applying(self, work: Work) -> Iterator[None]:
        """``work`` is in hand for the duration."""
        self._in_flight = work
        try:
            yield
        finally:
            self._in_flight = None

    @contextmanager
    def without_waiting(self) -> Iterator[None]:
        """Any wait raises for the duration (a rebalance callback)."""
        self._no_wait = True
        try:
            yield
        finally:
            self._no_wait = False
