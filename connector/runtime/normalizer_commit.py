"""The normalizer's transactions: one per loop iteration, exactly once.

A transaction holds the commands, the dead letters, the changelog writes and the input offsets,
so a crash at any point leaves either all of an iteration's effects or none of them. It is
written on the loop's thread and ended (offsets, EndTxn) on a committer thread while the loop
consumes and normalizes the next batch. The commands and dead letters are produced under
``send`` spans whose context goes into their headers, next to ``connector.source``; counters are
added once the transaction commits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from connector.config import TopicSettings
from connector.kafka.clients import KafkaException, TopicPartition
from connector.kafka.protocols import (
    GroupPositions,
    TransactionalClient,
    TransactionalProducer,
    TransactionWriter,
)
from connector.kafka.transaction import (
    BoundedTransactions,
    ProducerUnusable,
    TransactionAborted,
    describe,
)
from connector.normalize.collector import CollectorPolicy
from connector.runtime import changelog
from connector.runtime.normalizer_clients import ClusterWait, NormalizerClients, discard
from connector.runtime.normalizer_state import (
    Changelogs,
    PartitionStates,
    RestartNeeded,
    TransactionWrites,
)
from connector.serde.codec import ValueEncoder
from connector.telemetry import NOOP_RECORD, Telemetry
from connector.telemetry.progress import ProgressWatch

log = logging.getLogger(__name__)


@dataclass
class WrittenTransaction:
    """A transaction whose records are produced: what remains is to end it."""

    producer: TransactionalClient
    pending: TransactionWrites
    changelog_writes: dict[str, int]
    offsets: list[TopicPartition]
    group: Any  # ConsumerGroupMetadata, or None without offsets to commit

    def end(self, transactions: BoundedTransactions) -> None:
        """Commit the input offsets and the transaction (blocks on the broker, GIL released;
        every call bounded: TransactionAborted or ProducerUnusable when it cannot be done)."""
        transactions.end(self.producer, self.offsets, self.group)


class TransactionCommitter:
    """Writes each iteration's `TransactionWrites` as one transaction, and owns the
    transactional producer (replaced when it becomes unusable)."""

    def __init__(self, topics: TopicSettings, changelogs: Changelogs, state: PartitionStates,
                 command_codec: ValueEncoder, clients: NormalizerClients, wait: ClusterWait,
                 transactions: BoundedTransactions, telemetry: Telemetry,
                 progress: ProgressWatch, collector: CollectorPolicy) -> None:
        self.commands_topic = topics.commands
        self.changelogs = changelogs
        self.state = state
        self.command_codec = command_codec
        self.clients = clients
        self.wait = wait
        self.transactions = transactions
        self.metrics = telemetry.metrics
        self.progress = progress
        self.collector = collector
        #: The transactional producer; replaced when it becomes unusable (`replace_producer`).
        self.producer: TransactionalProducer | None = None
        #: Builds and initializes a producer (tests put a stand-in here).
        self.producer_factory: Callable[[], TransactionalProducer] = self.new_producer
        #: The transaction the committer thread is ending (see `commit_behind`).
        self.in_flight: tuple[WrittenTransaction, Future[None]] | None = None
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="normalizer-commit")

    # -- the producer ------------------------------------------------------------------------

    def start(self) -> None:
        self.producer = self.initialized_producer()

    def initialized_producer(self) -> TransactionalProducer:
        """A transactional producer, initialized (which fences any older producer of this
        instance and ends its open transaction)."""
        return self.wait.until_available("init_transactions", self.producer_factory)

    def new_producer(self) -> TransactionalProducer:
        self.progress.waiting_on("producer-init")
        producer = self.clients.producer()
        try:
            self.transactions.init(producer, self.wait.stop.is_set)
        except ProducerUnusable:
            discard(producer)
            raise
        return producer

    def replace_producer(self, reason: str) -> None:
        """Drop the producer (fatal, fenced, or a transaction whose end is unknown) for a new
        one: its init_transactions fences the old one, and the transaction coordinator
        completes or aborts what the old one left open before the new one may begin."""
        log.warning("producer_replacing reason=%s", reason)
        if self.producer is not None:
            discard(self.producer)
        self.producer = None  # a failed start-up below leaves none behind
        self.producer = self.initialized_producer()

    def close(self) -> None:
        """Stop the committer thread and flush the producer (the worker is stopping)."""
        self.in_flight = None  # concluded, or failed with the exception propagating now
        self._committer.shutdown()
        if self.producer is not None:
            self.producer.flush(10)

    # -- committing --------------------------------------------------------------------------

    def commit(self, consumer: GroupPositions, producer: TransactionWriter,
               pending: TransactionWrites) -> None:
        """Write `pending` as one transaction and commit it, now."""
        transaction = self._write_transaction(consumer, producer, pending)
        self._conclude(transaction, lambda: transaction.end(self.transactions))

    def commit_behind(self, consumer: GroupPositions, producer: TransactionWriter,
                      pending: TransactionWrites) -> None:
        """Write `pending` as one transaction and leave its commit to the committer thread.

        Ending a transaction waits on two broker round trips (offsets to the group coordinator,
        then EndTxn once every record is acknowledged): about a tenth of the loop's time under
        load. The committer thread waits for them (in librdkafka, without the GIL) while the
        loop consumes and normalizes the next batch. Nothing of the next batch reaches Kafka
        before this commit is concluded (`await_commit`), so transactions stay one at a time
        and in order; if the commit fails, the state built meanwhile is dropped with the rest
        (`RestartNeeded` rebuilds it from the changelogs).
        """
        self.await_commit()
        self.collector.collect_if_due()  # a full collection's pause, if due, delays no commit
        transaction = self._write_transaction(consumer, producer, pending)
        self.in_flight = (transaction, self._committer.submit(transaction.end,
                                                              self.transactions))
        self.collector.after_transaction()

    def await_commit(self) -> None:
        """Conclude the transaction the committer thread is ending, if any (raises if it
        failed). Called before the next transaction, on every rebalance and when stopping."""
        if self.in_flight is None:
            return
        transaction, future = self.in_flight
        self.in_flight = None
        self._conclude(transaction, future.result)

    def commit_done(self) -> bool:
        """A commit is in flight and its end is known (concluding it will not wait)."""
        return self.in_flight is not None and self.in_flight[1].done()

    def _write_transaction(self, consumer: GroupPositions, producer: TransactionWriter,
                           pending: TransactionWrites) -> WrittenTransaction:
        """Begin a transaction and produce everything `pending` holds, with the changelogs."""
        now_ms = int(time.time() * 1000)
        self.progress.waiting_on("transaction-write")
        try:
            producer.begin_transaction()
            self._produce_commands(producer, pending)
            for topic, letter, rt in pending.dead_letters:
                args = letter.produce_args(topic, now_ms)
                with rt.produce(topic) as send:
                    args["headers"] = send.inject(args["headers"])
                    producer.produce(**args)
            changelog_writes = self._write_changelogs(producer)
            offsets = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
            group = consumer.consumer_group_metadata() if offsets else None
        except KafkaException as exc:
            raise self._transaction_failed(producer, exc) from exc
        return WrittenTransaction(producer, pending, changelog_writes, offsets, group)

    def _transaction_failed(self, producer: TransactionalClient,
                            exc: KafkaException) -> RestartNeeded:
        """A call while writing a transaction failed: abort it where Kafka allows, else replace
        the producer; either way the state goes back to what Kafka holds."""
        reason = describe(exc)
        log.warning("transaction_failed error=%s", reason)
        if exc.args[0].txn_requires_abort():
            self.progress.waiting_on("transaction-abort")
            try:
                self.transactions.abort(producer)
                return RestartNeeded()
            except ProducerUnusable as unusable:
                reason = str(unusable)
        self.replace_producer(reason)
        return RestartNeeded()

    def _conclude(self, transaction: WrittenTransaction, end: Callable[[], None]) -> None:
        """Run (or wait for) the end of `transaction`; count what it wrote once committed."""
        self.progress.waiting_on("transaction-commit")
        try:
            end()
        except TransactionAborted as exc:
            log.warning("transaction_aborted error=%s", exc)
            raise RestartNeeded() from exc
        except ProducerUnusable as exc:
            self.replace_producer(str(exc))
            raise RestartNeeded() from exc
        self.progress.progressed()
        pending = transaction.pending
        if self.metrics.enabled:
            self._count(pending, transaction.changelog_writes)
        if pending.commands or pending.dead_letters:
            log.debug("transaction_committed records=%s commands=%s dead_letters=%s",
                      pending.consumed, len(pending.commands), len(pending.dead_letters))

    def _produce_commands(self, producer: TransactionWriter, pending: TransactionWrites) -> None:
        """Commands with their cause in ``connector.source``; a traced one under a send span
        whose context goes into its headers."""
        topic = self.commands_topic
        produce, encode = producer.produce, self.command_codec.encode
        for command, source, rt in pending.commands:
            headers: list[tuple[str, Any]] = [] if source is None else [
                ("connector.source", f"{source.topic}/{source.partition}/{source.offset}")]
            value = encode(command.to_avro())
            # value and key positional: keyword parsing costs on every call, once per record
            if rt is NOOP_RECORD:
                produce(topic, value, command.key, headers=headers)
                continue
            with rt.produce(topic) as send:
                produce(topic, value, command.key, headers=send.inject(headers))

    def _count(self, pending: TransactionWrites, changelog_writes: dict[str, int]) -> None:
        """What a committed transaction wrote, into the counters."""
        metrics = self.metrics
        if pending.commands:
            metrics.records_out(self.commands_topic, len(pending.commands))
        for topic, letter, _rt in pending.dead_letters:
            metrics.dead_letter(letter.source.topic, letter.reason)
            metrics.records_out(topic)
        for topic, count in changelog_writes.items():
            if count:
                metrics.records_out(topic, count)

    def _write_changelogs(self, producer: TransactionWriter) -> dict[str, int]:
        """Produce the state changes; returns how many records went to each changelog."""
        activity, webinars = self.changelogs.activity, self.changelogs.webinars
        written = {activity: 0, webinars: 0}
        produce = producer.produce
        for partition, normalizer in self.state.normalizers.items():
            count = 0
            for key, value in changelog.records(normalizer.drain_changes()):
                produce(activity, value, key, partition)  # positional, as in _produce_commands
                count += 1
            written[activity] += count
        for partition, projector in self.state.projectors.items():
            for key, value in changelog.records(projector.drain_changes()):
                producer.produce(webinars, key=key, value=value, partition=partition)
                written[webinars] += 1
        return written

