"""ensure_topics against librdkafka's mock cluster (a fast in-process check, not a proof).

The mock cluster names no controller, so CreateTopics cannot work; topics are created on first
use instead. The real broker's path is covered by every integration test.
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from connector.broker.mock import mock_kafka
from connector.kafka import TopicSpec, clients, ensure_topics
from connector.kafka.lifecycle import is_transient


def test_topics_are_auto_created_where_no_controller_takes_create_topics() -> None:
    with mock_kafka() as bootstrap:
        config = {"bootstrap.servers": bootstrap}
        created = ensure_topics(config, [TopicSpec("a", 3), TopicSpec("b", 1)], timeout=10)
        assert created == ["a", "b"]
        topics = AdminClient(config).list_topics(timeout=10).topics
        assert {"a", "b"} <= set(topics) and len(topics["a"].partitions) > 0
        assert ensure_topics(config, [TopicSpec("a", 3)], timeout=10) == []  # exists now


def test_a_cluster_naming_no_controller_that_does_not_auto_create_is_waited_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A real broker names no controller for a moment while it restarts: the topic that was
    not auto-created is a transient error, which the start-up waits ask again."""

    class Metadata:
        def __init__(self) -> None:
            self.topics: dict[str, Any] = {}

    class NoAutoCreate:
        def list_topics(self, _topic: str, timeout: float) -> Metadata:
            return Metadata()

    with mock_kafka() as bootstrap:
        monkeypatch.setattr(clients, "producer", lambda *_args, **_kw: NoAutoCreate())
        with pytest.raises(KafkaException) as raised:
            ensure_topics({"bootstrap.servers": bootstrap}, [TopicSpec("c", 1)], timeout=10)
    assert is_transient(raised.value)
    assert "names no controller" in str(raised.value)
