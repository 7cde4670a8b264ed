"""Offsets a consumer asks the cluster for: watermarks and a group's committed offsets.

Every call is bounded by a timeout; watermarks are asked again while Kafka says to (a partition
of a topic created a moment ago answers NOT_LEADER_FOR_PARTITION until its leader is known), up
to a bound the caller gives.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from connector.kafka import clients
from connector.kafka.clients import KafkaError, KafkaException, TopicPartition
from connector.kafka.lifecycle import closing
from connector.kafka.protocols import ConsumerClient, PartitionId, Watermarks

#: The bound of one broker call here, unless the caller gives one.
TIMEOUT_SECONDS = 30.0
#: Pause between two asks of a watermark that Kafka said to ask again.
RETRY_PAUSE_SECONDS = 0.1

#: What a partition of a topic created a moment ago answers until its leader is known
#: (librdkafka does not flag these as retriable here).
_LEADER_NOT_KNOWN_YET = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION,
                                   KafkaError.LEADER_NOT_AVAILABLE,
                                   KafkaError.UNKNOWN_TOPIC_OR_PART})


def worth_asking_again(exc: KafkaException) -> bool:
    """A watermark lookup that may answer if asked again (retriable, or no leader yet)."""
    error = exc.args[0]
    return bool(error.retriable()) or error.code() in _LEADER_NOT_KNOWN_YET


def watermarks(consumer: ConsumerClient, partitions: Iterable[PartitionId], *,
               timeout: float = TIMEOUT_SECONDS,
               retry_seconds: float = 0.0) -> dict[PartitionId, Watermarks]:
    """(low, high) per partition, each asked with ``timeout``. The high mark is as the
    consumer's isolation level sees it: the last stable offset for a read_committed consumer,
    the end of the log (records of open transactions included) for a read_uncommitted one.

    A lookup Kafka says to ask again (`worth_asking_again`) is, for up to ``retry_seconds``;
    then, as any other failure, its KafkaException is raised.
    """
    deadline = time.monotonic() + retry_seconds
    marks: dict[PartitionId, Watermarks] = {}
    for topic, partition in partitions:
        while (topic, partition) not in marks:
            try:
                marks[(topic, partition)] = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout)
            except KafkaException as exc:
                if not worth_asking_again(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(RETRY_PAUSE_SECONDS)
    return marks


def log_end_watermarks(source: clients.Source, partitions: Iterable[PartitionId], *,
                       timeout: float = TIMEOUT_SECONDS) -> dict[PartitionId, Watermarks]:
    """(low, high) per partition, high at the end of the log (records of transactions still
    open included), asked by one read_uncommitted client for them all, patient for up to
    ``timeout`` while Kafka says to ask again."""
    wanted = list(partitions)
    if not wanted:
        return {}
    consumer = clients.consumer(source, clients.unique_group_id("watermark"),
                                {"isolation.level": "read_uncommitted"})
    with closing(consumer, "watermarks"):
        return watermarks(consumer, wanted, timeout=timeout, retry_seconds=timeout)


@dataclass(frozen=True)
class CommittedOffset:
    """A group's committed offset of one partition (negative: none) and its metadata."""

    offset: int
    metadata: str | None = None

    @property
    def is_set(self) -> bool:
        return self.offset >= 0


def committed_offsets(consumer: ConsumerClient, partitions: Iterable[PartitionId], *,
                      timeout: float = TIMEOUT_SECONDS) -> dict[PartitionId, CommittedOffset]:
    """The committed offsets of the consumer's group for ``partitions`` (one broker call,
    bounded by ``timeout``; its KafkaException is raised)."""
    query = [TopicPartition(topic, partition) for topic, partition in partitions]
    if not query:
        return {}
    return {(tp.topic, tp.partition): CommittedOffset(tp.offset, tp.metadata)
            for tp in consumer.committed(query, timeout=timeout)}
