"""The embedded broker is a real Kafka: it answers, stores, does transactions and compaction."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from connector.broker import EmbeddedKafka
from tests.conftest import ConsumerFactory, ProducerFactory, TopicFactory

pytestmark = pytest.mark.integration

# Deadlines only bound how long a broken broker can hang a test; nothing asserts on time.
_DEADLINE_S = 30.0


def consume(consumer: Consumer, topic: str, *, until: bytes, group: bool = True) -> list[Message]:
    """Collect records until one with value `until` arrives (or fail).

    group=False assigns partition 0 directly, skipping the consumer-group join.
    """
    if group:
        consumer.subscribe([topic])
    else:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    received: list[Message] = []
    deadline = time.monotonic() + _DEADLINE_S
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                continue
            raise AssertionError(f"consume error: {error}")
        received.append(message)
        if message.value() == until:
            return received
    raise AssertionError(
        f"{until!r} not consumed from {topic}; got {[m.value() for m in received]}"
    )


def produce_and_flush(
    producer: Producer, topic: str, value: bytes, key: bytes | None = None
) -> None:
    errors: list[KafkaError | None] = []
    producer.produce(topic, value, key=key, on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(_DEADLINE_S) == 0, "record still in flight after flush"
    assert errors == [None]


def test_broker_answers_metadata(kafka_admin: AdminClient) -> None:
    metadata = kafka_admin.list_topics(timeout=_DEADLINE_S)

    assert len(metadata.brokers) >= 1
    assert metadata.cluster_id


def test_produced_record_is_consumed_back(
    topic_factory: TopicFactory,
    producer_factory: ProducerFactory,
    consumer_factory: ConsumerFactory,
) -> None:
    topic = topic_factory("roundtrip")
    producer = producer_factory()
    producer.produce(topic, b"hello", key=b"k1", headers=[("h", b"v")])
    assert producer.flush(_DEADLINE_S) == 0

    [message] = consume(consumer_factory(), topic, until=b"hello")

    assert message.key() == b"k1"
    assert message.headers() == [("h", b"v")]
    assert message.offset() == 0


def test_read_committed_consumer_skips_aborted_transaction(
    topic_factory: TopicFactory,
    producer_factory: ProducerFactory,
    consumer_factory: ConsumerFactory,
) -> None:
    topic = topic_factory("txn")
    producer = producer_factory({"transactional.id": f"txn-{uuid.uuid4().hex}"})
    producer.init_transactions(_DEADLINE_S)
    for value, commit in ((b"committed-1", True), (b"aborted", False), (b"committed-2", True)):
        producer.begin_transaction()
        producer.produce(topic, value)
        # Flush first: abort_transaction() purges unsent records, and we want the aborted
        # record written to the log so that only the isolation level can hide it.
        assert producer.flush(_DEADLINE_S) == 0
        if commit:
            producer.commit_transaction(_DEADLINE_S)
        else:
            producer.abort_transaction(_DEADLINE_S)

    committed = consume(
        consumer_factory({"isolation.level": "read_committed"}), topic, until=b"committed-2"
    )
    uncommitted = consume(
        consumer_factory({"isolation.level": "read_uncommitted"}), topic, until=b"committed-2"
    )

    assert [m.value() for m in committed] == [b"committed-1", b"committed-2"]
    # The aborted record really reached the log; only the isolation level hides it.
    assert [m.value() for m in uncommitted] == [b"committed-1", b"aborted", b"committed-2"]


def test_compacted_topic_enforces_keys(
    topic_factory: TopicFactory, kafka_admin: AdminClient, producer_factory: ProducerFactory
) -> None:
    topic = topic_factory("changelog", config={"cleanup.policy": "compact"})
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = kafka_admin.describe_configs([resource])[resource].result(timeout=_DEADLINE_S)
    producer = producer_factory({"enable.idempotence": False, "retries": 0})

    produce_and_flush(producer, topic, b"v1", key=b"attendee-1")
    errors: list[KafkaError | None] = []
    producer.produce(topic, b"no key", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(_DEADLINE_S)

    assert configs["cleanup.policy"].value == "compact"
    # A compacted log rejects keyless records: proof the policy is live, not just stored.
    assert [e.code() if e else None for e in errors] == [KafkaError.INVALID_RECORD]


def test_restart_keeps_data_and_address() -> None:
    # A dedicated broker: restarting the session broker would disturb other tests' clients.
    with EmbeddedKafka() as kafka:
        bootstrap = kafka.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topic = f"restart-{uuid.uuid4().hex[:12]}"
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=_DEADLINE_S)
        produce_and_flush(Producer({"bootstrap.servers": bootstrap, "acks": "all"}), topic, b"kept")
        pid_before = kafka.pid

        kafka.restart()

        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "restart"})
        try:
            [message] = consume(consumer, topic, until=b"kept", group=False)
        finally:
            consumer.close()
        assert kafka.bootstrap_servers == bootstrap
        assert kafka.pid is not None and kafka.pid != pid_before
        assert message.offset() == 0
        workdir = kafka.workdir

    assert not kafka.is_running()
    assert not workdir.exists()
