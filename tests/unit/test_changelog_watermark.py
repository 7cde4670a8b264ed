"""changelog.high_watermarks: read_uncommitted, one client, patient while a topic gets a leader."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from connector.kafka import clients, offsets
from connector.runtime import changelog


class _FakeConsumer:
    """Answers get_watermark_offsets with the queued errors first, then (0, 42)."""

    made: ClassVar[list[_FakeConsumer]] = []
    errors: ClassVar[list[int]] = []

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.closed = False
        self.asked = 0
        _FakeConsumer.made.append(self)

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        self.asked += 1
        if _FakeConsumer.errors:
            raise KafkaException(KafkaError(_FakeConsumer.errors.pop(0)))
        return 0, 42 + tp.partition

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[_FakeConsumer]:
    _FakeConsumer.made, _FakeConsumer.errors = [], []
    monkeypatch.setattr(clients, "Consumer", _FakeConsumer)
    monkeypatch.setattr(offsets.time, "sleep", lambda _s: None)
    return _FakeConsumer


def test_asks_read_uncommitted_so_open_transactions_count(fake: type[_FakeConsumer]) -> None:
    marks = changelog.high_watermarks({"bootstrap.servers": "x"},
                                      [TopicPartition("t", 0), TopicPartition("t", 3)])
    assert marks == {("t", 0): (0, 42), ("t", 3): (0, 45)}
    [consumer] = fake.made  # one client for every partition of a restore
    assert consumer.config["isolation.level"] == "read_uncommitted"
    assert consumer.closed
    assert changelog.high_watermarks({}, []) == {} and len(fake.made) == 1


def test_waits_for_the_leader_of_a_topic_created_a_moment_ago(fake: type[_FakeConsumer]) -> None:
    fake.errors = [KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE]
    assert changelog.high_watermarks({}, [TopicPartition("t", 0)]) == {("t", 0): (0, 42)}
    assert fake.made[0].asked == 3 and fake.made[0].closed


def test_other_errors_and_timeouts_are_raised(fake: type[_FakeConsumer]) -> None:
    fake.errors = [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    with pytest.raises(KafkaException):
        changelog.high_watermarks({}, [TopicPartition("t", 0)])
    fake.errors = [KafkaError.NOT_LEADER_FOR_PARTITION] * 3
    with pytest.raises(KafkaException):
        changelog.high_watermarks({}, [TopicPartition("t", 0)], timeout=0)
    assert all(consumer.closed for consumer in fake.made)
