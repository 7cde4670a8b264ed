"""Topic administration and reachability checks (confluent-kafka AdminClient)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from connector.errors import ConnectorError
from connector.kafka.roles import for_admin, for_producer

log = logging.getLogger(__name__)


class KafkaUnavailableError(ConnectorError):
    """The Kafka cluster did not answer (wrong address, down, or refusing us)."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic the connector needs, with the settings it must have."""

    name: str
    partitions: int = 1
    replication_factor: int = -1  # the broker's default.replication.factor
    config: dict[str, str] = field(default_factory=dict)


def ping(client_config: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Ask the cluster for its metadata; returns brokers and topic count or raises."""
    # log_level 2: the failure is reported once, below, not as librdkafka's retry chatter.
    admin = AdminClient({**for_admin(client_config), "log_level": 2})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        servers = client_config.get("bootstrap.servers")
        raise KafkaUnavailableError(
            f"Kafka at {servers} did not answer within {timeout:.0f}s: {exc.args[0]}"
        ) from exc
    return {
        "cluster_id": metadata.cluster_id,
        "brokers": sorted(f"{b.host}:{b.port}" for b in metadata.brokers.values()),
        "topics": len(metadata.topics),
    }


def ensure_topics(client_config: dict[str, Any], specs: list[TopicSpec],
                  timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = AdminClient(for_admin(client_config))
    metadata = admin.list_topics(timeout=timeout)
    missing = [s for s in specs if s.name not in metadata.topics]
    if not missing:
        return []
    if metadata.controller_id not in metadata.brokers:
        return _auto_create(client_config, missing, timeout)
    futures = admin.create_topics(
        [NewTopic(s.name, s.partitions, s.replication_factor, config=s.config) for s in missing],
        operation_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":  # lost a race with another instance
                raise
    for name in created:
        log.info("topic_created topic=%s", name)
    return created


def _auto_create(client_config: dict[str, Any], specs: list[TopicSpec],
                 timeout: float) -> list[str]:
    """Create topics by asking for their metadata, where no controller takes CreateTopics.

    librdkafka's mock cluster (`connector demo` without Java) names no controller among its
    brokers; it creates a topic, with its default partition count and no topic config, the
    first time a producer asks for it.
    """
    producer = Producer({**for_producer(client_config), "allow.auto.create.topics": True})
    created = []
    for spec in specs:
        topic = producer.list_topics(spec.name, timeout=timeout).topics.get(spec.name)
        if topic is None or topic.error is not None:
            raise ConnectorError(f"topic {spec.name} could not be created: the cluster has no "
                                 f"controller and did not auto-create it ({topic and topic.error})")
        created.append(spec.name)
        log.warning("topic_auto_created topic=%s partitions=%s reason=no-controller "
                    "wanted_partitions=%s wanted_config=%s", spec.name, len(topic.partitions),
                    spec.partitions, spec.config or "{}")
    return created
