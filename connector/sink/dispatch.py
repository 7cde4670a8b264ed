"""Sending work while the rate budget has a slot, and settling what each work item did.

Requests are the scarce resource: work is taken (:meth:`Batcher.take`) only while the rate
budget has a free slot, and while it has none the worker keeps consuming, so groups fill up
and the next request carries a full batch. Work is *launched* as a
:class:`~connector.sink.flight.Flight` with that slot reserved, on the executor: a thread pool
keeps up to :meth:`Concurrency.target <connector.sink.flight.Concurrency.target>` in flight
together (the batcher hands out only work that cannot change order while others fly), an
inline executor runs one at a time. Flights *land* on the consumer's thread
(:meth:`Dispatcher.collect`): applied commands are finished, failures dead-lettered, missing
events parked and found ones released, and the batcher may hand out what the flight held back.
Each work item runs in a ``sink batch`` span continuing the trace of its first sampled command;
the batch fill ratio and the rate budget left are measured.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections import Counter, deque
from collections.abc import Callable, Collection
from concurrent.futures import Executor, Future
from contextlib import nullcontext, suppress

from connector.installs import NoRoute
from connector.sink.accounts import Destination, Destinations
from connector.sink.apply import Applier
from connector.sink.batch import Batcher
from connector.sink.dead_letters import DeadLetters
from connector.sink.errors import HubSpotAccessError, SinkInterrupted
from connector.sink.flight import Flight, InlineExecutor, sliced_sleep
from connector.sink.interrupts import Interrupts
from connector.sink.missing import MissingEvents
from connector.sink.offsets import AssignedOffsets
from connector.sink.outcome import ApplyOutcome, CommandFailure
from connector.sink.reporting import BudgetGauge
from connector.sink.request import EventKey
from connector.sink.work import AttendanceBatch, Partition, Work, operation_of, partition_of
from connector.telemetry import Metrics, Tracing
from connector.telemetry.progress import ProgressWatch

#: How long the loop polls Kafka, at most, while work is in flight.
LANDING_SLICE_SECONDS = 0.01
#: How long the drain waits for a landing before it looks at its deadline again.
DRAIN_SLICE_SECONDS = 0.05


class Dispatcher:
    """Takes work from the batcher while the budget allows, launches it, settles the outcome."""

    def __init__(self, batcher: Batcher, *, destinations: Destinations,
                 missing: MissingEvents, offsets: AssignedOffsets, interrupts: Interrupts,
                 dead_letters: DeadLetters, gauge: BudgetGauge, tracing: Tracing,
                 metrics: Metrics, progress: ProgressWatch, stats: Counter[str],
                 executor: Executor | None = None, max_in_flight: int = 1,
                 behind: Callable[[], bool] = lambda: False) -> None:
        """``destinations``: the HubSpot accounts work goes to (one, or one per account).
        ``max_in_flight``: work items in flight at most across accounts (one account alone is
        held to its concurrency target). ``behind``: the input holds more than was read (see
        :meth:`_spare`)."""
        self._batcher = batcher
        self._destinations = destinations
        self._missing = missing
        self._offsets = offsets
        self._interrupts = interrupts
        self._dead_letters = dead_letters
        self._gauge = gauge
        self._tracing = tracing
        self._metrics = metrics
        self._progress = progress
        self._stats = stats
        self._executor = executor if executor is not None else InlineExecutor()
        self._max_in_flight = max_in_flight
        self._behind = behind
        self.pooled = not isinstance(self._executor, InlineExecutor)
        self._flying: dict[Future[ApplyOutcome], Flight] = {}
        self._destination_of: dict[Future[ApplyOutcome], Destination] = {}
        self._flying_commands = 0
        #: Flights done on their thread, not yet settled here (appended by their thread).
        self._done: deque[Future[ApplyOutcome]] = deque()
        #: Set whenever a flight lands (the worker's wait while it has nothing to read).
        self.landing = threading.Event()

    @property
    def in_flight(self) -> int:
        """Work items in flight."""
        return len(self._flying)

    @property
    def flying_commands(self) -> int:
        """Commands in flight."""
        return self._flying_commands

    def flush(self, *, everything: bool = False) -> None:
        """Settle landed work; launch work while the rate budget has a slot and the
        concurrency target has room (everything, waiting for the budget, when asked); probe
        parked events."""
        self.collect()
        while len(self._flying) < self._room():
            ready = self._ready(everything)
            if not ready and self._destinations.is_single:
                break  # (with many, work of an account that lost its install may still go)
            work = self._batcher.take(spare=self._spare(ready), everything=everything,
                                      allowed=self._allowed(ready))
            if work is None:
                break
            self._launch(work)
            if not self.pooled:
                self.collect()
        self._missing.probe_due()

    def drain(self) -> None:
        """Send everything held, waiting for the budget and for flights to land; raises
        SinkInterrupted once the drain time is over. (Kafka is not polled meanwhile: the drain
        time is far below the consumer's poll interval.)"""
        self.flush(everything=True)
        while self._flying:
            self._interrupts.check()
            self.landing.wait(DRAIN_SLICE_SECONDS)
            self.landing.clear()
            self.flush(everything=True)

    def land(self, keys: Collection[Partition] | None, timeout: float) -> int:
        """Wait at most ``timeout`` for the flights (of ``keys``) to land, and settle them;
        how many still fly. Raises only HubSpotAccessError."""
        futures = [future for future, flight in self._flying.items()
                   if keys is None or partition_of(flight.work) in keys]
        if futures:
            concurrent.futures.wait(futures, timeout)
            # done, but its callback (which queues it) may not have run yet: queue it now
            # (queued twice, it is settled once)
            self._done.extend(future for future in futures if future.done())
        with suppress(SinkInterrupted):
            self.collect(keys)
        return sum(1 for flight in self._flying.values()
                   if keys is None or partition_of(flight.work) in keys)

    def flush_without_waiting(self, key: Partition) -> None:
        """Apply a partition's held work that can go without waiting (it is being revoked),
        one at a time; what cannot go now is replayed by the partition's next owner."""
        with self._interrupts.without_waiting():
            try:
                self._batcher.seal_all(key)
                while (work := self._batcher.pop_ready(key)) is not None:
                    self._launch(work, prepay=False)
                    self.collect()
            except SinkInterrupted:
                pass

    def poll_timeout(self, poll_seconds: float, now: float) -> float:
        """Until work may go (it is due and the budget has a slot) or a parked event is due,
        or, while work is in flight, until the next look at what landed."""
        timeout = poll_seconds
        if self._flying:
            timeout = LANDING_SLICE_SECONDS
        if self._destinations.is_single:
            [single] = self._destinations
            slots = single.slots(self._batcher.max_inputs)
            due = self._batcher.next_due(spare=self._is_spare(single, max(slots, 1)))
            if due is not None:
                wait = max(0.0, due - now)
                if not slots and single.budget is not None:
                    wait = max(wait, single.budget.delay())
                timeout = min(timeout, wait)
        else:
            ready = self._ready(everything=False)
            due = self._batcher.next_due(spare=self._spare(ready), allowed=self._allowed(ready))
            if due is not None:
                timeout = min(timeout, max(0.0, due - now))
            for destination in self._destinations:  # held back by their budgets: until a slot
                if (destination not in ready and destination.budget is not None
                        and destination.flying < destination.room() and self._held(destination)):
                    timeout = min(timeout, destination.budget.delay())
        probe = self._missing.parking.next_probe()
        if probe is not None:
            timeout = min(timeout, max(0.0, probe - now))
        return timeout

    def close(self) -> None:
        """Stop the executor (flights still in the air are abandoned: their work is not
        committed)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _report_in_flight(self) -> None:
        if self._metrics.enabled:
            self._metrics.set_in_flight(len(self._flying), self._room())

    def _room(self) -> int:
        """Work items allowed in flight now: the one account's concurrency target, or across
        accounts (each held to its own target) the configured ceiling."""
        if self._destinations.is_single:
            [single] = self._destinations
            return single.room()
        return self._max_in_flight

    def _ready(self, everything: bool) -> dict[Destination, int]:
        """The destinations that may take a work item now, with their free slots: room for
        one more in flight, and a slot in their budget (any, when ``everything``)."""
        unlimited = self._batcher.max_inputs
        ready: dict[Destination, int] = {}
        for destination in self._destinations:
            if destination.flying >= destination.room():
                continue
            slots = destination.slots(unlimited)
            if slots or everything:
                ready[destination] = slots
        return ready

    def _allowed(self, ready: dict[Destination, int]) -> Callable[[EventKey], bool] | None:
        """Which events' work may be taken: those of a ready destination, and those of an
        account without one (taken to be dead-lettered); None: every event (one account)."""
        if self._destinations.is_single:
            return None
        of = self._routes_now()
        return lambda event: (d := of(event.account)) in ready or isinstance(d, NoRoute)

    def _routes_now(self) -> Callable[[str], Destination | NoRoute]:
        """Destinations.of, each account resolved once for the question asked now (a take
        asks it of every lane; resolving reads the install and its token's state)."""
        of = self._destinations.of
        known: dict[str, Destination | NoRoute] = {}

        def lookup(account: str) -> Destination | NoRoute:
            found = known.get(account)
            if found is None:
                found = known[account] = of(account)
            return found

        return lookup

    def _spare(self, ready: dict[Destination, int]) -> bool | Callable[[EventKey], bool]:
        """Whether an event's account has slots to spare (see :meth:`_is_spare`)."""
        if self._destinations.is_single:
            [(single, slots)] = ready.items()
            return self._is_spare(single, slots)
        # Many accounts: each budget alone nearly always has slots to spare, but what the
        # process can send (its CPU, its requests in flight) is shared by all of them. While
        # the input is behind, a group that waits fills, and a partial request would spend
        # that shared capacity: no account's budget counts as spare then.
        spare = set() if self._behind() else {
            d for d, slots in ready.items() if self._is_spare(d, slots)}
        of = self._routes_now()
        return lambda event: (d := of(event.account)) in spare or isinstance(d, NoRoute)

    def _held(self, destination: Destination) -> int:
        if self._destinations.is_single:
            return len(self._batcher)
        return sum(self._batcher.held_by(account) for account in destination.accounts)

    def _is_spare(self, destination: Destination, slots: int) -> bool:
        """The free slots could carry every held command (of the account) at full batches."""
        return slots * self._batcher.max_inputs >= self._held(destination)

    # ----------------------------------------------------------------- launching, landing

    def _launch(self, work: Work, *, prepay: bool = True) -> None:
        """Send ``work`` on the executor to its account, with a slot reserved now when one is
        free (``prepay``); work of an account that has no route is dead-lettered."""
        destination = self._destinations.of(work.event.account)
        if isinstance(destination, NoRoute):
            self._refuse(work, destination)
            return
        budget = destination.budget
        ticket = budget.acquire() if prepay and budget is not None else None
        sleep = sliced_sleep(lambda: self._interrupts.check(work)) if self.pooled else None
        flight = Flight(work, ticket, sleep)
        self._progress.waiting_on("hubspot")
        destination.flying += 1
        future = self._executor.submit(self._fly, flight, destination.applier)
        self._flying[future] = flight
        self._destination_of[future] = destination
        self._flying_commands += len(work.items)
        future.add_done_callback(self._landed)
        self._report_in_flight()

    def _refuse(self, work: Work, no_route: NoRoute) -> None:
        """Dead-letter a taken work item whose account has no usable HubSpot install (it was
        revoked, or lost its scopes, while the work was held)."""
        self._batcher.landed(work)
        failures = [CommandFailure.no_route(p, no_route) for p in work.items]
        key = partition_of(work)
        if key in self._offsets:
            self._settle(key, ApplyOutcome(failed=failures))

    def _landed(self, future: Future[ApplyOutcome]) -> None:
        self._done.append(future)
        self.landing.set()

    def _fly(self, flight: Flight, applier: Applier) -> ApplyOutcome:
        """Apply one work item (on a pool thread, or inline)."""
        work = flight.work
        applying = nullcontext() if self.pooled else self._interrupts.applying(work)
        with applying, self._tracing.sink_batch([p.source for p in work.items],
                                                operation=operation_of(work)):
            return applier.execute(work, flight)

    def collect(self, keys: Collection[Partition] | None = None) -> None:
        """Settle every landed flight (of ``keys``). Raises HubSpotAccessError when one met
        it, else SinkInterrupted when one was interrupted (after settling the rest)."""
        interrupted: SinkInterrupted | None = None
        fatal: HubSpotAccessError | None = None
        kept: list[Future[ApplyOutcome]] = []
        try:
            while self._done:
                future = self._done.popleft()
                flight = self._flying.get(future)
                if flight is None:
                    continue
                if keys is not None and partition_of(flight.work) not in keys:
                    kept.append(future)
                    continue
                del self._flying[future]
                self._flying_commands -= len(flight.work.items)
                self._report_in_flight()
                try:
                    self._land(flight, future)
                except SinkInterrupted as exc:
                    interrupted = exc
                except HubSpotAccessError as exc:
                    fatal = fatal or exc
        finally:
            self._done.extendleft(reversed(kept))
        if fatal is not None:
            raise fatal
        if interrupted is not None:
            raise interrupted

    def _land(self, flight: Flight, future: Future[ApplyOutcome]) -> None:
        work = flight.work
        key = partition_of(work)
        self._batcher.landed(work)
        destination = self._destination_of.pop(future)
        destination.flying -= 1
        unused = flight.take_ticket()
        if unused is not None and destination.budget is not None:
            destination.budget.settle(None, admitted=False, ticket=unused)
        self._gauge.report()
        try:
            outcome = future.result()
        except SinkInterrupted:
            if key in self._offsets and not self._interrupts.is_revoking(key):
                self._batcher.push_front(work)
            raise
        self._progress.progressed()
        if isinstance(work, AttendanceBatch):
            self._metrics.batch_sent(operation_of(work), len(work.items),
                                     self._batcher.max_inputs)
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
