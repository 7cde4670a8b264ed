"""Kafka access for `connector dlq`: find dead-letter topics, read them, keep redrive progress.

Thin on purpose: the decisions (filters, grouping, headers, progress) are pure functions in the
other modules of connector.dlq. Kafka's exceptions are translated here, once.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from connector.config import Settings
from connector.dlq.errors import DeadLetterError, UnknownTopicError
from connector.dlq.progress import PartitionProgress, redrive_group
from connector.dlq.record import DeadLetterRecord
from connector.kafka.admin import KafkaUnavailableError

Progress = dict[int, PartitionProgress]
METADATA_TIMEOUT = 10.0  # as `connector check-config`'s ping: the first call, and the usual failure


class DeadLetterTopics:
    """The cluster's dead-letter topics as the settings name them."""

    def __init__(self, settings: Settings, timeout: float = 30.0):
        self._settings = settings
        self._config = settings.kafka.client_config()
        self._consumer_config = settings.kafka.consumer_config()
        self._timeout = timeout
        self._metadata: dict[str, int] | None = None

    # ----------------------------------------------------------------- topics

    def partitions(self) -> dict[str, int]:
        """Every topic of the cluster with its partition count (read once)."""
        if self._metadata is None:
            try:
                admin = AdminClient({**self._config, "log_level": 2})
            except KafkaException as exc:
                raise DeadLetterError(f"invalid Kafka client settings: {exc.args[0]}") from exc
            try:
                metadata = admin.list_topics(timeout=METADATA_TIMEOUT)
            except KafkaException as exc:
                raise KafkaUnavailableError(
                    f"Kafka at {self._config.get('bootstrap.servers')} did not answer within "
                    f"{METADATA_TIMEOUT:.0f}s: {exc.args[0]}") from exc
            self._metadata = {name: len(t.partitions) for name, t in metadata.topics.items()
                              if t.error is None}
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
        """Raise UnknownTopicError unless `topic` is an existing dead-letter topic."""
        known = self.discover()
        if topic in known:
            return
        listing = ", ".join(known) if known else "none"
        if self.exists(topic):
            hint = self._settings.topics.dlq_for(topic)
            did_you_mean = f"; did you mean {hint}?" if hint in known else ""
            raise UnknownTopicError(f"topic {topic} is not a dead-letter topic{did_you_mean} "
                                    f"(dead-letter topics: {listing})")
        raise UnknownTopicError(f"topic {topic} does not exist (dead-letter topics: {listing})")

    # ----------------------------------------------------------------- reading

    def _consumer(self, topic: str) -> Consumer:
        try:
            return Consumer({**self._consumer_config, "group.id": redrive_group(topic),
                             "enable.partition.eof": True, "isolation.level": "read_committed",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest",
                             "log_level": 2})
        except KafkaException as exc:  # e.g. an invalid CONNECTOR_KAFKA__EXTRA property
            raise DeadLetterError(f"invalid Kafka client settings: {exc.args[0]}") from exc

    def read(self, topic: str, start: dict[int, int] | None = None) -> list[DeadLetterRecord]:
        """Committed records of `topic` from `start` (per partition; default the beginning) to
        the end as it is now, in (partition, offset) order."""
        consumer = self._consumer(topic)
        try:
            return _read_to_end(consumer, topic, self.partitions().get(topic, 0), start or {},
                                self._timeout)
        except KafkaException as exc:
            raise DeadLetterError(f"reading {topic} failed: {exc.args[0]}") from exc
        finally:
            consumer.close()

    # ----------------------------------------------------------------- progress

    def load_progress(self, topic: str) -> Progress:
        """What the redrive group recorded as redriven, per partition."""
        consumer = self._consumer(topic)
        try:
            count = self.partitions().get(topic, 0)
            committed = consumer.committed([TopicPartition(topic, p) for p in range(count)],
                                           timeout=self._timeout)
            progress = {}
            for tp in committed:
                _low, high = consumer.get_watermark_offsets(tp, timeout=self._timeout)
                # Past the end: the topic was deleted and created again; its progress is void.
                offset = tp.offset if tp.offset <= high else -1
                progress[tp.partition] = PartitionProgress.from_commit(
                    offset, tp.metadata if offset >= 0 else None)
        except KafkaException as exc:
            raise DeadLetterError(f"reading the offsets of group {redrive_group(topic)} failed: "
                                  f"{exc.args[0]}") from exc
        finally:
            consumer.close()
        return progress

    def commit_progress(self, topic: str, progress: Progress) -> None:
        """Record redriven records as the group's offsets (with their metadata)."""
        if not progress:
            return
        offsets = [TopicPartition(topic, p, pp.watermark, metadata=pp.metadata())
                   for p, pp in sorted(progress.items())]
        consumer = self._consumer(topic)
        try:
            result = consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise DeadLetterError(f"recording the redrive in group {redrive_group(topic)} "
                                  f"failed: {exc.args[0]}") from exc
        finally:
            consumer.close()
        failed = [tp for tp in result or [] if tp.error is not None]
        if failed:
            raise DeadLetterError(f"recording the redrive in group {redrive_group(topic)} "
                                  f"failed: {failed[0].error}")


def _read_to_end(consumer: Consumer, topic: str, partitions: int, start: dict[int, int],
                 timeout: float) -> list[DeadLetterRecord]:
    assignment = []
    ends: dict[int, int] = {}
    for partition in range(partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                   timeout=timeout)
        begin = max(low, start.get(partition, low))
        if begin < high:
            assignment.append(TopicPartition(topic, partition, begin))
            ends[partition] = high
    if not assignment:
        return []
    consumer.assign(assignment)
    records: dict[int, list[DeadLetterRecord]] = {p: [] for p in ends}
    pending = set(ends)
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise DeadLetterError(f"reading {topic} did not reach its end within {timeout:.0f}s "
                                  f"(partitions {sorted(pending)})")
        message: Any = consumer.poll(0.5)
        if message is None:
            continue
        partition = message.partition()
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                pending.discard(partition)
                continue
            if error.fatal():
                raise KafkaException(error)
            continue
        if partition not in pending:
            continue
        records[partition].append(DeadLetterRecord.from_message(message))
        if message.offset() + 1 >= ends[partition]:
            pending.discard(partition)
    return [r for p in sorted(records) for r in records[p]]
