"""The normalizer's per-partition processing: consumed records in, what a transaction writes out.

Activity records go through their partition's AttendanceNormalizer, webinars records through
their partition's EventProjector; what cannot be decoded or normalized becomes a dead letter.
Telemetry: each consumed record may get a trace (``consume`` span from the W3C context in its
headers, ``decode`` and ``normalize`` children), carried with the commands and dead letters it
causes to the committer; counters of records in are added once a batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from connector.config import TopicSettings
from connector.dlq import DeadLetter, Stage
from connector.normalize.normalizer import Output
from connector.normalize.rules import Rejection
from connector.runtime.normalizer_state import PartitionStates, TransactionWrites
from connector.serde.record import Decoded, DecodeFailure, SourceRecord
from connector.serde.topic import TopicDecoder
from connector.telemetry import NOOP_RECORD, RecordTrace, Telemetry

log = logging.getLogger(__name__)


class RecordHandler:
    """Turns consumed records into a `TransactionWrites`, using the partitions' state."""

    def __init__(self, topics: TopicSettings, state: PartitionStates, activity: TopicDecoder,
                 webinars: TopicDecoder, telemetry: Telemetry,
                 idle_punctuation_seconds: float) -> None:
        self.topics = topics
        self.state = state
        self.activity_decoder = activity
        self.webinar_decoder = webinars
        self.tracing = telemetry.tracing
        self.metrics = telemetry.metrics
        #: Checked once per batch: without tracing, records skip the per-record trace objects.
        self._traced = self.tracing.enabled
        self.idle_punctuation_seconds = idle_punctuation_seconds

    def transaction(self, messages: list[Any], changed_webinars: list[str]) -> TransactionWrites:
        """What one loop iteration writes: what restored partitions and webinar changes
        released, the batch's records, and what became due while partitions were quiet."""
        pending = TransactionWrites()
        self._collect(pending, self.state.take_restored(), None)
        for webinar_id in changed_webinars:
            for normalizer in self.state.normalizers.values():
                self._collect(pending, normalizer.on_webinar(webinar_id), None)
        self.handle_batch(messages, pending)
        self._punctuate(pending)
        return pending

    def handle_batch(self, messages: list[Any], pending: TransactionWrites) -> None:
        """Every consumed record. One with a trace (sampled, or carrying a context to forward)
        goes through `_handle_traced`; every other takes the path without any per-record
        telemetry object, traces on or off. Counters are added once a batch."""
        activity = self.topics.activity
        decode_activity = self.activity_decoder.decode_value
        normalizers = self.state.normalizers
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
            self.state.quiet_since[partition] = now
        for topic, count in counts.items():
            pending.consumed += count
            self.metrics.records_in(topic, count)

    def _handle_traced(self, record: SourceRecord, rt: RecordTrace,
                       pending: TransactionWrites) -> None:
        """One record with its trace: consume, decode and normalize spans."""
        with rt:
            if record.topic == self.topics.activity:
                with rt.decode():
                    result = self.activity_decoder.decode(record)
                normalizer = self.state.normalizers.get(record.partition)
                if isinstance(result, DecodeFailure):
                    self._dead_letter(pending, result, rt)
                elif normalizer is not None:
                    with rt.normalize():
                        out = normalizer.on_activity(result.value, record)
                    self._collect(pending, out, record, rt)
            else:
                self._handle_webinar(record, pending, rt)

    def _handle_webinar(self, record: SourceRecord, pending: TransactionWrites,
                        rt: RecordTrace) -> None:
        with rt.decode():
            result = self.webinar_decoder.decode(record)
        projector = self.state.projectors.get(record.partition)
        if isinstance(result, DecodeFailure):
            self._dead_letter(pending, result, rt)
        elif projector is not None and isinstance(result, Decoded):
            # The table itself is fed by the reader alone, so it notifies every normalizer.
            with rt.normalize():
                commands = projector.on_webinar(result.value)
            pending.commands += [(c, record, rt) for c in commands]

    def _punctuate(self, pending: TransactionWrites) -> None:
        """While a partition is quiet, its stream time follows the wall clock."""
        idle = self.idle_punctuation_seconds
        quiet_since = self.state.quiet_since
        now = time.monotonic()
        for partition, normalizer in self.state.normalizers.items():
            since = quiet_since.get(partition, now)
            if now - since >= idle:
                step = int((now - since) * 1000)
                quiet_since[partition] = now
                self._collect(pending, normalizer.advance(normalizer.stream_time + step), None)

    def _collect(self, pending: TransactionWrites, out: Output, source: SourceRecord | None,
                 rt: RecordTrace = NOOP_RECORD) -> None:
        if out.commands:
            pending.commands += [(c, source, rt) for c in out.commands]
        for rejection in out.rejections:
            # Rejections found while handling this record (e.g. expired state) are about it.
            self._dead_letter(pending, rejection, rt if rejection.source is source else NOOP_RECORD)

    def _dead_letter(self, pending: TransactionWrites, failure: DecodeFailure | Rejection,
                     rt: RecordTrace = NOOP_RECORD) -> None:
        if isinstance(failure, DecodeFailure):
            letter = DeadLetter(failure.source, Stage.DECODE, failure.reason.value,
                                failure.detail, "connector.serde.TopicDecoder",
                                failure.exception_class)
        else:
            letter = DeadLetter(failure.source, Stage.NORMALIZE, failure.reason.value,
                                failure.detail, "connector.normalize.AttendanceNormalizer")
        log.info("dead_letter topic=%s partition=%s offset=%s reason=%s",
                 failure.source.topic, failure.source.partition, failure.source.offset,
                 letter.reason)
        rt.dead_letter(letter.reason)
        pending.dead_letters.append((self.topics.dlq_for(failure.source.topic), letter, rt))
