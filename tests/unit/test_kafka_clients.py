"""Client configs by role, and librdkafka's log lines through the connector's logger.

Real confluent-kafka clients, no broker: a client without bootstrap servers, or one pointed at a
closed local port, still logs (CONFWARN when it is built, FAIL when its connection is refused).
"""

from __future__ import annotations

import io
import json
import logging
import socket
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer

from connector.config import KafkaSettings
from connector.kafka import clients
from connector.kafka.logs import CLIENT_LOGGER, client_logger
from connector.kafka.roles import (
    CONSUMER_ONLY_PROPERTIES,
    PRODUCER_ONLY_PROPERTIES,
    for_admin,
    for_consumer,
    for_producer,
)
from connector.telemetry import configure_logging

#: A valid value of every role-only property (librdkafka's default where it has one).
SAMPLE_VALUES = {
    # consumer-only
    "auto.commit.enable": "true", "auto.commit.interval.ms": "5000",
    "auto.offset.reset": "earliest", "check.crcs": "false", "consume.callback.max.messages": "0",
    "coordinator.query.interval.ms": "600000", "enable.auto.commit": "true",
    "enable.auto.offset.store": "true", "enable.partition.eof": "false",
    "fetch.error.backoff.ms": "500", "fetch.max.bytes": "52428800",
    "fetch.message.max.bytes": "1048576", "fetch.min.bytes": "1", "fetch.queue.backoff.ms": "1000",
    "fetch.wait.max.ms": "500", "group.id": "g", "group.instance.id": "i",
    "group.protocol": "classic", "group.protocol.type": "consumer",
    "group.remote.assignor": "range",
    "heartbeat.interval.ms": "3000", "isolation.level": "read_committed",
    "max.partition.fetch.bytes": "1048576", "max.poll.interval.ms": "300000",
    "max.poll.records": "500", "offset.store.method": "broker", "offset.store.path": ".",
    "offset.store.sync.interval.ms": "-1", "partition.assignment.strategy": "range",
    "queued.max.messages.kbytes": "65536", "queued.min.messages": "100000",
    "session.timeout.ms": "45000", "share.acknowledgement.mode": "implicit",
    # producer-only
    "acks": "all", "batch.num.messages": "10000", "batch.size": "1000000",
    "compression.codec": "none", "compression.level": "-1", "compression.type": "none",
    "delivery.report.only.error": "false", "delivery.timeout.ms": "30000",
    "enable.gapless.guarantee": "false", "enable.idempotence": "true", "linger.ms": "5",
    "message.send.max.retries": "10", "message.timeout.ms": "30000",
    "partitioner": "consistent_random", "produce.offset.report": "false",
    "queue.buffering.backpressure.threshold": "1", "queue.buffering.max.kbytes": "1048576",
    "queue.buffering.max.messages": "100000", "queue.buffering.max.ms": "5",
    "queuing.strategy": "fifo", "request.required.acks": "-1", "request.timeout.ms": "30000",
    "retries": "10",
    "sticky.partitioning.linger.ms": "10", "transaction.timeout.ms": "60000",
    "transactional.id": "t",
}
COMMON = {"socket.keepalive.enable": "true", "allow.auto.create.topics": "false"}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_sample_values_cover_every_role_only_property() -> None:
    assert set(SAMPLE_VALUES) == CONSUMER_ONLY_PROPERTIES | PRODUCER_ONLY_PROPERTIES
    assert not CONSUMER_ONLY_PROPERTIES & PRODUCER_ONLY_PROPERTIES


def test_extra_goes_to_the_clients_of_its_role_and_every_config_carries_the_logger() -> None:
    kafka = KafkaSettings(extra={**SAMPLE_VALUES, **COMMON})
    common, consumer, producer = (kafka.client_config(), kafka.consumer_config(),
                                  kafka.producer_config())
    for config in (common, consumer, producer):
        assert config["logger"] is logging.getLogger(CLIENT_LOGGER)
        assert config["bootstrap.servers"] == "localhost:9092"
        assert all(config[key] == value for key, value in COMMON.items())
    assert not (CONSUMER_ONLY_PROPERTIES | PRODUCER_ONLY_PROPERTIES) & set(common)
    assert set(consumer) >= CONSUMER_ONLY_PROPERTIES
    assert not PRODUCER_ONLY_PROPERTIES & set(consumer)
    assert set(producer) >= PRODUCER_ONLY_PROPERTIES
    assert not CONSUMER_ONLY_PROPERTIES & set(producer)
    assert consumer["session.timeout.ms"] == "45000" and producer["linger.ms"] == "5"
    assert kafka.CONSUMER_ONLY_PROPERTIES is CONSUMER_ONLY_PROPERTIES


def test_helpers_pick_their_role_from_any_config() -> None:
    config = {"bootstrap.servers": "b:9092", "session.timeout.ms": "6000", "linger.ms": "3"}
    assert for_consumer(config) == {"bootstrap.servers": "b:9092", "session.timeout.ms": "6000"}
    assert for_producer(config) == {"bootstrap.servers": "b:9092", "linger.ms": "3"}
    assert for_admin(config) == {"bootstrap.servers": "b:9092"}


def _role_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == CLIENT_LOGGER
            and "facility=CONFWARN" in r.getMessage()
            and ("is a consumer property" in r.getMessage()
                 or "is a producer property" in r.getMessage())]


