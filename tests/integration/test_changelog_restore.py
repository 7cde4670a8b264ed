"""Restoring a changelog partition on the real broker: committed state only, and all of it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import Producer

from connector.runtime import changelog


def _producer(bootstrap: str) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap,
                         "transactional.id": f"test-{uuid.uuid4().hex[:8]}"})
    producer.init_transactions(30)
    return producer


def _write(producer: Producer, topic: str, keys: range) -> None:
    for n in keys:
        producer.produce(topic, key=f"k{n}".encode(), value=orjson.dumps(n), partition=0)
    producer.flush(30)


def test_restore_reads_a_transaction_committed_after_it_started(
        kafka_bootstrap: str, create_topic: Callable[[str, int, dict[str, str]], None]) -> None:
    """A previous owner's last transaction may still lack its commit markers when the next
    owner restores (its input offsets already committed): the restore must wait for them,
    not stop at the last stable offset."""
    topic = f"restore-{uuid.uuid4().hex[:8]}"
    create_topic(topic, 1, {"cleanup.policy": "compact"})
    config = {"bootstrap.servers": kafka_bootstrap}
    producer = _producer(kafka_bootstrap)
    producer.begin_transaction()
    _write(producer, topic, range(5))
    producer.commit_transaction()
    producer.begin_transaction()
    _write(producer, topic, range(5, 8))  # written, not committed yet
    restored: list[tuple[str, Any]] = []
    reader = threading.Thread(target=lambda: restored.extend(
        changelog.read_partition(config, topic, 0, timeout=60)))
    reader.start()
    reader.join(1.0)
    assert reader.is_alive(), f"the restore stopped before the open transaction: {restored}"
    producer.commit_transaction()
    reader.join(60)
    assert not reader.is_alive()
    assert restored == [(f"k{n}", n) for n in range(8)]


def test_restore_skips_aborted_transactions(
        kafka_bootstrap: str, create_topic: Callable[[str, int, dict[str, str]], None]) -> None:
    topic = f"restore-{uuid.uuid4().hex[:8]}"
    create_topic(topic, 1, {"cleanup.policy": "compact"})
    producer = _producer(kafka_bootstrap)
    for keys, commit in ((range(3), True), (range(3, 6), False), (range(6, 7), True)):
        producer.begin_transaction()
        _write(producer, topic, keys)
        if commit:
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    restored = list(changelog.read_partition({"bootstrap.servers": kafka_bootstrap}, topic, 0))
    assert restored == [("k0", 0), ("k1", 1), ("k2", 2), ("k6", 6)]
