"""Read a whole topic to its end (inspection, demo summaries, tests)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from connector.kafka.roles import for_consumer


def read_all(client_config: dict[str, Any], topic: str, timeout: float = 30.0) -> list[Any]:
    """Every committed message of `topic` (all partitions), in partition order per partition.

    Returns [] when the topic does not exist. Uses no consumer group offsets. `client_config`:
    a consumer's (`KafkaSettings.consumer_config()`); producer-only properties are left out.
    """
    consumer = Consumer({**for_consumer(client_config),
                         "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                         "enable.partition.eof": True, "isolation.level": "read_committed",
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        partitions = set(metadata.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        done: set[int] = set()
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        while done != partitions and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    done.add(message.partition() or 0)
                continue
            messages.append(message)
        return messages
    finally:
        consumer.close()