@pytest.mark.parametrize("name", sorted(CONSUMER_ONLY_PROPERTIES))
def test_librdkafka_calls_each_consumer_only_property_so(
        name: str, caplog: pytest.LogCaptureFixture) -> None:
    # The warning is queued while the client is built, so the first poll serves it.
    with caplog.at_level(logging.WARNING, logger=CLIENT_LOGGER):
        Producer({name: SAMPLE_VALUES[name], "logger": client_logger()}).poll(0)
    assert any("is a consumer property" in line for line in _role_warnings(caplog)), name


@pytest.mark.parametrize("name", sorted(PRODUCER_ONLY_PROPERTIES))
def test_librdkafka_calls_each_producer_only_property_so(
        name: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=CLIENT_LOGGER):
        consumer = Consumer({name: SAMPLE_VALUES[name], "group.id": "g",
                             "logger": client_logger()})
        consumer.poll(0)
        consumer.close()
    assert any("is a producer property" in line for line in _role_warnings(caplog)), name


def test_clients_built_from_their_role_config_warn_of_no_property(
        caplog: pytest.LogCaptureFixture) -> None:
    # confluent-kafka's Producer reads this one itself and wants a bool, not librdkafka's text.
    extra = {k: v for k, v in SAMPLE_VALUES.items() if k != "delivery.report.only.error"}
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", extra={**extra, **COMMON})
    with caplog.at_level(logging.WARNING, logger=CLIENT_LOGGER):
        Producer(kafka.producer_config()).poll(0)
        consumer = Consumer(kafka.consumer_config())
        consumer.poll(0)
        consumer.close()
    assert _role_warnings(caplog) == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_is_logged_through_the_connector_logger(
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{_closed_port()}")
    producer = Producer(kafka.producer_config())

    def failures() -> list[logging.LogRecord]:
        return [r for r in caplog.records
                if r.name == CLIENT_LOGGER and "facility=FAIL" in r.getMessage()]

    with caplog.at_level(logging.INFO, logger=CLIENT_LOGGER):
        deadline = time.monotonic() + 10  # a bound, not a pace: the refusal comes at once
        while not failures() and time.monotonic() < deadline:
            producer.poll(0.1)
    assert failures(), "librdkafka's connection failure never reached the logger"
    record = failures()[0]
    assert record.levelno == logging.ERROR  # syslog 3
    message = record.getMessage()
    assert message.startswith(
        "librdkafka facility=FAIL client=webinar-hubspot-connector#producer-"), message
    assert " thread=" in message and ' text="' in message and "Connection refused" in message
    assert "%3|" not in capfd.readouterr().err  # nothing raw on stderr


def test_librdkafka_lines_in_the_text_and_json_formats() -> None:
    # As confluent-kafka calls it (src/confluent_kafka/src/confluent_kafka.c, log_cb).
    def emit() -> None:
        client_logger().log(logging.WARNING, "%s [%s] %s", "CONFWARN", "rdkafka#producer-1",
                            '[thrd:app]: Configuration property session.timeout.ms is a '
                            'consumer property and will be "ignored" by this producer instance')

    text = io.StringIO()
    configure_logging("INFO", stream=text)
    emit()
    line = text.getvalue().strip()
    assert " WARNING connector.kafka.client librdkafka facility=CONFWARN " in line, line
    assert line.endswith('client=rdkafka#producer-1 thread=app text="Configuration property '
                         'session.timeout.ms is a consumer property and will be \\"ignored\\" '
                         'by this producer instance"'), line

    lines = io.StringIO()
    configure_logging("INFO", json=True, stream=lines)
    emit()
    data = json.loads(lines.getvalue())
    assert (data["event"], data["facility"], data["client"], data["thread"]) == (
        "librdkafka", "CONFWARN", "rdkafka#producer-1", "app")
    assert data["text"] == ("Configuration property session.timeout.ms is a consumer property "
                            'and will be "ignored" by this producer instance')
    assert data["level"] == "WARNING" and data["logger"] == CLIENT_LOGGER


def test_a_line_without_a_thread_name_and_other_records_of_the_logger() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    client_logger().error("%s [%s] %s", "FAIL", "rdkafka#consumer-2", "broker down")
    client_logger().info("something else=%s", 1)
    first, second = stream.getvalue().splitlines()
    assert first.endswith(' librdkafka facility=FAIL client=rdkafka#consumer-2 '
                          'text="broker down"'), first
    assert second.endswith(" connector.kafka.client something else=1"), second


class FullQueue:
    """A producer whose local queue is full for its first ``full`` produce() calls."""

    def __init__(self, full: int) -> None:
        self.full = full
        self.produced: list[dict[str, object]] = []
        self.polls = 0

    def produce(self, **record: object) -> None:
        if self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")
        self.produced.append(record)

    def poll(self, timeout: float) -> int:
        self.polls += 1
        return 0


def test_produce_waiting_lets_deliveries_drain_a_full_queue() -> None:
    producer = FullQueue(full=2)
    clients.produce_waiting(producer, topic="t", value=b"v")
    assert producer.produced == [{"topic": "t", "value": b"v"}]
    assert producer.polls == 2


def test_produce_waiting_gives_up_with_a_kafka_error_when_the_queue_stays_full() -> None:
    with pytest.raises(clients.KafkaException) as raised:
        clients.produce_waiting(FullQueue(full=10 ** 9), timeout=0.0, topic="t", value=b"v")
    assert raised.value.args[0].code() == clients.KafkaError._QUEUE_FULL
