"""Changelog topics: the normalizer's state, one compacted topic per input topic.

Partition p of `<group>-<input topic>-changelog` holds the state of input partition p, so state
moves with the partition when the group rebalances. Values are compact JSON; a deletion is a
tombstone. Writes go through the worker's transactional producer, in the same transaction as the
commands and the input offsets, so state and output can never disagree after a crash.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from connector.errors import ConnectorError

log = logging.getLogger(__name__)


def changelog_topic(group_id: str, source_topic: str) -> str:
    """The changelog of `source_topic`'s state for this consumer group."""
    return f"{group_id}-{source_topic}-changelog"


def encode(value: Any) -> bytes | None:
    return None if value is None else json.dumps(value, separators=(",", ":")).encode()


def records(changes: Iterable[tuple[str, Any]]) -> Iterator[tuple[bytes, bytes | None]]:
    """(key, value) bytes for the producer."""
    for key, value in changes:
        yield key.encode(), encode(value)


def read_partition(client_config: dict[str, Any], topic: str, partition: int,
                   timeout: float = 120.0) -> Iterator[tuple[str, Any]]:
    """Every committed (key, value) of one changelog partition, oldest first."""
    consumer = Consumer({
        **client_config,
        "group.id": f"restore-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
        "fetch.max.bytes": 52_428_800,
    })
    try:
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while True:
            message = consumer.poll(1.0)
            if message is None:
                if time.monotonic() > deadline:
                    raise ConnectorError(f"restoring {topic}[{partition}] did not reach the end "
                                         f"within {timeout:.0f}s")
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return
                raise ConnectorError(f"restoring {topic}[{partition}] failed: {error}")
            raw = message.value()
            yield (message.key() or b"").decode(), json.loads(raw) if raw is not None else None
    finally:
        consumer.close()
