"""The normalizer worker: platform topics in, commands out, exactly once.

One consumer group reads both platform topics. Each loop iteration is one Kafka transaction that
holds the commands, the dead letters, the changelog writes and the input offsets, so a crash at
any point leaves either all of an iteration's effects or none of them.

    consume (rebalance callbacks run here, between transactions)
      -> webinar table updates (every instance reads the whole webinars topic)
      -> activity: decode -> AttendanceNormalizer (per input partition)
      -> webinars: decode -> EventProjector (per input partition)
      -> idle punctuation (stream time follows the wall clock while a partition is quiet)
      -> one transaction: commands + dead letters + changelog + offsets, ended (offsets,
         EndTxn) on a committer thread while the next batch is consumed and normalized

Telemetry (``connector.telemetry``): each consumed record gets a trace (``consume`` span from the
W3C context in its headers, ``decode`` and ``normalize`` children); the commands and dead letters
it causes are produced under ``send`` spans whose context goes into their headers, next to
``connector.source``. Counters are added after the transaction commits; consumer lag, open
attendances and state size are refreshed from the loop at most every ``lag_interval_seconds``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from connector import native
from connector.config import Settings
from connector.dlq import DeadLetter, Stage
from connector.errors import ConnectorError
from connector.kafka import TopicSpec, ensure_topics
from connector.kafka.lifecycle import close_within, is_transient, pause_before, until_available
from connector.kafka.transaction import (
    BoundedTransactions,
    ProducerUnusable,
    TransactionAborted,
    TransactionBounds,
    describe,
)
from connector.normalize.collector import CollectorPolicy
from connector.normalize.command import Command
from connector.normalize.event import EventProjector
from connector.normalize.normalizer import AttendanceNormalizer, NormalizeRules, Output
from connector.normalize.rules import Rejection, TimeWindow
from connector.runtime import changelog
from connector.runtime.table import WebinarTable, WebinarTableReader, WebinarUpdates
from connector.serde import Decoded, DecodeFailure, SourceRecord, TopicCodecs
from connector.telemetry import NOOP_RECORD, RecordTrace, Telemetry
from connector.telemetry.lag import cached_lag
from connector.telemetry.progress import ProgressWatch

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000


#: How long closing a client may take before the worker goes on without it.
_CLOSE_SECONDS = 10.0
#: How long start-up waits for a cluster that does not answer (then KafkaUnavailableError).
_STARTUP_WAIT_SECONDS = 300.0


class _StoppedWhileWaiting(Exception):
    """Asked to stop while waiting for the cluster (start-up, a new producer): just return."""


class _RestartNeeded(Exception):
    """State in memory is ahead of (or no longer matches) Kafka: a transaction was aborted or
    its end is unknown, or a restore failed. Rebuild the unit from the changelogs."""


@dataclass
class _Pending:
    """Everything one transaction will write."""

    #: (command, the record that caused it, that record's trace)
    commands: list[tuple[Command, SourceRecord | None, RecordTrace]] = field(
        default_factory=list)
    #: (dead-letter topic, letter, the record's trace)
    dead_letters: list[tuple[str, DeadLetter, RecordTrace]] = field(default_factory=list)
    consumed: int = 0

    def is_empty(self) -> bool:
        return not (self.commands or self.dead_letters or self.consumed)


@dataclass
class _Transaction:
    """A transaction whose records are produced: what remains is to end it."""

    producer: Producer
    pending: _Pending
    changelog_writes: dict[str, int]
    offsets: list[TopicPartition]
    group: Any  # ConsumerGroupMetadata, or None without offsets to commit

    def end(self, transactions: BoundedTransactions) -> None:
        """Commit the input offsets and the transaction (blocks on the broker, GIL released;
        every call bounded: TransactionAborted or ProducerUnusable when it cannot be done)."""
        transactions.end(self.producer, self.offsets, self.group)


def rules_from(settings: Settings) -> NormalizeRules:
    n = settings.normalizer
    return NormalizeRules(
        rejoin_grace_ms=n.rejoin_grace_seconds * 1000,
        ended_retention_ms=n.ended_retention_hours * HOUR_MS,
        window=TimeWindow(n.max_days_before_start, n.max_days_after_end),
    )


class NormalizerWorker:
    """Runs until `stop` is set; call `run()`."""

    def __init__(self, settings: Settings, stop: threading.Event,
                 telemetry: Telemetry | None = None, *, freeze_state: bool = False,
                 progress: ProgressWatch | None = None):
        self.settings = settings
        self.stop = stop
        self.telemetry = telemetry if telemetry is not None else Telemetry.disabled()
        self.tracing = self.telemetry.tracing
        self.metrics = self.telemetry.metrics
        #: Checked once per batch: without tracing, records skip the per-record trace objects.
        self._traced = self.tracing.enabled
        self.topics = settings.topics
        self.group = settings.normalizer.group_id
        self.client_config = settings.kafka.client_config()
        self.consumer_config = settings.kafka.consumer_config()
        self.producer_config = settings.kafka.producer_config()
        #: Progress for the stall rule (connector.telemetry.progress): /healthz and the gauge.
        self.progress = progress if progress is not None else ProgressWatch(
            "normalizer", settings.telemetry.stall_after_seconds, metrics=self.metrics)
        self._next_progress_report = 0.0
        self.rules = rules_from(settings)
        self.activity_changelog = changelog.changelog_topic(self.group, self.topics.activity)
        self.webinars_changelog = changelog.changelog_topic(self.group, self.topics.webinars)
        self.normalizers: dict[int, AttendanceNormalizer] = {}
        self.projectors: dict[int, EventProjector] = {}
        self.table = WebinarTable()
        self._quiet_since: dict[int, float] = {}
        self._restored_output = Output()
        self.lag = self.telemetry.lag_monitor(self.group)
        self._next_state_report = 0.0
        #: The transaction the committer thread is ending (see `_commit_behind`).
        self._in_flight: tuple[_Transaction, Future[None]] | None = None
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="normalizer-commit")
        self.transactions = BoundedTransactions(TransactionBounds(
            give_up_seconds=max(settings.normalizer.transaction_timeout_ms / 1000, 10.0)))
        #: The transactional producer; replaced when it becomes unusable (`_replace_producer`).
        self.producer: Producer | None = None
        #: Builds and initializes a producer (tests put a stand-in here).
        self.producer_factory: Callable[[], Producer] = self._new_producer
        self._restarts = 0
        #: Freezes the state after each transaction when the process runs nothing else (see
        #: connector.normalize.collector).
        self.collector = CollectorPolicy(freeze=freeze_state)
        self._build_codecs()

    # -- set-up ------------------------------------------------------------------------------

    def _build_codecs(self) -> None:
        codecs = TopicCodecs.from_settings(self.settings)
        self.activity_decoder = codecs.decoder(self.topics.activity)
        self.webinar_decoder = codecs.decoder(self.topics.webinars)
        self.command_codec = codecs.codec(self.topics.commands)

    def _ensure_topics(self) -> None:
        metadata = self._until_available("topic metadata", self._list_topics)
        partitions = {name: len(t.partitions) for name, t in metadata.topics.items()}
        for source in (self.topics.activity, self.topics.webinars):
            if source not in partitions:
                raise ConnectorError(f"input topic {source} does not exist (check "
                                     "CONNECTOR_TOPICS__* and that the platform publishes)")
        count = self.settings.normalizer.partitions or partitions[self.topics.activity]
        compact = {"cleanup.policy": "compact"}
        ensure_topics(self.client_config, [
            TopicSpec(self.topics.commands, count),
            TopicSpec(self.topics.dlq_for(self.topics.activity), count),
            TopicSpec(self.topics.dlq_for(self.topics.webinars), count),
            TopicSpec(self.activity_changelog, partitions[self.topics.activity], config=compact),
            TopicSpec(self.webinars_changelog, partitions[self.topics.webinars], config=compact),
        ])

    def _list_topics(self) -> Any:
        consumer = Consumer({**self.consumer_config, "group.id": self.group})
        try:
            return consumer.list_topics(timeout=10)
        finally:
            close_within(consumer.close, _CLOSE_SECONDS, "normalizer-metadata")

    def _until_available(self, what: str, call: Callable[[], Any]) -> Any:
        """``call()`` at start-up, asked again while the cluster does not answer (a broker
        being restarted; a producer whose init kept timing out), up to 5 minutes."""
        result = until_available(
            lambda _seconds_left: call(), what=what,
            servers=self.settings.kafka.bootstrap_servers,
            give_up_seconds=_STARTUP_WAIT_SECONDS, stop=self.stop,
            retry_on=lambda exc: isinstance(exc, ProducerUnusable) or is_transient(exc))
        if result is None:
            raise _StoppedWhileWaiting()
        return result

    def _producer(self) -> Producer:
        """A transactional producer, initialized (which fences any older producer of this
        instance and ends its open transaction)."""
        return self._until_available("init_transactions", self.producer_factory)

    def _new_producer(self) -> Producer:
        n = self.settings.normalizer
        self.progress.waiting_on("producer-init")
        producer = Producer({
            **self.producer_config,
            "transactional.id": f"{self.group}-{n.instance_id}",
            "transaction.timeout.ms": n.transaction_timeout_ms,
            "enable.idempotence": True,
            "linger.ms": 5,
            # No delivery callbacks are used (commit_transaction fails if a send failed): without
            # this every message's delivery report is still queued and served on the main thread.
            "delivery.report.only.error": True,
        })
        try:
            self.transactions.init(producer, self.stop.is_set)
        except ProducerUnusable:
            _discard(producer)
            raise
        return producer

    def _replace_producer(self, reason: str) -> None:
        """Drop the producer (fatal, fenced, or a transaction whose end is unknown) for a new
        one: its init_transactions fences the old one, and the transaction coordinator
        completes or aborts what the old one left open before the new one may begin."""
        log.warning("producer_replacing reason=%s", reason)
        if self.producer is not None:
            _discard(self.producer)
        self.producer = None  # a failed start-up below leaves none behind
        self.producer = self._producer()

    def _consumer(self) -> Consumer:
        consumer = Consumer({
            **self.consumer_config,
            "group.id": self.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "partition.assignment.strategy": "cooperative-sticky",
            # Static membership: a replaced instance (same instance id) takes its partitions
            # back at once instead of after the dead member's session timeout.
            "group.instance.id": f"{self.group}-{self.settings.normalizer.instance_id}",
        })
        consumer.subscribe([self.topics.activity, self.topics.webinars],
                           on_assign=self._on_assign, on_revoke=self._on_revoke,
                           on_lost=self._on_revoke)
        return consumer

    # -- rebalancing (called inside consume(), between transactions) -------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._await_commit()  # a restore reads changelogs our last transaction may write to
        changelogs = {self.topics.activity: self.activity_changelog,
                      self.topics.webinars: self.webinars_changelog}
        started = time.monotonic()
        self.progress.waiting_on("state-restore")
        try:
            marks = changelog.high_watermarks(self.consumer_config, [
                TopicPartition(changelogs[tp.topic], tp.partition) for tp in partitions
                if tp.topic in changelogs])
            normalizers = {tp.partition: AttendanceNormalizer(self.table.get, self.rules)
                           for tp in partitions if tp.topic == self.topics.activity}
            projectors = {tp.partition: EventProjector() for tp in partitions
                          if tp.topic == self.topics.webinars}
            entries = dict.fromkeys(normalizers, 0)
            for topic, partition, key, value in changelog.read_partitions(
                    self.consumer_config, marks):
                if topic == self.activity_changelog:
                    normalizers[partition].restore(key, value)
                    entries[partition] += 1
                else:
                    projectors[partition].restore(key, value)
        except (KafkaException, ConnectorError) as exc:
            # A broker away mid-restore: nothing of these partitions is in use yet.
            log.warning("state_restore_failed partitions=%s error=%s", _names(partitions), exc)
            raise _RestartNeeded() from exc
        self.projectors.update(projectors)
        for partition, normalizer in normalizers.items():
            self._restored(partition, normalizer, entries[partition])
        self.progress.progressed()
        log.info("partitions_assigned partitions=%s restore_seconds=%.2f", _names(partitions),
                 time.monotonic() - started)

    def _restored(self, partition: int, normalizer: AttendanceNormalizer, entries: int) -> None:
        """Take a restored partition's state into use."""
        self._restored_output.extend(normalizer.after_restore())
        self.normalizers[partition] = normalizer
        self._quiet_since[partition] = time.monotonic()
        for webinar_id in [w for w in normalizer.held if self.table.get(w) is not None]:
            self._restored_output.extend(normalizer.on_webinar(webinar_id))
        log.info("state_restored partition=%s entries=%s people=%s held_webinars=%s",
                 partition, entries, len(normalizer.people), len(normalizer.held))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._await_commit()  # the next owner must find our last transaction committed
        for tp in partitions:
            if tp.topic == self.topics.activity:
                self.normalizers.pop(tp.partition, None)
                self._quiet_since.pop(tp.partition, None)
            elif tp.topic == self.topics.webinars:
                self.projectors.pop(tp.partition, None)
        log.info("partitions_revoked partitions=%s", _names(partitions))

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        """Process until stopped; restarts itself from the changelogs after an aborted txn."""
        log.info("normalizer_starting %s", native.status().describe())
        try:
            self._start_and_run()
        except _StoppedWhileWaiting:
            log.info("normalizer_stopped_while_waiting_for_kafka")

    def _start_and_run(self) -> None:
        self._ensure_topics()
        self.progress.waiting_on("webinar-table")
        reader = self._until_available("the webinars topic", lambda: WebinarTableReader(
            self.consumer_config, self.topics.webinars, self.webinar_decoder, self.table))
        try:
            reader.catch_up()
            self.progress.progressed()
            log.info("webinar_table_loaded webinars=%s", len(self.table))
            self.producer = self._producer()
            with self.collector:
                while not self.stop.is_set():
                    self._run_consumer(reader)
        finally:
            self._in_flight = None  # concluded, or failed with the exception propagating now
            self._committer.shutdown()
            close_within(reader.close, _CLOSE_SECONDS, "webinar-table")
            if self.producer is not None:
                self.producer.flush(10)

    def _run_consumer(self, reader: WebinarTableReader) -> None:
        """One consumer's life: join, restore, loop; on _RestartNeeded drop the state and
        leave the next call to rejoin (static membership gets the same partitions back)."""
        consumer = self._consumer()
        try:
            assert self.producer is not None
            self._loop(consumer, self.producer, reader)
            self._await_commit()
            self._restarts = 0
        except _RestartNeeded as exc:
            self._restarts += 1
            cause = exc.__cause__
            log.warning("normalizer_restarting attempt=%s reason=%s", self._restarts,
                        cause if cause is not None else "transaction-aborted")
            self._in_flight = None
            self.normalizers.clear()
            self.projectors.clear()
            self._restored_output = Output()
            self.collector.collect_fully()  # whatever the dropped state held
            if self._restarts > 1:  # again at once failed: give the cluster a moment
                self.stop.wait(pause_before(self._restarts))
        finally:
            if self.stop.is_set():
                self._leave_group(consumer)
            close_within(consumer.close, _CLOSE_SECONDS, "normalizer-consumer")

    def _leave_group(self, consumer: Consumer) -> None:
        """Stopping: leave the group now, so the partitions move at once. A static member's
        close() does not leave (KIP-345: a restart takes its partitions back), but an
        unsubscribe does, once its revocation is served by a poll."""
        try:
            consumer.unsubscribe()
            deadline = time.monotonic() + _CLOSE_SECONDS
            while consumer.assignment() and time.monotonic() < deadline:
                consumer.poll(0.1)  # serves the revocation; anything it returns is re-read
            consumer.poll(0.1)
        except (KafkaException, RuntimeError, _RestartNeeded) as exc:
            log.warning("group_leave_failed error=%s", exc)

    def _loop(self, consumer: Consumer, producer: Producer, reader: WebinarUpdates) -> None:
        max_records = self.settings.normalizer.max_records_per_transaction
        while not self.stop.is_set():
            messages = consumer.consume(max_records, 0.1)
            self._report_progress(consumer, len(messages))
            if self.metrics.enabled:
                self._report(consumer)
            pending = _Pending()
            restored, self._restored_output = self._restored_output, Output()
            self._collect(pending, restored, None)
            for webinar_id in reader.poll(0):
                for normalizer in self.normalizers.values():
                    self._collect(pending, normalizer.on_webinar(webinar_id), None)
            self._handle_batch(messages, pending)
            self._punctuate(pending)
            if not pending.is_empty():
                self._commit_behind(consumer, producer, pending)
            elif self._in_flight is not None and self._in_flight[1].done():
                self._await_commit()  # idle: conclude now (counters, errors), not at next batch
            elif self._in_flight is None:
                self.collector.collect_if_due()  # idle: no transaction open, none committing

    def _report_progress(self, consumer: Consumer, consumed: int) -> None:
        """The backlog and what the loop waits on, for the stall rule (at most once a second:
        lag comes from the consumer's cached watermarks, no broker round trip)."""
        now = time.monotonic()
        if now < self._next_progress_report:
            return
        self._next_progress_report = now + 1.0
        committing = self._in_flight is not None
        self.progress.set_backlog(lag=cached_lag(consumer), in_hand=consumed + committing)
        self.progress.waiting_on("transaction-commit" if committing else "kafka-fetch")

    def _report(self, consumer: Consumer) -> None:
        """Lag, open attendances and state size, at most once per lag interval (metrics on)."""
        self.lag.maybe_refresh(consumer)
        now = time.monotonic()
        if now < self._next_state_report:
            return
        self._next_state_report = now + self.telemetry.lag_interval_seconds
        open_attendances = entries = 0
        for normalizer in list(self.normalizers.values()):
            entries += len(normalizer.people) + sum(len(h) for h in normalizer.held.values())
            open_attendances += sum(1 for person in list(normalizer.people.values())
                                    if person.open_sessions)
        self.metrics.set_open_attendances(open_attendances)
        self.metrics.set_state_size(entries)

    def _handle_batch(self, messages: list[Any], pending: _Pending) -> None:
        """Every consumed record. One with a trace (sampled, or carrying a context to forward)
        goes through `_handle_traced`; every other takes the path without any per-record
        telemetry object, traces on or off. Counters are added once a batch."""
        activity = self.topics.activity
        decode_activity = self.activity_decoder.decode_value
        normalizers = self.normalizers
        from_message = SourceRecord.from_message
        commands = pending.commands
        counts: dict[str, int] = {}
        quiet: set[int] = set()
        out = Output()  # reused: emptied after each record that produced something
        # Root sampling is drawn once a batch: only records with headers or picked reach tracing.
        roots: Iterator[int] = iter(())
        next_root = -1
        if self._traced:
            roots = self.tracing.root_picks(len(messages))
            next_root = next(roots, -1)
        for index, message in enumerate(messages):
            if message.error() is not None:
                log.warning("consume_error error=%s", message.error())
                if index == next_root:
                    next_root = next(roots, -1)
                continue
            record = from_message(message)
            topic = record.topic
            counts[topic] = counts.get(topic, 0) + 1
            if topic == activity:
                quiet.add(record.partition)
            if self._traced and (record.headers or index == next_root):
                root = index == next_root
                if root:
                    next_root = next(roots, -1)
                rt = self.tracing.consume(record, root)
                if rt is not NOOP_RECORD:
                    self._handle_traced(record, rt, pending)
                    continue
            if topic != activity:
                self._handle_webinar(record, pending, NOOP_RECORD)
                continue
            datum = decode_activity(record)
            if isinstance(datum, DecodeFailure):
                self._dead_letter(pending, datum)
                continue
            normalizer = normalizers.get(record.partition)
            if normalizer is not None:
                normalizer.on_activity(datum, record, out)
                if out.rejections:
                    self._collect(pending, out, record)
                    out = Output()
                elif out.commands:
                    commands += [(c, record, NOOP_RECORD) for c in out.commands]
                    out.commands.clear()
        now = time.monotonic()
        for partition in quiet:
            self._quiet_since[partition] = now
        for topic, count in counts.items():
            pending.consumed += count
            self.metrics.records_in(topic, count)

    def _handle_traced(self, record: SourceRecord, rt: RecordTrace, pending: _Pending) -> None:
        """One record with its trace: consume, decode and normalize spans."""
        with rt:
            if record.topic == self.topics.activity:
                with rt.decode():
                    result = self.activity_decoder.decode(record)
                normalizer = self.normalizers.get(record.partition)
                if isinstance(result, DecodeFailure):
                    self._dead_letter(pending, result, rt)
                elif normalizer is not None:
                    with rt.normalize():
                        out = normalizer.on_activity(result.value, record)
                    self._collect(pending, out, record, rt)
            else:
                self._handle_webinar(record, pending, rt)

    def _handle_webinar(self, record: SourceRecord, pending: _Pending, rt: RecordTrace) -> None:
        with rt.decode():
            result = self.webinar_decoder.decode(record)
        projector = self.projectors.get(record.partition)
        if isinstance(result, DecodeFailure):
            self._dead_letter(pending, result, rt)
        elif projector is not None and isinstance(result, Decoded):
            # The table itself is fed by the reader alone, so it notifies every normalizer.
            with rt.normalize():
                commands = projector.on_webinar(result.value)
            pending.commands += [(c, record, rt) for c in commands]

    def _punctuate(self, pending: _Pending) -> None:
        """While a partition is quiet, its stream time follows the wall clock."""
        idle = self.settings.normalizer.idle_punctuation_seconds
        now = time.monotonic()
        for partition, normalizer in self.normalizers.items():
            quiet_since = self._quiet_since.get(partition, now)
            if now - quiet_since >= idle:
                step = int((now - quiet_since) * 1000)
                self._quiet_since[partition] = now
                self._collect(pending, normalizer.advance(normalizer.stream_time + step), None)

    def _collect(self, pending: _Pending, out: Output, source: SourceRecord | None,
                 rt: RecordTrace = NOOP_RECORD) -> None:
        if out.commands:
            pending.commands += [(c, source, rt) for c in out.commands]
        for rejection in out.rejections:
            # Rejections found while handling this record (e.g. expired state) are about it.
            self._dead_letter(pending, rejection, rt if rejection.source is source else NOOP_RECORD)

    def _dead_letter(self, pending: _Pending, failure: DecodeFailure | Rejection,
                     rt: RecordTrace = NOOP_RECORD) -> None:
        if isinstance(failure, DecodeFailure):
            letter = DeadLetter(failure.source, Stage.DECODE, failure.reason.value,
                                failure.detail, "connector.serde.TopicDecoder",
                                failure.exception_class)
        else:
            letter = DeadLetter(failure.source, Stage.NORMALIZE, failure.reason, failure.detail,
                                "connector.normalize.AttendanceNormalizer")
        log.info("dead_letter topic=%s partition=%s offset=%s reason=%s",
                 failure.source.topic, failure.source.partition, failure.source.offset,
                 letter.reason)
        rt.dead_letter(letter.reason)
        pending.dead_letters.append((self.topics.dlq_for(failure.source.topic), letter, rt))

    def _commit(self, consumer: Consumer, producer: Producer, pending: _Pending) -> None:
        """Write `pending` as one transaction and commit it, now."""
        transaction = self._write_transaction(consumer, producer, pending)
        self._conclude(transaction, lambda: transaction.end(self.transactions))

    def _commit_behind(self, consumer: Consumer, producer: Producer, pending: _Pending) -> None:
        """Write `pending` as one transaction and leave its commit to the committer thread.

        Ending a transaction waits on two broker round trips (offsets to the group coordinator,
        then EndTxn once every record is acknowledged): about a tenth of the loop's time under
        load. The committer thread waits for them (in librdkafka, without the GIL) while this
        thread consumes and normalizes the next batch. Nothing of the next batch reaches Kafka
        before this commit is concluded (`_await_commit`), so transactions stay one at a time
        and in order; if the commit fails, the state built meanwhile is dropped with the rest
        (`_RestartNeeded` rebuilds it from the changelogs).
        """
        self._await_commit()
        self.collector.collect_if_due()  # a full collection's pause, if due, delays no commit
        transaction = self._write_transaction(consumer, producer, pending)
        self._in_flight = (transaction, self._committer.submit(transaction.end,
                                                               self.transactions))
        self.collector.after_transaction()

    def _await_commit(self) -> None:
        """Conclude the transaction the committer thread is ending, if any (raises if it
        failed). Called before the next transaction, on every rebalance and when stopping."""
        if self._in_flight is None:
            return
        transaction, future = self._in_flight
        self._in_flight = None
        self._conclude(transaction, future.result)

    def _write_transaction(self, consumer: Consumer, producer: Producer,
                           pending: _Pending) -> _Transaction:
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
        return _Transaction(producer, pending, changelog_writes, offsets, group)

    def _transaction_failed(self, producer: Producer, exc: KafkaException) -> _RestartNeeded:
        """A call while writing a transaction failed: abort it where Kafka allows, else replace
        the producer; either way the state goes back to what Kafka holds."""
        reason = describe(exc)
        log.warning("transaction_failed error=%s", reason)
        if exc.args[0].txn_requires_abort():
            self.progress.waiting_on("transaction-abort")
            try:
                self.transactions.abort(producer)
                return _RestartNeeded()
            except ProducerUnusable as unusable:
                reason = str(unusable)
        self._replace_producer(reason)
        return _RestartNeeded()

    def _conclude(self, transaction: _Transaction, end: Callable[[], None]) -> None:
        """Run (or wait for) the end of `transaction`; count what it wrote once committed."""
        self.progress.waiting_on("transaction-commit")
        try:
            end()
        except TransactionAborted as exc:
            log.warning("transaction_aborted error=%s", exc)
            raise _RestartNeeded() from exc
        except ProducerUnusable as exc:
            self._replace_producer(str(exc))
            raise _RestartNeeded() from exc
        self.progress.progressed()
        pending = transaction.pending
        if self.metrics.enabled:
            self._count(pending, transaction.changelog_writes)
        if pending.commands or pending.dead_letters:
            log.debug("transaction_committed records=%s commands=%s dead_letters=%s",
                      pending.consumed, len(pending.commands), len(pending.dead_letters))

    def _produce_commands(self, producer: Producer, pending: _Pending) -> None:
        """Commands with their cause in ``connector.source``; a traced one under a send span
        whose context goes into its headers."""
        topic = self.topics.commands
        produce, encode = producer.produce, self.command_codec.encode
        for command, source, rt in pending.commands:
            headers: list[tuple[str, Any]] = [] if source is None else [
                ("connector.source", f"{source.topic}/{source.partition}/{source.offset}")]
            value = encode(command.to_avro())
            # value and key positional: keyword parsing costs ~0.1 us a call, once per record
            if rt is NOOP_RECORD:
                produce(topic, value, command.key, headers=headers)
                continue
            with rt.produce(topic) as send:
                produce(topic, value, command.key, headers=send.inject(headers))

    def _count(self, pending: _Pending, changelog_writes: dict[str, int]) -> None:
        """What a committed transaction wrote, into the counters."""
        metrics = self.metrics
        if pending.commands:
            metrics.records_out(self.topics.commands, len(pending.commands))
        for topic, letter, _rt in pending.dead_letters:
            metrics.dead_letter(letter.source.topic, letter.reason)
            metrics.records_out(topic)
        for topic, count in changelog_writes.items():
            if count:
                metrics.records_out(topic, count)

    def _write_changelogs(self, producer: Producer) -> dict[str, int]:
        """Produce the state changes; returns how many records went to each changelog."""
        written = {self.activity_changelog: 0, self.webinars_changelog: 0}
        produce, topic = producer.produce, self.activity_changelog
        for partition, normalizer in self.normalizers.items():
            count = 0
            for key, value in changelog.records(normalizer.drain_changes()):
                produce(topic, value, key, partition)  # positional, as in _produce_commands
                count += 1
            written[topic] += count
        for partition, projector in self.projectors.items():
            for key, value in changelog.records(projector.drain_changes()):
                producer.produce(self.webinars_changelog, key=key, value=value,
                                 partition=partition)
                written[self.webinars_changelog] += 1
        return written


def _discard(producer: Producer) -> None:
    """Drop a producer that is no longer used: what it still holds is not wanted (it belongs
    to a transaction that is aborted, or completed by the coordinator)."""
    try:
        producer.purge()
    except (KafkaException, RuntimeError, NotImplementedError) as exc:
        log.debug("producer_purge_failed error=%s", exc)


def _names(partitions: list[TopicPartition]) -> str:
    return ",".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)


def run_normalizer(settings: Settings, stop: threading.Event,
                   telemetry: Telemetry | None = None, *, freeze_state: bool = False,
                   progress: ProgressWatch | None = None) -> None:
    """Entry point for `connector run normalizer`.

    ``telemetry``: the process's (the CLI builds one); None builds one from
    ``settings.telemetry`` for this worker alone and shuts it down on return. ``freeze_state``:
    the process runs the normalizer alone, so its state may be frozen after each transaction
    (``connector.normalize.collector``).
    """
    if telemetry is not None:
        NormalizerWorker(settings, stop, telemetry, freeze_state=freeze_state,
                         progress=progress).run()
        return
    with Telemetry.from_settings(settings.telemetry) as owned:
        NormalizerWorker(settings, stop, owned, freeze_state=freeze_state,
                         progress=progress).run()
