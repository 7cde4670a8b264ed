"""``SinkWorker``: the commands topic into HubSpot, one consumer, one thread.

Lifecycle::

    start   subscribe (cooperative-sticky); rebalance callbacks are assign / revoke / lost
    step    receive records (pausing at ``max_buffered``), read each into a command (batcher,
            parking or dead letter), settle the work that landed, launch work while the rate
            budget has a slot (several in flight together, see :mod:`~connector.sink.flight`),
            probe parked events, and every ``commit_interval_seconds`` commit and report
            progress
    revoke  let the partitions' flights land (bounded by ``landing_seconds``; they stop at
            their next wait) or, one at a time, flush what can go without waiting; commit
            (asynchronously), forget the partitions
    stop    drain (bounded by ``drain_seconds``), let flights land (bounded), deliver dead
            letters (bounded), commit and wait for the broker's answer (bounded), close
            (bounded)

The parts, each with one job: :class:`~connector.sink.intake.Intake` (polling, backpressure,
waiting while polling), :class:`~connector.sink.commands.CommandReader` (records into commands),
:class:`~connector.sink.dispatch.Dispatcher` (work under the rate budget),
:class:`~connector.sink.missing.MissingEvents` (parking),
:class:`~connector.sink.dead_letters.DeadLetters`, :class:`~connector.sink.commits.Committer`
and :mod:`~connector.sink.reporting`. The caller builds the intake first: the applier waits
through :meth:`Intake.idle <connector.sink.intake.Intake.idle>`.

The broker may go away at any time (a rolling restart, a crash) and the worker keeps going; no
call waits on it without a bound. In :meth:`SinkWorker.revoke` the commit is asynchronous: a
rebalance callback cannot poll, so it cannot wait for an answer with a bound, and a synchronous
commit has none. librdkafka queues the commit to the coordinator before the rejoin that hands
the partition over, so it normally lands first; if it does not (no coordinator then), the next
owner replays from the last confirmed commit, which HubSpot takes idempotently (at least once).
:meth:`SinkWorker.stop` closes the consumer in a daemon thread joined for at most
``close_timeout_seconds`` (``close()`` can hang while the coordinator is away, librdkafka
#3740). A 401/403 stops the worker with :class:`HubSpotAccessError`: the finished commands are
committed, the unapplied ones are not, nothing is dead-lettered for it. A fatal consume error
ends the worker (``sink.consumer_fatal``) so that a supervisor restarts it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from connector.installs import NoRoute
from connector.kafka.clients import KafkaException, TopicPartition
from connector.kafka.lifecycle import close_within
from connector.kafka.protocols import DeliveryProducer
from connector.serde.topic import TopicDecoder
from connector.sink.accounts import Destination, Destinations
from connector.sink.apply import Applier
from connector.sink.batch import Batcher
from connector.sink.budget import RateBudget
from connector.sink.commands import CommandReader
from connector.sink.commits import Committer
from connector.sink.dead_letters import DeadLetters
from connector.sink.dispatch import Dispatcher
from connector.sink.errors import DeadLetterDeliveryError, HubSpotAccessError, SinkInterrupted
from connector.sink.flight import Concurrency
from connector.sink.intake import Intake
from connector.sink.missing import MissingEvents
from connector.sink.offsets import AssignedOffsets
from connector.sink.outcome import CommandFailure
from connector.sink.park import ParkingLot
from connector.sink.reporting import BudgetGauge, ProgressReporter
from connector.sink.request import EventKey
from connector.sink.shares import AccountShares, Decision
from connector.sink.work import Partition, PendingCommand
from connector.telemetry import Telemetry

log = logging.getLogger("connector.sink")


def _keys(partitions: list[TopicPartition]) -> list[Partition]:
    return [(tp.topic, tp.partition) for tp in partitions]


class SinkWorker:
    """Consumes commands, applies them to HubSpot, dead-letters what fails, commits the rest."""

    def __init__(
        self,
        intake: Intake,
        *,
        producer: DeliveryProducer,
        applier: Applier | None,
        decoder: TopicDecoder,
        batcher: Batcher,
        parking: ParkingLot,
        budget: RateBudget | None = None,
        telemetry: Telemetry | None = None,
        producer_factory: Callable[[], DeliveryProducer] | None = None,
        executor: Executor | None = None,
        concurrency: Concurrency | None = None,
        destinations: Destinations | None = None,
    ) -> None:
        """``intake``: the consumer side, whose options, clock, progress watch and offsets
        the worker shares. ``producer_factory`` builds a new dead-letter producer after a fatal
        error (None: such an error ends the worker). ``executor``: where work is applied (a
        thread pool: several in flight, up to ``concurrency``; None: inline, one at a time);
        the worker shuts it down when it stops."""
        telemetry = telemetry if telemetry is not None else Telemetry.disabled()
        metrics, progress = telemetry.metrics, intake.progress
        self.intake = intake
        self.batcher = batcher
        self.stats: Counter[str] = Counter()
        self._options = intake.options
        self._interrupts = intake.interrupts
        self._dead_letters = DeadLetters(
            producer, dlq_topic=self._options.dlq_topic, offsets=intake.offsets,
            clock=intake.clock, metrics=metrics, progress=progress, stats=self.stats,
            producer_factory=producer_factory)
        self._committer = Committer(intake, self._dead_letters)
        gauge = BudgetGauge(budget, metrics)
        concurrency = concurrency if concurrency is not None else Concurrency(1)
        if destinations is None:  # one HubSpot account for every platform account
            if applier is None:
                raise ValueError("give the applier, or the destinations")
            destinations = Destinations.single(
                Destination("default", applier, budget, concurrency))
        self._destinations = destinations
        self._missing = MissingEvents(
            parking, batcher=batcher, applier=self._applier_of, offsets=intake.offsets,
            dead_letters=self._dead_letters, tracing=telemetry.tracing, gauge=gauge,
            progress=progress, stats=self.stats)
        self._dispatcher = Dispatcher(
            batcher, destinations=destinations, missing=self._missing,
            offsets=intake.offsets, interrupts=self._interrupts,
            dead_letters=self._dead_letters, gauge=gauge, tracing=telemetry.tracing,
            metrics=metrics, progress=progress, stats=self.stats, executor=executor,
            max_in_flight=concurrency.ceiling, behind=lambda: intake.behind)
        held = self._options.max_held_per_account
        self._shares = (AccountShares(held, batcher.held_by, intake.rewind)
                        if held is not None and not destinations.is_single else None)
        self._reader = CommandReader(
            decoder, self._admit, offsets=intake.offsets,
            dead_letters=self._dead_letters, tracing=telemetry.tracing, metrics=metrics,
            stats=self.stats, shares=self._shares)
        self._reporter = ProgressReporter(intake, budget=budget, dead_letters=self._dead_letters,
                                          parked=self._missing)
        self._lag = telemetry.lag_monitor(self._options.group or self._options.topic)
        self._closing = False

    def _applier_of(self, event: EventKey) -> Applier | NoRoute:
        destination = self._destinations.of(event.account)
        return destination if isinstance(destination, NoRoute) else destination.applier

    def _admit(self, pending: PendingCommand) -> None:
        """A command in: held for its HubSpot account, left in Kafka while its account holds
        its share (app mode, read again later), or dead-lettered when its account has no
        usable install (app mode)."""
        if self._shares is not None:
            decision = self._shares.decide(pending.partition, pending.event.account,
                                           pending.offset)
            if decision is not Decision.TAKE:
                self.stats["skipped"] += 1
                if decision is Decision.SKIP:  # (a floor stays unfinished: no commit passes)
                    self.intake.offsets.finished(pending.partition, pending.offset)
                return
        destination = self._destinations.of(pending.event.account)
        if isinstance(destination, NoRoute):
            self._dead_letters.send(CommandFailure.no_route(pending, destination).dead_letter())
            self.stats["no_route"] += 1
            return
        self._missing.admit(pending)

    @property
    def offsets(self) -> AssignedOffsets:
        """The assigned partitions' offsets (seen, finished, confirmed)."""
        return self.intake.offsets

    def on_commit(self, error: Any, partitions: list[Any]) -> None:
        """The consumer's ``on_commit`` (see :meth:`AssignedOffsets.on_commit`)."""
        self.intake.offsets.on_commit(error, partitions)

    def request_stop(self) -> None:
        """Ask the loop to stop (what a signal handler does through the ``stop`` event)."""
        self._interrupts.stop.set()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Join the group."""
        self.intake.consumer.subscribe([self._options.topic], on_assign=self.assign,
                                       on_revoke=self.revoke, on_lost=self.lost)
        log.info("sink.started topic=%s dlq_topic=%s", self._options.topic,
                 self._options.dlq_topic)

    def run(self) -> None:
        """start, then step until ``stop`` is set; then stop()."""
        self.start()
        try:
            while not self._interrupts.stop.is_set():
                self.step()
        except HubSpotAccessError as exc:
            log.critical("sink.fatal status=%s correlation_id=%s error=%s",
                         exc.status, exc.correlation_id, exc)
            self._interrupts.fatal = exc
            raise
        except KafkaException as exc:
            log.critical("sink.consumer_fatal error=%s", exc)
            raise
        finally:
            self.stop()

    def step(self) -> None:
        """One turn of the loop."""
        held = len(self.batcher) + self._dispatcher.flying_commands
        wake = self._dispatcher.landing if self._dispatcher.pooled else None
        messages = self.intake.receive(held, self._poll_timeout, wake)
        self._interrupts.raise_fatal()
        self._lag.maybe_refresh(self.intake.consumer)
        for message in messages:
            self._reader.add(message)
        try:
            self._dispatcher.flush()
        except SinkInterrupted as exc:
            log.info("sink.interrupted reason=%s", exc)
        if self._shares is not None:
            self._shares.release()
        self.commit()

    def _poll_timeout(self) -> float:
        return self._dispatcher.poll_timeout(self._options.poll_seconds, self.intake.clock())

    def commit(self, *, force: bool = False) -> None:
        """Commit every partition's finished prefix (at most every commit interval), and
        report progress."""
        if self._committer.commit_due(force=force):
            self._reporter.report()

    def stop(self) -> None:
        """Drain what is in hand (bounded), deliver dead letters (bounded), commit and wait for
        the answer (bounded), leave the group (bounded)."""
        if self._closing:
            return
        try:
            if self._interrupts.fatal is None:
                self._drain()
            self._land_flights()
            self._dead_letters.pump(self._options.dlq_timeout_seconds)
            if self._dead_letters:
                log.warning("sink.dead_letters_undelivered count=%s (not committed: the next "
                            "owner replays them)", len(self._dead_letters))
            self._committer.commit_and_wait()
        finally:
            self._closing = True
            self._dispatcher.close()
            self._close_consumer()
            log.info("sink.stopped %s", " ".join(f"{k}={v}" for k, v in sorted(self.stats.items())))

    def _drain(self) -> None:
        self.intake.progress.waiting_on("shutdown-drain")
        self._interrupts.start_drain()
        try:
            self._dispatcher.drain()
        except SinkInterrupted as exc:
            log.info("sink.drain_interrupted reason=%s", exc)

    def _land_flights(self) -> None:
        """Wait (bounded) for flights still in the air: what they applied is committed."""
        try:
            left = self._dispatcher.land(None, self._options.landing_seconds)
        except HubSpotAccessError:
            left = self._dispatcher.land(None, 0.0)
        if left:
            log.warning("sink.flights_abandoned count=%s (not committed: the next owner "
                        "replays them)", left)

    def _close_consumer(self) -> None:
        """``close()``, waited for at most ``close_timeout_seconds``."""
        self.intake.progress.waiting_on("kafka-close")
        timeout = self._options.close_timeout_seconds
        if not close_within(self.intake.consumer.close, timeout, "sink-consumer"):
            log.warning("sink.close_timeout seconds=%s (the group coordinator may be away; "
                        "the member leaves the group when its session times out)", timeout)

    # ----------------------------------------------------------------- rebalance callbacks

    def assign(self, consumer: object, partitions: list[TopicPartition]) -> None:
        """Partitions added to this worker."""
        self.intake.offsets.assign(_keys(partitions))
        log.info("sink.assigned partitions=%s", _keys(partitions))

    def revoke(self, consumer: object, partitions: list[TopicPartition]) -> None:
        """Partitions taken away: flush what can go now, commit (asynchronously: a callback
        cannot wait for the answer, see the module docstring), forget them."""
        keys = [key for key in _keys(partitions) if key in self.intake.offsets]
        interrupts = self._interrupts
        try:
            with interrupts.revoking(keys):
                self._land_revoked(keys)
            self._committer.commit(keys, force=True)
        except HubSpotAccessError as exc:
            interrupts.fatal = exc  # raised from the loop once the callback returns
        except (KafkaException, DeadLetterDeliveryError) as exc:
            log.warning("sink.revoke_commit_failed error=%s", exc)
        finally:
            self._forget(keys)
        log.info("sink.revoked partitions=%s", keys)

    def _land_revoked(self, keys: list[Partition]) -> None:
        """Before a revoked partition's commit: its flights land (they stop at their next
        wait; a request in the air ends within the HTTP timeout), so no request of it is in
        the air when the next owner starts; inline, what can go without waiting goes."""
        interrupts = self._interrupts
        if self._dispatcher.pooled:
            left = self._dispatcher.land(keys, self._options.landing_seconds)
            if left:
                log.warning("sink.revoke_flights_abandoned count=%s", left)
        elif not self._closing and not interrupts.busy and interrupts.fatal is None:
            for key in keys:
                self._dispatcher.flush_without_waiting(key)

    def lost(self, consumer: object, partitions: list[TopicPartition]) -> None:
        """Partitions lost without a chance to commit: forget them (the new owner replays)."""
        keys = _keys(partitions)
        self._forget(keys)
        log.warning("sink.lost partitions=%s", keys)

    def _forget(self, keys: list[Partition]) -> None:
        self.intake.offsets.forget(keys)
        self.intake.forget(keys)
        if self._shares is not None:
            self._shares.forget(keys)
        for key in keys:
            self.batcher.drop_partition(key)
            self._missing.parking.drop_partition(key)
        self._dead_letters.drop_partitions(keys)
