"""Changelog topics: the normalizer's state, one compacted topic per input topic.

Partition p of `<group>-<input topic>-changelog` holds the state of input partition p, so state
moves with the partition when the group rebalances. Values are compact JSON; a deletion is a
tombstone. Writes go through the worker's transactional producer, in the same transaction as the
commands and the input offsets, so state and output can never disagree after a crash.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from connector.errors import ConnectorError
from connector.kafka.lifecycle import close_within
from connector.kafka.roles import for_consumer

log = logging.getLogger(__name__)


def changelog_topic(group_id: str, source_topic: str) -> str:
    """The changelog of `source_topic`'s state for this consumer group."""
    return f"{group_id}-{source_topic}-changelog"


def encode(value: Any) -> bytes | None:
    # orjson: the changelog is written for every changed person in every transaction, and the
    # stdlib encoder was 8% of the normalizer's time (orjson is ~14x faster on these values).
    return None if value is None else orjson.dumps(value)


def records(changes: Iterable[tuple[str, Any]]) -> Iterator[tuple[bytes, bytes | None]]:
    """(key, value) bytes for the producer."""
    for key, value in changes:
        yield key.encode(), encode(value)


#: What a partition of a topic created a moment ago answers until its leader is known
#: (librdkafka does not flag these as retriable here).
_LEADER_NOT_KNOWN_YET = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION,
                                   KafkaError.LEADER_NOT_AVAILABLE,
                                   KafkaError.UNKNOWN_TOPIC_OR_PART})


def high_watermarks(client_config: dict[str, Any], partitions: list[TopicPartition],
                    timeout: float = 30.0) -> dict[tuple[str, int], tuple[int, int]]:
    """(low, high) watermarks per (topic, partition), high including records of transactions
    still open: one read_uncommitted client for them all (a restore of several partitions
    takes them together: a client per partition cost 15-50 ms of start-up each).

    Retried while Kafka says to (e.g. NOT_LEADER_FOR_PARTITION on a changelog topic created a
    moment ago, before its leader is known), up to `timeout` seconds.
    """
    if not partitions:
        return {}
    consumer = Consumer({**for_consumer(client_config),
                         "group.id": f"watermark-{uuid.uuid4().hex[:8]}",
                         "isolation.level": "read_uncommitted"})
    deadline = time.monotonic() + timeout
    marks: dict[tuple[str, int], tuple[int, int]] = {}
    try:
        for tp in partitions:
            while (tp.topic, tp.partition) not in marks:
                try:
                    marks[(tp.topic, tp.partition)] = consumer.get_watermark_offsets(
                        tp, timeout=timeout)
                except KafkaException as exc:
                    error = exc.args[0]
                    transient = error.retriable() or error.code() in _LEADER_NOT_KNOWN_YET
                    if not transient or time.monotonic() >= deadline:
                        raise
                    time.sleep(0.1)
        return marks
    finally:
        consumer.close()


def read_partition(client_config: dict[str, Any], topic: str, partition: int,
                   timeout: float = 120.0, watermarks: tuple[int, int] | None = None
                   ) -> Iterator[tuple[str, Any]]:
    """Every committed (key, value) of one changelog partition, oldest first (see
    `read_partitions`). ``watermarks``: taken already, after the partition was assigned (None:
    taken here)."""
    tp = TopicPartition(topic, partition)
    marks = {(topic, partition): watermarks} if watermarks is not None else \
        high_watermarks(client_config, [tp])
    for _topic, _partition, key, value in read_partitions(client_config, marks, timeout):
        yield key, value


def read_partitions(client_config: dict[str, Any],
                    watermarks: dict[tuple[str, int], tuple[int, int]],
                    timeout: float = 120.0) -> Iterator[tuple[str, int, str, Any]]:
    """Every committed (topic, partition, key, value) of the given changelog partitions, each
    partition's oldest first, read by one consumer for them all.

    Reads each partition up to the high watermark taken at the start (``watermarks``, from
    `high_watermarks`), not just to the first end-of-partition: a read_committed consumer stops
    at the last stable offset, which trails the previous owner's just-committed transaction
    until its markers are written. Stopping there would lose that transaction's state while its
    input offsets are already committed. (The watermark comes from a read_uncommitted query:
    asked by a read_committed consumer, Kafka answers with the last stable offset instead.)

    One client for every partition of a rebalance, and short fetch waits: a restore takes time
    in proportion to the data, not a client's start-up plus a held fetch (500 ms by default)
    per partition. Bounded by ``timeout``: ConnectorError past it.
    """
    remaining = {key: high for key, (low, high) in watermarks.items() if high > low}
    if not remaining:  # empty, or emptied by DeleteRecords (a replay reset)
        return
    consumer = Consumer({
        **for_consumer(client_config),
        "group.id": f"restore-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
        "fetch.max.bytes": 52_428_800,
        # The end of a partition is known from a fetch response, which the broker holds back up
        # to this long when there is nothing new.
        "fetch.wait.max.ms": 10,
    })
    try:
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)
                         for topic, partition in remaining])
        deadline = time.monotonic() + timeout
        while remaining:
            if time.monotonic() > deadline:
                raise ConnectorError(
                    f"restoring {_describe(remaining)} did not reach the high watermark within "
                    f"{timeout:.0f}s (an open transaction of another instance? it ends with "
                    "transaction.timeout.ms)")
            for message in consumer.consume(10_000, 0.2):
                key = (message.topic() or "", message.partition() or 0)
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise ConnectorError(f"restoring {key[0]}[{key[1]}] failed: {error}")
                    high = remaining.get(key)
                    position = consumer.position([TopicPartition(*key)])[0].offset
                    if high is not None and position >= high:
                        del remaining[key]  # past the last commit marker
                    continue
                high = remaining.get(key)
                offset = message.offset() or 0
                if high is None or offset >= high:
                    continue  # that partition is read already
                raw = message.value()
                yield (key[0], key[1], (message.key() or b"").decode(),
                       orjson.loads(raw) if raw is not None else None)
                if offset >= high - 1:
                    del remaining[key]
    finally:
        close_within(consumer.close, 10.0, "changelog-restore")


def _describe(partitions: dict[tuple[str, int], int]) -> str:
    return ", ".join(f"{topic}[{partition}]" for topic, partition in sorted(partitions))
