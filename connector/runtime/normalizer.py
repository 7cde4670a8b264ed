"""The normalizer worker: platform topics in, commands out, exactly once.

One consumer group reads both platform topics. Each loop iteration is one Kafka transaction
(:mod:`connector.runtime.normalizer_commit`), so a crash at any point leaves either all of an
iteration's effects or none of them.

    consume (rebalance callbacks run here, between transactions: normalizer_rebalance)
      -> webinar table updates (every instance reads the whole webinars topic)
      -> activity: decode -> AttendanceNormalizer (per input partition: normalizer_records)
      -> webinars: decode -> EventProjector (per input partition)
      -> idle punctuation (stream time follows the wall clock while a partition is quiet)
      -> one transaction: commands + dead letters + changelog + offsets, ended (offsets,
         EndTxn) on a committer thread while the next batch is consumed and normalized

The worker is handed its parts and clients (:func:`connector.runtime.assemble.normalizer_worker`
builds them from settings). Consumer lag, open attendances and state size are refreshed from the
loop at most every ``lag_interval_seconds``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from connector import native
from connector.config import NormalizerSettings, TopicSettings
from connector.kafka.clients import KafkaException, TopicPartition
from connector.kafka.lifecycle import close_within, pause_before
from connector.kafka.protocols import (
    TransactionalMember,
    TransactionalProducer,
    TransactionWriter,
)
from connector.kafka.transaction import BoundedTransactions
from connector.normalize.collector import CollectorPolicy
from connector.normalize.normalizer import AttendanceNormalizer
from connector.normalize.rules import NormalizeRules
from connector.runtime.normalizer_clients import (
    ClusterWait,
    NormalizerClients,
    StoppedWhileWaiting,
)
from connector.runtime.normalizer_commit import TransactionCommitter
from connector.runtime.normalizer_rebalance import RebalanceHandler
from connector.runtime.normalizer_records import RecordHandler
from connector.runtime.normalizer_state import (
    Changelogs,
    PartitionStates,
    RestartNeeded,
    normalizer_topics,
)
from connector.runtime.table import WebinarTable, WebinarTableReader, WebinarUpdates
from connector.serde.topic import TopicDecoder
from connector.telemetry import Telemetry
from connector.telemetry.lag import cached_lag
from connector.telemetry.progress import ProgressWatch

log = logging.getLogger(__name__)

#: How long closing a client may take before the worker goes on without it.
CLOSE_SECONDS = 10.0


@dataclass(frozen=True)
class NormalizerParts:
    """What the loop drives, sharing one `PartitionStates` (see connector.runtime.assemble)."""

    state: PartitionStates
    changelogs: Changelogs
    rules: NormalizeRules
    records: RecordHandler
    commits: TransactionCommitter
    rebalance: RebalanceHandler
    #: Decodes the webinars topic for the table reader.
    webinar_decoder: TopicDecoder
    #: Start-up calls wait here while the cluster does not answer.
    wait: ClusterWait


class MemberCallbacks:
    """One consumer's ``on_assign`` / ``on_revoke`` (and ``on_lost``): the worker's
    `RebalanceHandler` until `retire`, then nothing (confluent-kafka still assigns or unassigns
    for a callback that does not)."""

    def __init__(self, handler: RebalanceHandler) -> None:
        self._handler: RebalanceHandler | None = handler

    def on_assign(self, consumer: object, partitions: list[TopicPartition]) -> None:
        handler = self._handler
        if handler is not None:
            handler.on_assign(consumer, partitions)

    def on_revoke(self, consumer: object, partitions: list[TopicPartition]) -> None:
        handler = self._handler
        if handler is not None:
            handler.on_revoke(consumer, partitions)

    def retire(self) -> None:
        """From now on the consumer's rebalances (its leave, its close) leave the state alone."""
        self._handler = None


