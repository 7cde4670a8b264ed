"""Shared fixtures: one real Kafka broker per session, and factories for topics and clients.

Set KAFKA_BOOTSTRAP_SERVERS to run the integration tests against an existing cluster instead of
the embedded broker (connector.broker.EmbeddedKafka, which needs java and, once, mvn).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from connector import native
from connector.broker import EmbeddedKafka
from connector.broker.registry import EmbeddedSchemaRegistry
from connector.serde.registry import SchemaRegistry

TopicFactory = Callable[..., str]
ProducerFactory = Callable[..., Producer]
ConsumerFactory = Callable[..., Consumer]

_ADMIN_TIMEOUT_S = 30.0


def pytest_report_header(config: pytest.Config) -> str:
    # (A stale build never gets here: importing the package refuses it.)
    return native.status().describe()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """bootstrap.servers of the session's cluster: $KAFKA_BOOTSTRAP_SERVERS or an embedded one."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    with _sigterm_as_interrupt(), EmbeddedKafka() as kafka:
        yield kafka.bootstrap_servers


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (CI cancel, `kill`) like Ctrl-C so fixtures tear down and the broker stops.

    Without it the JVM still dies with us (PR_SET_PDEATHSIG) but its temp directory stays.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def schema_registry_url() -> Iterator[str]:
    """A real Confluent-compatible registry: $SCHEMA_REGISTRY_URL, else an embedded Apicurio."""
    external = os.environ.get("SCHEMA_REGISTRY_URL")
    if external:
        yield external
        return
    with EmbeddedSchemaRegistry() as registry:
        yield registry.url


@pytest.fixture
def schema_registry(schema_registry_url: str) -> Iterator[SchemaRegistry]:
    """The connector's registry access bound to the session's registry."""
    registry = SchemaRegistry.from_url(schema_registry_url)
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> AdminClient:
    """An AdminClient bound to the session's cluster."""
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def topic_factory(kafka_admin: AdminClient) -> Iterator[TopicFactory]:
    """topic_factory(name_prefix="t", partitions=1, config=None) -> a new, unique topic name."""
    created: list[str] = []

    def create(
        name_prefix: str = "t", partitions: int = 1, config: Mapping[str, str] | None = None
    ) -> str:
        name = f"{name_prefix}-{uuid.uuid4().hex[:12]}"
        new_topic = NewTopic(
            name, num_partitions=partitions, replication_factor=1, config=dict(config or {})
        )
        futures = kafka_admin.create_topics([new_topic], operation_timeout=_ADMIN_TIMEOUT_S)
        futures[name].result(timeout=_ADMIN_TIMEOUT_S)
        created.append(name)
        _wait_for_leaders(kafka_admin, name, partitions)
        return name

    yield create

    if created:
        for future in kafka_admin.delete_topics(
            created, operation_timeout=_ADMIN_TIMEOUT_S
        ).values():
            # Cleanup is best effort: a test that already deleted its topic is not a failure.
            with contextlib.suppress(KafkaException):
                future.result(timeout=_ADMIN_TIMEOUT_S)


@pytest.fixture
def create_topic(kafka_admin: AdminClient) -> Iterator[Callable[[str, int, dict[str, str]], None]]:
    """create_topic(name, partitions, config): a topic with an exact name (pipelines name their
    topics from settings); deleted at teardown."""
    created: list[str] = []

    def create(name: str, partitions: int, config: dict[str, str]) -> None:
        kafka_admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name].result(30)
        created.append(name)

    yield create
    if created:
        kafka_admin.delete_topics(created)


@pytest.fixture
def producer_factory(kafka_bootstrap: str) -> Iterator[ProducerFactory]:
    """producer_factory(config=None) -> a Producer with acks=all; config entries override."""
    producers: list[Producer] = []

    def create(config: Mapping[str, Any] | None = None) -> Producer:
        producer = Producer(
            {"bootstrap.servers": kafka_bootstrap, "acks": "all", "linger.ms": 5, **(config or {})}
        )
        producers.append(producer)
        return producer

    yield create

    for producer in producers:
        producer.flush(10)


@pytest.fixture
def consumer_factory(kafka_bootstrap: str) -> Iterator[ConsumerFactory]:
    """consumer_factory(config=None) -> a Consumer in its own group, reading from the start.

    Defaults: a unique group.id, auto.offset.reset=earliest, enable.auto.commit=false;
    config entries override them. Consumers are closed at teardown.
    """
    consumers: list[Consumer] = []

    def create(config: Mapping[str, Any] | None = None) -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "group.id": f"test-{uuid.uuid4().hex[:12]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                **(config or {}),
            }
        )
        consumers.append(consumer)
        return consumer

    yield create

    for consumer in consumers:
        # A test may have closed its consumer already; closing twice raises RuntimeError.
        with contextlib.suppress(RuntimeError):
            consumer.close()


def _wait_for_leaders(admin: AdminClient, topic: str, partitions: int) -> None:
    """Wait until metadata shows every partition of `topic` with a leader, so clients can use it."""
    deadline = time.monotonic() + _ADMIN_TIMEOUT_S
    while True:
        metadata = admin.list_topics(topic=topic, timeout=_ADMIN_TIMEOUT_S).topics.get(topic)
        if (
            metadata is not None
            and metadata.error is None
            and len(metadata.partitions) == partitions
            and all(p.leader >= 0 for p in metadata.partitions.values())
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} has no leader for every partition")
        time.sleep(0.05)
