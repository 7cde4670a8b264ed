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
    consumer = Consumer({**client_config, "group.id": f"watermark-{uuid.uuid4().hex[:8]}",
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
    """Every committed (key, value) of one changelog partition, oldest first.

    Reads up to the high watermark taken at the start, not just to the first end-of-partition:
    a read_committed consumer stops at the last stable offset, which trails the previous owner's
    just-committed transaction until its markers are written. Stopping there would lose that
    transaction's state while its input offsets are already committed. (The watermark comes
    from a read_uncommitted query, `high_watermarks`: asked by a read_committed consumer, Kafka
    answers with the last stable offset instead.) ``watermarks``: taken already, after the
    partition was assigned (None: taken here).
    """
    consumer = Consumer({
        **client_config,
        "group.id": f"restore-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
        "fetch.max.bytes": 52_428_800,
    })
    tp = TopicPartition(topic, partition)
    try:
        low, high = watermarks if watermarks is not None else \
            high_watermarks(client_config, [tp])[(topic, partition)]
        if high <= low:  # empty, or emptied by DeleteRecords (a replay reset)
            return
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while True:
            message = consumer.poll(0.5)
            if time.monotonic() > deadline:
                raise ConnectorError(f"restoring {topic}[{partition}] did not reach offset "
                                     f"{high} within {timeout:.0f}s (an open transaction of "
                                     "another instance? it ends with transaction.timeout.ms)")
            if message is None or message.error() is not None:
                error = None if message is None else message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise ConnectorError(f"restoring {topic}[{partition}] failed: {error}")
                if consumer.position([tp])[0].offset >= high:
                    return
                continue
            raw = message.value()
            yield (message.key() or b"").decode(), orjson.loads(raw) if raw is not None else None
            if (message.offset() or 0) >= high - 1:
                return
    finally:
        consumer.close()