class NormalizerWorker:
    """Runs until `stop` is set; call `run()`."""

    def __init__(self, topics: TopicSettings, options: NormalizerSettings,
                 clients: NormalizerClients, parts: NormalizerParts, stop: threading.Event,
                 telemetry: Telemetry, progress: ProgressWatch,
                 collector: CollectorPolicy) -> None:
        self.topics = topics
        self.options = options
        self.clients = clients
        self.parts = parts
        self.stop = stop
        self.telemetry = telemetry
        self.tracing = telemetry.tracing
        self.metrics = telemetry.metrics
        #: Progress for the stall rule (connector.telemetry.progress): /healthz and the gauge.
        self.progress = progress
        #: Freezes the state after each transaction when the process runs nothing else (see
        #: connector.normalize.collector).
        self.collector = collector
        self.lag = telemetry.lag_monitor(options.group_id)
        self._next_progress_report = 0.0
        self._next_state_report = 0.0
        self._restarts = 0

    # -- start-up and the loop ---------------------------------------------------------------

    def run(self) -> None:
        """Process until stopped; restarts itself from the changelogs after an aborted txn."""
        log.info("normalizer_starting %s", native.status().describe())
        try:
            self._start_and_run()
        except StoppedWhileWaiting:
            log.info("normalizer_stopped_while_waiting_for_kafka")

    def _start_and_run(self) -> None:
        wait = self.parts.wait
        partitions = wait.until_available("topic metadata", self.clients.partition_counts)
        topics = normalizer_topics(self.topics, self.parts.changelogs, partitions,
                                   self.options.partitions)
        # asked again while a broker restarts, as the metadata above (creating is idempotent)
        wait.until_available("topic creation", lambda: self.clients.create_missing(topics))
        self.progress.waiting_on("webinar-table")
        reader = wait.until_available("the webinars topic", lambda: self.clients.webinar_table(
            self.topics.webinars, self.parts.webinar_decoder, self.table))
        try:
            reader.catch_up()
            self.progress.progressed()
            log.info("webinar_table_loaded webinars=%s", len(self.table))
            self.parts.commits.start()
            with self.collector:
                while not self.stop.is_set():
                    self._run_consumer(reader)
        finally:
            self.parts.commits.close()
            close_within(reader.close, CLOSE_SECONDS, "webinar-table")

    def _consumer(self) -> tuple[TransactionalMember, MemberCallbacks]:
        consumer = self.clients.group_member()
        callbacks = MemberCallbacks(self.parts.rebalance)
        consumer.subscribe([self.topics.activity, self.topics.webinars],
                           on_assign=callbacks.on_assign, on_revoke=callbacks.on_revoke,
                           on_lost=callbacks.on_revoke)
        return consumer, callbacks

    def _run_consumer(self, reader: WebinarTableReader) -> None:
        """One consumer's life: join, restore, loop; on RestartNeeded drop the state and
        leave the next call to rejoin (it restores from the changelogs).

        Either way the consumer leaves the group here, on this thread, before it is closed:
        close() runs on a helper thread (`close_within`) and serves whatever rebalance is still
        pending, and an assignment arriving while a cooperative consumer closes can hang the
        close (librdkafka #4527) inside confluent-kafka's fallback (incremental_)assign, which
        holds the GIL: the whole process stops. And once its loop is over a consumer's
        callbacks no longer reach the worker's state (`MemberCallbacks.retire`): from close()
        they would restore and drop partitions concurrently with the next consumer's."""
        consumer, callbacks = self._consumer()
        commits = self.parts.commits
        try:
            assert commits.producer is not None
            self._loop(consumer, commits.producer, reader)
            commits.await_commit()
            self._restarts = 0
        except RestartNeeded as exc:
            callbacks.retire()  # its state is dropped: nothing to restore, nothing to conclude
            self._restart_after(exc)
        finally:
            self._leave_group(consumer)
            callbacks.retire()
            close_within(consumer.close, CLOSE_SECONDS, "normalizer-consumer")

    def _restart_after(self, exc: RestartNeeded) -> None:
        """Drop the state (the next consumer restores it), pausing if it failed again."""
        self._restarts += 1
        cause = exc.__cause__
        log.warning("normalizer_restarting attempt=%s reason=%s", self._restarts,
                    cause if cause is not None else "transaction-aborted")
        self.parts.commits.in_flight = None
        self.parts.state.clear()
        self.collector.collect_fully()  # whatever the dropped state held
        if self._restarts > 1:  # again at once failed: give the cluster a moment
            self.stop.wait(pause_before(self._restarts))

    def _leave_group(self, consumer: TransactionalMember) -> None:
        """Leave the group now (stopping: the partitions move at once; restarting: no rebalance
        is left for close() to serve). A static member's close() does not leave (KIP-345), but
        an unsubscribe does, once its revocation is served by a poll."""
        try:
            consumer.unsubscribe()
            deadline = time.monotonic() + CLOSE_SECONDS
            while consumer.assignment() and time.monotonic() < deadline:
                consumer.poll(0.1)  # serves the revocation; anything it returns is re-read
            consumer.poll(0.1)
        except (KafkaException, RuntimeError, RestartNeeded) as exc:
            log.warning("group_leave_failed error=%s", exc)

    def _loop(self, consumer: TransactionalMember, producer: TransactionWriter,
              reader: WebinarUpdates) -> None:
        max_records = self.options.max_records_per_transaction
        records, commits = self.parts.records, self.parts.commits
        while not self.stop.is_set():
            messages = consumer.consume(max_records, 0.1)
            self._report_progress(consumer, len(messages))
            if self.metrics.enabled:
                self._report(consumer)
            # a list (confluent-kafka's consume returns one): the record path is compiled for it
            pending = records.transaction(cast("list[Any]", messages), reader.poll(0))
            if not pending.is_empty():
                commits.commit_behind(consumer, producer, pending)
            elif commits.commit_done():
                commits.await_commit()  # idle: conclude now (counters, errors), not at next batch
            elif commits.in_flight is None:
                self.collector.collect_if_due()  # idle: no transaction open, none committing

    # -- reports -----------------------------------------------------------------------------

    def _report_progress(self, consumer: TransactionalMember, consumed: int) -> None:
        """The backlog and what the loop waits on, for the stall rule (at most once a second:
        lag comes from the consumer's cached watermarks, no broker round trip)."""
        now = time.monotonic()
        if now < self._next_progress_report:
            return
        self._next_progress_report = now + 1.0
        committing = self.parts.commits.in_flight is not None
        self.progress.set_backlog(lag=cached_lag(consumer), in_hand=consumed + committing)
        self.progress.waiting_on("transaction-commit" if committing else "kafka-fetch")

    def _report(self, consumer: TransactionalMember) -> None:
        """Lag, open attendances and state size, at most once per lag interval (metrics on)."""
        self.lag.maybe_refresh(consumer)
        now = time.monotonic()
        if now < self._next_state_report:
            return
        self._next_state_report = now + self.telemetry.lag_interval_seconds
        open_attendances = entries = 0
        for normalizer in list(self.parts.state.normalizers.values()):
            entries += len(normalizer.people) + sum(len(h) for h in normalizer.held.values())
            open_attendances += sum(1 for person in list(normalizer.people.values())
                                    if person.open_sessions)
        self.metrics.set_open_attendances(open_attendances)
        self.metrics.set_state_size(entries)

    # -- the parts, as tests and benches reach them ------------------------------------------

    @property
    def table(self) -> WebinarTable:
        return self.parts.state.table

    @property
    def rules(self) -> NormalizeRules:
        return self.parts.rules

    @property
    def normalizers(self) -> dict[int, AttendanceNormalizer]:
        return self.parts.state.normalizers

    @normalizers.setter
    def normalizers(self, normalizers: dict[int, AttendanceNormalizer]) -> None:
        self.parts.state.normalizers = normalizers

    @property
    def producer(self) -> TransactionalProducer | None:
        return self.parts.commits.producer

    @producer.setter
    def producer(self, producer: TransactionalProducer | None) -> None:
        self.parts.commits.producer = producer

    @property
    def producer_factory(self) -> Callable[[], TransactionalProducer]:
        return self.parts.commits.producer_factory

    @producer_factory.setter
    def producer_factory(self, factory: Callable[[], TransactionalProducer]) -> None:
        self.parts.commits.producer_factory = factory

    @property
    def transactions(self) -> BoundedTransactions:
        return self.parts.commits.transactions

    @transactions.setter
    def transactions(self, transactions: BoundedTransactions) -> None:
        self.parts.commits.transactions = transactions
