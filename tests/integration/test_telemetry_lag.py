"""Consumer lag on a real broker: the gauge follows what was produced minus what was consumed,
and a broker that goes away makes a refresh warn, not raise."""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from connector.broker import EmbeddedKafka
from connector.telemetry import Telemetry

pytestmark = pytest.mark.integration

_POLLS = 200


def _produce(producer: Any, topic: str, partition: int, count: int) -> None:
    for i in range(count):
        producer.produce(topic, value=f"v{i}".encode(), partition=partition)
    assert producer.flush(30) == 0


def _consume(consumer: Any, count: int, consumed: dict[int, int]) -> None:
    """Consume exactly ``count`` records (counting them per partition)."""
    got = 0
    for _ in range(_POLLS):
        if got == count:
            return
        for message in consumer.consume(count - got, 0.25):
            if message.error() is None:
                consumed[message.partition()] = consumed.get(message.partition(), 0) + 1
                got += 1
    raise AssertionError(f"consumed {got} of {count} records")


def _lag_points(telemetry: Telemetry, topic: str) -> dict[int, int]:
    points = telemetry.metric_points("connector.consumer.lag")
    return {int(dict(k)["partition"]): v for k, v in points.items() if dict(k)["topic"] == topic}


def _settled_lag(telemetry: Telemetry, monitor: Any, consumer: Any, topic: str,
                 expected: dict[int, int]) -> dict[int, int]:
    """Refresh until the lag equals ``expected`` (the fetcher updates watermarks in the
    background) or the poll budget runs out; return the last value seen."""
    lag: dict[int, int] = {}
    for _ in range(_POLLS):
        monitor.refresh(consumer)
        lag = _lag_points(telemetry, topic)
        if lag == expected:
            break
        time.sleep(0.05)  # a bounded wait for the background fetcher, not a timing assertion
    return lag


def test_lag_is_produced_minus_consumed_per_partition(
        topic_factory: Any, producer_factory: Any, consumer_factory: Any) -> None:
    topic = topic_factory("lag", partitions=2)
    producer = producer_factory()
    _produce(producer, topic, 0, 30)
    _produce(producer, topic, 1, 10)
    produced = {0: 30, 1: 10}

    consumer = consumer_factory()
    consumer.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
    with Telemetry.for_tests() as telemetry:
        monitor = telemetry.lag_monitor("lag-test")
        consumed: dict[int, int] = {}
        _consume(consumer, 16, consumed)
        assert set(consumed) <= {0, 1} and sum(consumed.values()) == 16
        expected = {p: produced[p] - consumed.get(p, 0) for p in produced if p in consumed}
        assert _settled_lag(telemetry, monitor, consumer, topic, expected) == expected

        _produce(producer, topic, 1, 7)  # more arrives while we are behind
        produced[1] += 7
        _consume(consumer, sum(produced.values()) - 16, consumed)
        assert consumed == produced
        assert _settled_lag(telemetry, monitor, consumer, topic, {0: 0, 1: 0}) == {0: 0, 1: 0}


def test_lag_before_consuming_uses_the_committed_offset(
        topic_factory: Any, producer_factory: Any, consumer_factory: Any) -> None:
    topic = topic_factory("lag", partitions=1)
    _produce(producer_factory(), topic, 0, 20)
    first = consumer_factory({"group.id": f"{topic}-g"})
    first.assign([TopicPartition(topic, 0, 0)])
    _consume(first, 8, {})
    first.commit(asynchronous=False)
    first.close()

    second = consumer_factory({"group.id": f"{topic}-g"})
    second.assign([TopicPartition(topic, 0)])  # from the committed offset
    with Telemetry.for_tests() as telemetry:
        monitor = telemetry.lag_monitor(f"{topic}-g")
        lag: dict[int, int] = {}
        for _ in range(_POLLS):
            monitor.refresh(second)
            lag = _lag_points(telemetry, topic)
            if lag:
                break
            time.sleep(0.05)  # nothing is consumed: the background fetcher learns the watermark
        assert lag == {0: 12}


def _wait_until_exited(kafka: EmbeddedKafka) -> None:
    for _ in range(_POLLS):
        if not kafka.is_running():
            return
        time.sleep(0.25)  # a bounded wait for the JVM's shutdown, not a timing assertion
    raise AssertionError("the broker did not stop")


def _wait_for_high_watermark(consumer: Any, tp: TopicPartition, high: int) -> None:
    for _ in range(_POLLS):
        if consumer.get_watermark_offsets(tp, cached=True)[1] == high:
            return
        time.sleep(0.05)  # a bounded wait for the background fetcher, not a timing assertion
    raise AssertionError(f"the consumer did not fetch {tp}")


def test_lag_refresh_with_the_broker_away_warns_and_recovers(
        caplog: pytest.LogCaptureFixture) -> None:
    # A private broker: stopping the session's would break every other test's clients.
    with EmbeddedKafka() as kafka:
        bootstrap = kafka.bootstrap_servers
        topic, group = f"lag-away-{uuid.uuid4().hex[:12]}", f"lag-away-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive for its future
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        _produce(Producer({"bootstrap.servers": bootstrap, "acks": "all"}), topic, 0, 20)
        config = {"bootstrap.servers": bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "reconnect.backoff.max.ms": 500}
        first = Consumer(config)
        first.assign([TopicPartition(topic, 0, 0)])
        _consume(first, 8, {})
        first.commit(asynchronous=False)
        first.close()

        # Assigned and fetching, nothing consumed yet (as after a rebalance): the lag needs
        # committed(), a broker round trip, which timed out and ended both workers in issue 17.
        consumer = Consumer(config)
        consumer.assign([TopicPartition(topic, 0)])
        try:
            # The fetcher runs first, so what is tested below is the monitor's committed() and
            # not how soon librdkafka retries its own offset query for a never-polled consumer.
            _wait_for_high_watermark(consumer, TopicPartition(topic, 0), 20)
            with Telemetry.for_tests() as telemetry:
                monitor = telemetry.lag_monitor(group)
                pid = kafka.pid
                assert pid is not None
                os.kill(pid, signal.SIGTERM)  # a routine, graceful broker stop
                _wait_until_exited(kafka)

                assert monitor.refresh(consumer) == {}  # no exception; nothing known to report
                warnings = [r.getMessage() for r in caplog.records
                            if r.name == "connector.telemetry.lag" and r.levelno == logging.WARNING]
                assert len(warnings) == 1, warnings
                assert warnings[0].startswith(
                    f"telemetry.lag_refresh_failed group={group} call=committed ")

                kafka.restart()  # same port and data
                lag: dict[int, int] = {}
                for _ in range(_POLLS):
                    monitor.refresh(consumer)
                    lag = _lag_points(telemetry, topic)
                    if lag:
                        break
                    time.sleep(0.05)  # reconnecting and fetching in the background
                assert lag == {0: 12}
        finally:
            consumer.close()
