"""Every confluent-kafka client of the connector is built here, by role.

A role is a set of properties that belong together, so a caller never writes a librdkafka
config dict by hand:

* :func:`consumer`: a plain consumer (no automatic commits);
* :func:`read_committed_consumer`: sees only committed transactions (the normalizer's input, the
  sink's commands, changelogs, dead letters);
* :func:`producer`: an idempotent producer (no duplicates or reordering on retries);
* :func:`transactional_producer`: exactly-once writes (the normalizer, state commits);
* :func:`admin`: topic and group administration.

``source`` is a :class:`~connector.kafka.settings.KafkaSettings` or a config mapping already
built from one (``KafkaSettings.consumer_config()`` and friends); either way each client takes
only the properties of its role (:mod:`connector.kafka.roles`). ``properties`` adds or overrides
librdkafka properties for one client.

The confluent-kafka names the rest of the connector needs (``TopicPartition``, ``KafkaError``,
...) are re-exported here, so this package stays the one place that imports confluent-kafka.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from connector.kafka.roles import for_admin, for_consumer, for_producer
from connector.kafka.settings import KafkaSettings

__all__ = [
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_INVALID",
    "AdminClient",
    "Consumer",
    "KafkaError",
    "KafkaException",
    "Message",
    "Producer",
    "Source",
    "TopicPartition",
    "admin",
    "consumer",
    "produce_waiting",
    "producer",
    "read_committed_consumer",
    "transactional_producer",
    "unique_group_id",
]

Source = KafkaSettings | Mapping[str, Any]


def _base(source: Source) -> dict[str, Any]:
    if isinstance(source, KafkaSettings):
        return source.properties()
    return dict(source)


def unique_group_id(prefix: str) -> str:
    """A group id of its own, for a consumer that only assigns and never commits (librdkafka
    requires one all the same)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def consumer(source: Source, group_id: str,
             properties: Mapping[str, Any] | None = None) -> Consumer:
    """A consumer in ``group_id`` that commits only when told to."""
    return Consumer({**for_consumer(_base(source)), "group.id": group_id,
                     "enable.auto.commit": False, **(properties or {})})


def read_committed_consumer(source: Source, group_id: str,
                            properties: Mapping[str, Any] | None = None) -> Consumer:
    """A :func:`consumer` that sees only records of committed transactions."""
    return consumer(source, group_id,
                    {"isolation.level": "read_committed", **(properties or {})})


def producer(source: Source, properties: Mapping[str, Any] | None = None) -> Producer:
    """An idempotent producer: retries neither duplicate nor reorder a partition's records."""
    return Producer({**for_producer(_base(source)), "enable.idempotence": True,
                     **(properties or {})})


def produce_waiting(client: Any, timeout: float = 60.0, **record: Any) -> None:
    """``client.produce(**record)``, waiting while its local queue is full (``BufferError``:
    a bulk copy outruns the broker) for deliveries to drain it; KafkaException (_QUEUE_FULL)
    when it is still full after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.produce(**record)
            return
        except BufferError:
            if time.monotonic() >= deadline:
                raise KafkaException(KafkaError(
                    KafkaError._QUEUE_FULL,
                    f"the producer's queue stayed full for {timeout:.0f}s")) from None
            client.poll(0.1)


def transactional_producer(source: Source, transactional_id: str,
                           properties: Mapping[str, Any] | None = None) -> Producer:
    """A producer for exactly-once writes; its ``init_transactions`` fences older instances."""
    return producer(source, {"transactional.id": transactional_id, **(properties or {})})


def admin(source: Source, properties: Mapping[str, Any] | None = None) -> AdminClient:
    """An AdminClient (topics, groups, offsets); role-only properties left out."""
    return AdminClient({**for_admin(_base(source)), **(properties or {})})
