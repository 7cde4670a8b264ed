"""Sending work while the rate budget has a slot, and settling what each work item did.

Requests are the scarce resource: work is taken (:meth:`Batcher.take`) only while the rate
budget has a free slot, and while it has none the worker keeps consuming, so groups fill up
and the next request carries a full batch. After a work item, applied commands are finished,
failures dead-lettered, missing events parked and found ones released. Each work item runs in
a ``sink batch`` span continuing the trace of its first sampled command; the batch fill ratio
and the rate budget left are measured.
"""

from __future__ import annotations

from collections import Counter

from connector.sink.apply import Applier
from connector.sink.batch import Batcher
from connector.sink.budget import RateBudget
from connector.sink.dead_letters import DeadLetters
from connector.sink.errors import SinkInterrupted
from connector.sink.interrupts import Interrupts
from connector.sink.missing import MissingEvents
from connector.sink.offsets import AssignedOffsets
from connector.sink.outcome import ApplyOutcome
from connector.sink.reporting import BudgetGauge
from connector.sink.work import AttendanceBatch, Partition, Work, operation_of, partition_of
from connector.telemetry import Metrics, Tracing
from connector.telemetry.progress import ProgressWatch


class Dispatcher:
    """Takes work from the batcher while the budget allows, applies it, settles the outcome."""

    def __init__(self, batcher: Batcher, *, applier: Applier, missing: MissingEvents,
                 budget: RateBudget | None, offsets: AssignedOffsets, interrupts: Interrupts,
                 dead_letters: DeadLetters, gauge: BudgetGauge, tracing: Tracing,
                 metrics: Metrics, progress: ProgressWatch, stats: Counter[str]) -> None:
        self._batcher = batcher
        self._applier = applier
        self._missing = missing
        self._budget = budget
        self._offsets = offsets
        self._interrupts = interrupts
        self._dead_letters = dead_letters
        self._gauge = gauge
        self._tracing = tracing
        self._metrics = metrics
        self._progress = progress
        self._stats = stats

    def flush(self, *, everything: bool = False) -> None:
        """Apply work while the rate budget has a slot (everything, waiting for the budget,
        when asked); probe parked events."""
        while True:
            slots = self._slots()
            if not (everything or slots):
                break
            work = self._batcher.take(spare=self._is_spare(slots), everything=everything)
            if work is None:
                break
            self._execute(work)
        self._missing.probe_due()

    def flush_without_waiting(self, key: Partition) -> None:
        """Apply a partition's held work that can go without waiting (it is being revoked);
        what cannot go now is replayed by the partition's next owner."""
        with self._interrupts.without_waiting():
            try:
                self._batcher.seal_all(key)
                while (work := self._batcher.pop_ready(key)) is not None:
                    self._execute(work)
            except SinkInterrupted:
                pass

    def poll_timeout(self, poll_seconds: float, now: float) -> float:
        """Until work may go (it is due and the budget has a slot) or a parked event is due."""
        timeout = poll_seconds
        slots = self._slots()
        due = self._batcher.next_due(spare=self._is_spare(max(slots, 1)))
        if due is not None:
            wait = max(0.0, due - now)
            if not slots and self._budget is not None:
                wait = max(wait, self._budget.delay())
            timeout = min(timeout, wait)
        probe = self._missing.parking.next_probe()
        if probe is not None:
            timeout = min(timeout, max(0.0, probe - now))
        return timeout

    def _slots(self) -> int:
        """Requests the rate budget allows now."""
        return self._budget.free() if self._budget is not None else self._batcher.max_inputs

    def _is_spare(self, slots: int) -> bool:
        """The free slots could carry every held command at full batches."""
        return slots * self._batcher.max_inputs >= len(self._batcher)

    def _execute(self, work: Work) -> None:
        key = partition_of(work)
        operation = operation_of(work)
        self._progress.waiting_on("hubspot")
        try:
            with self._interrupts.applying(work), \
                    self._tracing.sink_batch([p.source for p in work.items], operation=operation):
                outcome = self._applier.execute(work)
        except SinkInterrupted:
            if key in self._offsets:
                self._batcher.push_front(work)
            raise
        finally:
            self._gauge.report()
        self._progress.progressed()
        if isinstance(work, AttendanceBatch):
            self._metrics.batch_sent(operation, len(work.items), self._batcher.max_inputs)
        if key in self._offsets:  # else revoked while in flight: the new owner replays it
            self._settle(key, outcome)

    def _settle(self, key: Partition, outcome: ApplyOutcome) -> None:
        for pending in outcome.applied:
            self._offsets.finished(key, pending.offset)
        self._stats["applied"] += len(outcome.applied)
        for failure in outcome.failed:
            self._dead_letters.send(failure.dead_letter())
        if outcome.missing:
            self._missing.park(outcome.missing)
        for event in outcome.events_found:
            if event in self._missing:
                self._missing.release(event)
