"""Changelog topics: the normalizer's state, one compacted topic per input topic.

Partition p of `<group>-<input topic>-changelog` holds the state of input partition p, so state
moves with the partition when the group rebalances. Values are compact JSON; a deletion is a
tombstone. Writes go through the worker's transactional producer, in the same transaction as the
commands and the input offsets, so state and output can never disagree after a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from connector.errors import ConnectorError
from connector.kafka.clients import Source, TopicPartition, unique_group_id
from connector.kafka.lifecycle import closing
from connector.kafka.offsets import log_end_watermarks
from connector.kafka.protocols import PartitionId, Watermarks
from connector.kafka.reader import (
    EndNotReached,
    ReadFailed,
    ReadLimits,
    read_ranges,
    reading_consumer,
)

log = logging.getLogger(__name__)

#: How a restore reads: big batches, and a timeout for the whole restore.
_RESTORE_BATCH = 10_000
_RESTORE_WAIT_SECONDS = 0.2
#: The end of a partition is known from a fetch response, which the broker holds back up to
#: fetch.wait.max.ms (500 ms by default) when there is nothing new.
_RESTORE_PROPERTIES = {"fetch.max.bytes": 52_428_800, "fetch.wait.max.ms": 10}


def changelog_topic(group_id: str, source_topic: str) -> str:
    """The changelog of `source_topic`'s state for this consumer group."""
    return f"{group_id}-{source_topic}-changelog"


def encode(value: Any) -> bytes | None:
    # orjson: the changelog is written for every changed person in every transaction, and the
    # stdlib encoder is many times slower on these values, a visible share of the normalizer.
    return None if value is None else orjson.dumps(value)


def records(changes: Iterable[tuple[str, Any]]) -> Iterator[tuple[bytes, bytes | None]]:
    """(key, value) bytes for the producer."""
    for key, value in changes:
        yield key.encode(), encode(value)


def high_watermarks(client_config: Source, partitions: list[TopicPartition],
                    timeout: float = 30.0) -> dict[PartitionId, Watermarks]:
    """(low, high) watermarks per (topic, partition), high including records of transactions
    still open: one read_uncommitted client for them all (a restore of several partitions
    takes them together: each client adds its own start-up to the restore).

    Retried while Kafka says to (e.g. NOT_LEADER_FOR_PARTITION on a changelog topic created a
    moment ago, before its leader is known), up to `timeout` seconds.
    """
    return log_end_watermarks(client_config, [(tp.topic, tp.partition) for tp in partitions],
                              timeout=timeout)


def read_partition(client_config: Source, topic: str, partition: int,
                   timeout: float = 120.0, watermarks: Watermarks | None = None
                   ) -> Iterator[tuple[str, Any]]:
    """Every committed (key, value) of one changelog partition, oldest first (see
    `read_partitions`). ``watermarks``: taken already, after the partition was assigned (None:
    taken here)."""
    marks = {(topic, partition): watermarks} if watermarks is not None else \
        high_watermarks(client_config, [TopicPartition(topic, partition)])
    for _topic, _partition, key, value in read_partitions(client_config, marks, timeout):
        yield key, value


def read_partitions(client_config: Source, watermarks: dict[PartitionId, Watermarks],
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
    # From the beginning: emptied by DeleteRecords (a replay reset), low == high: nothing to read.
    ranges = {tp: (0, high) for tp, (low, high) in watermarks.items() if high > low}
    if not ranges:
        return
    consumer = reading_consumer(client_config, unique_group_id("restore"), _RESTORE_PROPERTIES)
    limits = ReadLimits(timeout=timeout, batch=_RESTORE_BATCH, wait_seconds=_RESTORE_WAIT_SECONDS)
    with closing(consumer, "changelog-restore"):
        try:
            for message in read_ranges(consumer, ranges, limits):
                raw = message.value()
                yield (message.topic() or "", message.partition() or 0,
                       (message.key() or b"").decode(),
                       orjson.loads(raw) if raw is not None else None)
        except EndNotReached as exc:
            raise ConnectorError(
                f"restoring {_describe(exc.pending)} did not reach the high watermark within "
                f"{timeout:.0f}s (an open transaction of another instance? it ends with "
                "transaction.timeout.ms)") from exc
        except ReadFailed as exc:
            topic, partition = exc.partition
            raise ConnectorError(f"restoring {topic}[{partition}] failed: {exc.error}") from exc


def _describe(partitions: Iterable[PartitionId]) -> str:
    return ", ".join(f"{topic}[{partition}]" for topic, partition in sorted(partitions))
