"""Kafka access for `connector dlq`: find dead-letter topics, read them, keep redrive progress.

Thin on purpose: the decisions (filters, grouping, headers, progress) are pure functions in the
other modules of connector.dlq, the Kafka calls are `connector.kafka`'s. Kafka's exceptions are
translated here, once.
"""

from __future__ import annotations

from connector.config import Settings
from connector.dlq.errors import DeadLetterError, UnknownDeadLetterTopicError
from connector.dlq.progress import PartitionProgress, RedriveProgress, redrive_group
from connector.dlq.record import DeadLetterRecord
from connector.kafka.admin import cluster_metadata, partition_counts, quiet_admin
from connector.kafka.clients import Consumer, KafkaException, TopicPartition
from connector.kafka.lifecycle import closing
from connector.kafka.offsets import committed_offsets, watermarks
from connector.kafka.reader import (
    EndNotReached,
    ReadFailed,
    ReadLimits,
    read_ranges,
    reading_consumer,
)

METADATA_TIMEOUT = 10.0  # as `connector check-config`'s ping: the first call, and the usual failure


class DeadLetterTopics:
    """The cluster's dead-letter topics as the settings name them."""

    def __init__(self, settings: Settings, timeout: float = 30.0):
        self._settings = settings
        self._timeout = timeout
        self._metadata: dict[str, int] | None = None

    # ----------------------------------------------------------------- topics

    def partitions(self) -> dict[str, int]:
        """Every topic of the cluster with its partition count (read once)."""
        if self._metadata is None:
            try:
                admin = quiet_admin(self._settings.kafka)
            except KafkaException as exc:
                raise DeadLetterError(f"invalid Kafka client settings: {exc.args[0]}") from exc
            metadata = cluster_metadata(admin, self._settings.kafka.bootstrap_servers,
                                        METADATA_TIMEOUT)
            self._metadata = partition_counts(metadata)
        return self._metadata

    def exists(self, topic: str) -> bool:
        return topic in self.partitions()

    def discover(self) -> list[str]:
        """Dead-letter topics that exist: the configured names, and any `*<dlq_suffix>`."""
        topics = self._settings.topics
        configured = {topics.dlq_for(topics.activity), topics.dlq_for(topics.webinars),
                      topics.commands_dlq}
        existing = self.partitions()
        found = {t for t in configured if t in existing}
        if topics.dlq_suffix:
            found |= {t for t in existing if t.endswith(topics.dlq_suffix)}
        return sorted(found)

    def require(self, topic: str) -> None:
        """Raise UnknownDeadLetterTopicError unless `topic` is an existing dead-letter topic."""
        known = self.discover()
        if topic in known:
            return
        listing = ", ".join(known) if known else "none"
        if self.exists(topic):
            hint = self._settings.topics.dlq_for(topic)
            did_you_mean = f"; did you mean {hint}?" if hint in known else ""
            raise UnknownDeadLetterTopicError(
                f"topic {topic} is not a dead-letter topic{did_you_mean} "
                f"(dead-letter topics: {listing})")
        raise UnknownDeadLetterTopicError(
            f"topic {topic} does not exist (dead-letter topics: {listing})")

    # ----------------------------------------------------------------- reading

    def _consumer(self, topic: str) -> Consumer:
        try:
            return reading_consumer(self._settings.kafka, redrive_group(topic),
                                    {"auto.offset.reset": "earliest", "log_level": 2})
        except KafkaException as exc:  # e.g. an invalid CONNECTOR_KAFKA__EXTRA property
            raise DeadLetterError(f"invalid Kafka client settings: {exc.args[0]}") from exc

    def _partitions_of(self, topic: str) -> list[tuple[str, int]]:
        return [(topic, p) for p in range(self.partitions().get(topic, 0))]

    def read(self, topic: str, start: dict[int, int] | None = None) -> list[DeadLetterRecord]:
        """Committed records of `topic` from `start` (per partition; default the beginning) to
        the end as it is now, in (partition, offset) order."""
        with closing(self._consumer(topic), "dead-letters") as consumer:
            try:
                return self._read_to_end(consumer, topic, start or {})
            except (KafkaException, ReadFailed) as exc:
                error = exc.error if isinstance(exc, ReadFailed) else exc.args[0]
                raise DeadLetterError(f"reading {topic} failed: {error}") from exc
            except EndNotReached as exc:
                raise DeadLetterError(
                    f"reading {topic} did not reach its end within {self._timeout:.0f}s "
                    f"(partitions {[p for _, p in exc.pending]})") from exc

    def _read_to_end(self, consumer: Consumer, topic: str,
                     start: dict[int, int]) -> list[DeadLetterRecord]:
        marks = watermarks(consumer, self._partitions_of(topic), timeout=self._timeout)
        ranges = {(t, p): (max(low, start.get(p, low)), high) for (t, p), (low, high)
                  in marks.items()}
        # A fatal error ends the read; the others (a broker away for a moment) are waited out.
        limits = ReadLimits(timeout=self._timeout, end_at_eof=True,
                            tolerate=lambda error: not error.fatal())
        records = [DeadLetterRecord.from_message(m) for m in read_ranges(consumer, ranges, limits)]
        return sorted(records, key=lambda r: (r.partition, r.offset))

    # ----------------------------------------------------------------- progress

    def load_progress(self, topic: str) -> RedriveProgress:
        """What the redrive group recorded as redriven, per partition."""
        with closing(self._consumer(topic), "dead-letters") as consumer:
            try:
                partitions = self._partitions_of(topic)
                committed = committed_offsets(consumer, partitions, timeout=self._timeout)
                marks = watermarks(consumer, committed, timeout=self._timeout)
            except KafkaException as exc:
                raise DeadLetterError(f"reading the offsets of group {redrive_group(topic)} "
                                      f"failed: {exc.args[0]}") from exc
        progress = {}
        for (_, partition), done in committed.items():
            # Past the end: the topic was deleted and created again; its progress is void.
            offset = done.offset if done.offset <= marks[(topic, partition)][1] else -1
            progress[partition] = PartitionProgress.from_commit(
                offset, done.metadata if offset >= 0 else None)
        return progress

    def commit_progress(self, topic: str, progress: RedriveProgress) -> None:
        """Record redriven records as the group's offsets (with their metadata)."""
        if not progress:
            return
        offsets = [TopicPartition(topic, p, pp.watermark, metadata=pp.metadata())
                   for p, pp in sorted(progress.items())]
        with closing(self._consumer(topic), "dead-letters") as consumer:
            try:
                result = consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                raise DeadLetterError(f"recording the redrive in group {redrive_group(topic)} "
                                      f"failed: {exc.args[0]}") from exc
        failed = [tp for tp in result or [] if tp.error is not None]
        if failed:
            raise DeadLetterError(f"recording the redrive in group {redrive_group(topic)} "
                                  f"failed: {failed[0].error}")
