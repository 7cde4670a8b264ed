"""Cluster.offsets_for_time: a partition whose lookup failed is never read as an offset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition

from connector.replay.cluster import Cluster
from connector.replay.errors import ReplayError

MILLIS = 1_767_261_600_000  # 2026-01-01T10:00:00Z


@dataclass
class Answer:
    """A TopicPartition of the answer (its `error` cannot be set from Python)."""

    topic: str
    partition: int
    offset: int
    error: KafkaError | None = None


class FlakyConsumer:
    """offsets_for_times as librdkafka answers it: a failed partition keeps its error and, in
    its offset field, the timestamp it was asked for."""

    def __init__(self, failures: int, found: dict[int, int]):
        self.failures = failures
        self.found = found
        self.calls: list[list[int]] = []

    def offsets_for_times(self, partitions: list[TopicPartition],
                          timeout: float) -> list[Answer]:
        self.calls.append([tp.partition for tp in partitions])
        out = []
        for tp in partitions:
            if tp.partition == 0 and self.failures:
                self.failures -= 1
                out.append(Answer(tp.topic, tp.partition, tp.offset,
                                  KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION)))
            else:
                out.append(Answer(tp.topic, tp.partition, self.found[tp.partition]))
        return out


def cluster_with(consumer: Any) -> Cluster:
    cluster = Cluster.__new__(Cluster)
    cluster._consumer = consumer
    return cluster


def test_a_failed_partition_is_asked_again_not_read_as_an_offset() -> None:
    consumer = FlakyConsumer(failures=1, found={0: 7, 1: -1})
    found = cluster_with(consumer).offsets_for_time([("a", 0), ("a", 1)], MILLIS)
    # Read as an offset, the echoed timestamp made --from's range empty (start = end) and
    # --to's range run to the high watermark.
    assert found == {("a", 0): 7, ("a", 1): None}
    assert consumer.calls == [[0, 1], [0]]


def test_a_partition_that_keeps_failing_fails_the_lookup() -> None:
    consumer = FlakyConsumer(failures=10 ** 6, found={0: 7, 1: 3})
    with pytest.raises(ReplayError, match=r"a\[0\].*NOT_LEADER"):
        cluster_with(consumer).offsets_for_time([("a", 0), ("a", 1)], MILLIS, retry_seconds=0)
