"""The normalizer's Kafka clients, by role, and its start-up wait for the cluster.

The worker is handed a `NormalizerClients` (built by :mod:`connector.runtime.assemble`) and
never writes a librdkafka config: each client comes from a role builder of
:mod:`connector.kafka.clients`, with only what is particular to the normalizer added here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from connector.kafka.admin import TopicSpec, ensure_topics
from connector.kafka.clients import (
    KafkaException,
    admin,
    read_committed_consumer,
    transactional_producer,
)
from connector.kafka.lifecycle import is_transient, until_available
from connector.kafka.protocols import TransactionalMember, TransactionalProducer
from connector.kafka.settings import KafkaSettings
from connector.kafka.transaction import ProducerUnusable
from connector.runtime.table import WebinarTable, WebinarTableReader
from connector.serde.topic import TopicDecoder

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long start-up waits for a cluster that does not answer (then KafkaUnavailableError).
STARTUP_WAIT_SECONDS = 300.0


class StoppedWhileWaiting(Exception):
    """Asked to stop while waiting for the cluster (start-up, a new producer): just return."""


class NormalizerClients:
    """Builds the clients of one normalizer instance (``group``, ``instance_id``)."""

    def __init__(self, kafka: KafkaSettings, group: str, instance_id: str,
                 transaction_timeout_ms: int) -> None:
        self.kafka = kafka
        self.group = group
        self.instance_id = instance_id
        self.transaction_timeout_ms = transaction_timeout_ms

    @property
    def consumer_config(self) -> dict[str, Any]:
        """A consumer's properties, for the helpers that build their own (changelog reads)."""
        return self.kafka.consumer_config()

    def group_member(self) -> TransactionalMember:
        """The input consumer: committed records only, offsets committed by transactions."""
        return read_committed_consumer(self.kafka, self.group, {
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            # Static membership: a replaced instance (same instance id) takes its partitions
            # back at once instead of after the dead member's session timeout.
            "group.instance.id": f"{self.group}-{self.instance_id}",
        })

    def producer(self) -> TransactionalProducer:
        """A transactional producer, not yet initialized."""
        return transactional_producer(self.kafka, f"{self.group}-{self.instance_id}", {
            "transaction.timeout.ms": self.transaction_timeout_ms,
            "linger.ms": 5,
            # No delivery callbacks are used (commit_transaction fails if a send failed): without
            # this every message's delivery report is still queued and served on the main thread.
            "delivery.report.only.error": True,
        })

    def partition_counts(self) -> dict[str, int]:
        """Every topic of the cluster with its number of partitions."""
        metadata = admin(self.kafka).list_topics(timeout=10)
        return {name: len(topic.partitions) for name, topic in metadata.topics.items()}

    def create_missing(self, specs: list[TopicSpec]) -> list[str]:
        """Create those of ``specs`` that do not exist yet; returns the names created."""
        return ensure_topics(self.kafka.client_config(), specs)

    def webinar_table(self, topic: str, decoder: TopicDecoder,
                      table: WebinarTable) -> WebinarTableReader:
        """A reader of the whole webinars topic into ``table`` (assigned, no group)."""
        return WebinarTableReader(self.kafka.consumer_config(), topic, decoder, table)


class ClusterWait:
    """Start-up calls, asked again while the cluster does not answer (a broker being
    restarted; a producer whose init kept timing out), up to `STARTUP_WAIT_SECONDS`."""

    def __init__(self, servers: str, stop: threading.Event) -> None:
        self.servers = servers
        self.stop = stop

    def until_available(self, what: str, call: Callable[[], T]) -> T:
        """``call()``'s result; StoppedWhileWaiting when asked to stop meanwhile."""
        result = until_available(
            lambda _seconds_left: call(), what=what, servers=self.servers,
            give_up_seconds=STARTUP_WAIT_SECONDS, stop=self.stop,
            retry_on=lambda exc: isinstance(exc, ProducerUnusable) or is_transient(exc))
        if result is None:
            raise StoppedWhileWaiting()
        return result


def discard(producer: TransactionalProducer) -> None:
    """Drop a producer that is no longer used: what it still holds is not wanted (it belongs
    to a transaction that is aborted, or completed by the coordinator)."""
    try:
        producer.purge()
    except (KafkaException, RuntimeError, NotImplementedError) as exc:
        log.debug("producer_purge_failed error=%s", exc)
