"""ensure_topics against librdkafka's mock cluster (a fast in-process check, not a proof).

The mock cluster names no controller, so CreateTopics cannot work; topics are created on first
use instead. The real broker's path is covered by every integration test.
"""

from __future__ import annotations

from confluent_kafka.admin import AdminClient

from connector.broker.mock import mock_kafka
from connector.kafka import TopicSpec, ensure_topics


def test_topics_are_auto_created_where_no_controller_takes_create_topics() -> None:
    with mock_kafka() as bootstrap:
        config = {"bootstrap.servers": bootstrap}
        created = ensure_topics(config, [TopicSpec("a", 3), TopicSpec("b", 1)], timeout=10)
        assert created == ["a", "b"]
        topics = AdminClient(config).list_topics(timeout=10).topics
        assert {"a", "b"} <= set(topics) and len(topics["a"].partitions) > 0
        assert ensure_topics(config, [TopicSpec("a", 3)], timeout=10) == []  # exists now
