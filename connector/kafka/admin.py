"""Topic administration and reachability checks (an AdminClient's calls, each bounded).

Topics: create the missing ones (`ensure_topics`), list them with their partition counts, delete
them, delete records up to an offset, read and change a topic's configuration. Failures are
raised as the library's KafkaException for the caller to translate, except that a cluster that
does not answer at all is a KafkaUnavailableError.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from connector.errors import ConnectorError
from connector.kafka import clients
from connector.kafka.clients import AdminClient, KafkaError, KafkaException, TopicPartition
from connector.kafka.protocols import PartitionId

log = logging.getLogger(__name__)

#: The bound of one admin request, unless the caller gives one.
TIMEOUT_SECONDS = 30.0


class KafkaUnavailableError(ConnectorError):
    """The Kafka cluster did not answer (wrong address, down, or refusing us)."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic the connector needs, with the settings it must have."""

    name: str
    partitions: int = 1
    replication_factor: int = -1  # the broker's default.replication.factor
    config: dict[str, str] = field(default_factory=dict)


def quiet_admin(source: clients.Source) -> AdminClient:
    """An AdminClient that leaves librdkafka's retry chatter out (log_level 2): a failure to
    reach the cluster is reported once, by `cluster_metadata`."""
    return clients.admin(source, {"log_level": 2})


def cluster_metadata(admin: AdminClient, servers: object, timeout: float) -> Any:
    """The cluster's metadata (brokers, topics); KafkaUnavailableError if it did not answer."""
    try:
        return admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"Kafka at {servers} did not answer within {timeout:.0f}s: {exc.args[0]}"
        ) from exc


def partition_counts(metadata: Any, *, internal: bool = True) -> dict[str, int]:
    """Every healthy topic of ``metadata`` with its partition count (``internal`` False: the
    broker's own ``__*`` topics left out)."""
    return {name: len(topic.partitions) for name, topic in metadata.topics.items()
            if topic.error is None and (internal or not name.startswith("__"))}


def ping(client_config: clients.Source, timeout: float = 10.0) -> dict[str, Any]:
    """Ask the cluster for its metadata; returns brokers and topic count or raises."""
    servers = _servers(client_config)
    metadata = cluster_metadata(quiet_admin(client_config), servers, timeout)
    return {
        "cluster_id": metadata.cluster_id,
        "brokers": sorted(f"{b.host}:{b.port}" for b in metadata.brokers.values()),
        "topics": len(metadata.topics),
    }


def _servers(source: clients.Source) -> object:
    if isinstance(source, Mapping):
        return source.get("bootstrap.servers")
    return source.bootstrap_servers


def ensure_topics(client_config: clients.Source, specs: list[TopicSpec],
                  timeout: float = TIMEOUT_SECONDS) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = clients.admin(client_config)
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


def _auto_create(client_config: clients.Source, specs: list[TopicSpec],
                 timeout: float) -> list[str]:
    """Create topics by asking for their metadata, where no controller takes CreateTopics.

    librdkafka's mock cluster (`connector demo` without Java) names no controller among its
    brokers; it creates a topic, with its default partition count and no topic config, the
    first time a producer asks for it. A real broker may name none for a moment while it
    restarts: a topic not auto-created is then a transient error, asked again by callers that
    wait for the cluster (``until_available``).
    """
    producer = clients.producer(client_config, {"allow.auto.create.topics": True,
                                                "enable.idempotence": False})
    created = []
    for spec in specs:
        topic = producer.list_topics(spec.name, timeout=timeout).topics.get(spec.name)
        if topic is None or topic.error is not None:
            # NOT_CONTROLLER: worth waiting out (lifecycle.is_transient). A real broker names
            # no controller for a moment while it restarts, then CreateTopics works again.
            raise KafkaException(KafkaError(
                KafkaError.NOT_CONTROLLER,
                f"topic {spec.name} could not be created: the cluster names no controller (a "
                f"broker restarting?) and did not auto-create it ({topic and topic.error})"))
        created.append(spec.name)
        log.warning("topic_auto_created topic=%s partitions=%s reason=no-controller "
                    "wanted_partitions=%s wanted_config=%s", spec.name, len(topic.partitions),
                    spec.partitions, spec.config or "{}")
    return created


def delete_topics(admin: AdminClient, names: list[str],
                  timeout: float = TIMEOUT_SECONDS) -> list[str]:
    """Delete topics, best effort (a topic already gone is fine); returns the problems."""
    if not names:
        return []
    problems = []
    for name, future in admin.delete_topics(names, operation_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                problems.append(f"topic {name}: {exc.args[0].str()}")
    return problems


def delete_records(admin: AdminClient, before: Mapping[PartitionId, int],
                   timeout: float = TIMEOUT_SECONDS) -> list[PartitionId]:
    """DeleteRecords: each partition's records before its offset; returns the partitions done
    (a KafkaException for the first that failed)."""
    positions = [TopicPartition(topic, partition, offset)
                 for (topic, partition), offset in before.items()]
    done = []
    for tp, future in admin.delete_records(positions, request_timeout=timeout,
                                           operation_timeout=timeout).items():
        future.result(timeout)
        done.append((tp.topic, tp.partition))
    return done


@dataclass(frozen=True)
class ConfigValue:
    """One topic configuration entry: its value, and whether that is the broker's default."""

    value: str
    is_default: bool


def topic_config(admin: AdminClient, topic: str,
                 timeout: float = TIMEOUT_SECONDS) -> dict[str, ConfigValue]:
    """The configuration of ``topic``, entry by entry."""
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource], request_timeout=timeout)[resource].result(timeout)
    return {key: ConfigValue(entry.value, entry.is_default) for key, entry in entries.items()}


def alter_topic_config(admin: AdminClient, topic: str, *, set_to: Mapping[str, str],
                       reset: Iterable[str] = (), timeout: float = TIMEOUT_SECONDS) -> None:
    """Change entries of the configuration of ``topic`` (incrementally): ``set_to`` these
    values, ``reset`` those to the broker's default."""
    entries = [ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
               for key, value in set_to.items()]
    entries += [ConfigEntry(key, None, incremental_operation=AlterConfigOpType.DELETE)
                for key in reset]
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    for future in admin.incremental_alter_configs([resource], request_timeout=timeout).values():
        future.result(timeout)
