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

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from connector import native
from connector.config import Settings
from connector.dlq import DeadLetter, Stage
from connector.errors import ConnectorError
from connector.kafka import TopicSpec, ensure_topics
from connector.normalize import changelog
from connector.normalize.collector import CollectorPolicy
from connector.normalize.command import Command
from connector.normalize.event import EventProjector
from connector.normalize.normalizer import AttendanceNormalizer, NormalizeRules, Output
from connector.normalize.rules import Rejection, TimeWindow
from connector.normalize.table import WebinarTable, WebinarTableReader, WebinarUpdates
from connector.serde import Decoded, DecodeFailure, SourceRecord, TopicCodecs
from connector.telemetry import NOOP_RECORD, RecordTrace, Telemetry

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000


class NormalizerFailure(ConnectorError):
    """The normalizer cannot go on (Kafka refused a transaction for good, or fenced us)."""


class _RestartNeeded(Exception):
    """A transaction was aborted: state in memory is ahead of Kafka; rebuild from changelogs."""


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

    def end(self) -> None:
        """Commit the input offsets and the transaction (blocks on the broker, GIL released)."""
        if self.offsets:
            self.producer.send_offsets_to_transaction(self.offsets, self.group)
        self.producer.commit_transaction()


def _transaction_failed(producer: Producer, exc: KafkaException) -> Exception:
    """What to raise for a failed transaction: restart from the changelogs, or give up."""
    error: KafkaError = exc.args[0]
    if error.txn_requires_abort():
        producer.abort_transaction()
        return _RestartNeeded()
    if error.retriable():
        return _RestartNeeded()
    return NormalizerFailure(f"Kafka transaction failed: {error.str()} (fatal={error.fatal()})")


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
                 telemetry: Telemetry | None = None, *, freeze_state: bool = False):
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
        metadata = Consumer({**self.client_config, "group.id": self.group}).list_topics(
            timeout=30)
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

    def _producer(self) -> Producer:
        n = self.settings.normalizer
        producer = Producer({
            **self.client_config,
            "transactional.id": f"{self.group}-{n.instance_id}",
            "transaction.timeout.ms": n.transaction_timeout_ms,
            "enable.idempotence": True,
            "linger.ms": 5,
            # No delivery callbacks are used (commit_transaction fails if a send failed): without
            # this every message's delivery report is still queued and served on the main thread.
            "delivery.report.only.error": True,
        })
        producer.init_transactions(60)
        return producer

    def _consumer(self) -> Consumer:
        consumer = Consumer({
            **self.client_config,
            "group.id": self.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "partition.assignment.strategy": "cooperative-sticky",
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
        marks = changelog.high_watermarks(self.client_config, [
            TopicPartition(changelogs[tp.topic], tp.partition) for tp in partitions
            if tp.topic in changelogs])
        for tp in partitions:
            if tp.topic == self.topics.activity:
                self._restore_activity(tp.partition,
                                       marks[(self.activity_changelog, tp.partition)])
            elif tp.topic == self.topics.webinars:
                projector = EventProjector()
                for key, value in changelog.read_partition(
                        self.client_config, self.webinars_changelog, tp.partition,
                        watermarks=marks[(self.webinars_changelog, tp.partition)]):
                    projector.restore(key, value)
                self.projectors[tp.partition] = projector
        log.info("partitions_assigned partitions=%s", _names(partitions))

    def _restore_activity(self, partition: int, watermarks: tuple[int, int]) -> None:
        normalizer = AttendanceNormalizer(self.table.get, self.rules)
        entries = 0
        for key, value in changelog.read_partition(self.client_config, self.activity_changelog,
                                                   partition, watermarks=watermarks):
            normalizer.restore(key, value)
            entries += 1
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
        self._ensure_topics()
        reader = WebinarTableReader(self.client_config, self.topics.webinars,
                                    self.webinar_decoder, self.table)
        reader.catch_up()
        log.info("webinar_table_loaded webinars=%s", len(self.table))
        producer = self._producer()
        try:
            with self.collector:
                while not self.stop.is_set():
                    consumer = self._consumer()
                    try:
                        self._loop(consumer, producer, reader)
                        self._await_commit()
                    except _RestartNeeded:
                        log.warning("normalizer_restarting reason=transaction-aborted")
                        self.normalizers.clear()
                        self.projectors.clear()
                        self.collector.collect_fully()  # whatever the dropped state held
                    finally:
                        consumer.close()
        finally:
            self._in_flight = None  # concluded, or failed with the exception propagating now
            self._committer.shutdown()
            reader.close()
            producer.flush(10)

    def _loop(self, consumer: Consumer, producer: Producer, reader: WebinarUpdates) -> None:
        max_records = self.settings.normalizer.max_records_per_transaction
        while not self.stop.is_set():
            messages = consumer.consume(max_records, 0.1)
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
        self._conclude(transaction, transaction.end)

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
        self._in_flight = (transaction, self._committer.submit(transaction.end))
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
            raise _transaction_failed(producer, exc) from exc
        return _Transaction(producer, pending, changelog_writes, offsets, group)

    def _conclude(self, transaction: _Transaction, end: Callable[[], None]) -> None:
        """Run (or wait for) the end of `transaction`; count what it wrote once committed."""
        try:
            end()
        except KafkaException as exc:
            raise _transaction_failed(transaction.producer, exc) from exc
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


def _names(partitions: list[TopicPartition]) -> str:
    return ",".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)


def run_normalizer(settings: Settings, stop: threading.Event,
                   telemetry: Telemetry | None = None, *, freeze_state: bool = False) -> None:
    """Entry point for `connector run normalizer`.

    ``telemetry``: the process's (the CLI builds one); None builds one from
    ``settings.telemetry`` for this worker alone and shuts it down on return. ``freeze_state``:
    the process runs the normalizer alone, so its state may be frozen after each transaction
    (``connector.normalize.collector``).
    """
    if telemetry is not None:
        NormalizerWorker(settings, stop, telemetry, freeze_state=freeze_state).run()
        return
    with Telemetry.from_settings(settings.telemetry) as owned:
        NormalizerWorker(settings, stop, owned, freeze_state=freeze_state).run()
