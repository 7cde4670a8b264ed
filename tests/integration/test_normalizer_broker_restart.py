"""The normalizer survives broker restarts (graceful and hard, twice, mid-stream, and during the
commit of a transaction) with no process exit and exactly the commands of a crash-free run.

Each test has a broker of its own: restarting the session's broker would disturb other tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from connector.broker import EmbeddedKafka
from connector.config import Settings
from connector.kafka.transaction import BoundedTransactions
from connector.runtime.assemble import normalizer_worker
from connector.sample import SampleSpec, generate
from connector.sample.publish import publish_sample
from connector.serde.catalog import ACTIVITY_SCHEMA, WEBINAR_SCHEMA
from connector.serde.codec import Framing
from connector.serde.topic import TopicFormat, build_codec
from tests.pipeline_helpers import (
    CATALOG,
    decode_commands,
    pipeline_env,
    read_topic,
    reference_commands,
    settings_for,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def broker() -> Iterator[EmbeddedKafka]:
    with EmbeddedKafka() as kafka:
        yield kafka


def _create_topics(settings: Settings) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    futures = admin.create_topics([
        NewTopic(settings.topics.activity, 3, 1, config={"cleanup.policy": "delete"}),
        NewTopic(settings.topics.webinars, 3, 1, config={"cleanup.policy": "compact"})])
    for future in futures.values():
        future.result(30)


def _publish(settings: Settings, seed: int) -> None:
    """One more sample (its own webinars: ids carry the seed) onto the platform topics."""
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers,
                         "enable.idempotence": True, "linger.ms": 20})
    publish_sample(
        producer, generate(SampleSpec(seed=seed, webinars=2, people_per_webinar=100)),
        activity_topic=settings.topics.activity, webinar_topic=settings.topics.webinars,
        activity_encoder=build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a", CATALOG),
        webinar_encoder=build_codec(TopicFormat(Framing.RAW, WEBINAR_SCHEMA), "w", CATALOG))


def _command_ids(settings: Settings) -> Counter[str] | None:
    """The commandIds on the commands topic; None while the broker does not answer (a test
    client, not a worker: it is asked again)."""
    try:
        messages = read_topic(settings.kafka.bootstrap_servers, settings.topics.commands)
    except KafkaException:
        return None
    return Counter(cid for _, _, cid in decode_commands(messages))


def _env(broker: EmbeddedKafka) -> dict[str, str]:
    """Small transactions: many commits, so a restart finds some under way."""
    return pipeline_env(broker.bootstrap_servers,
                        CONNECTOR_NORMALIZER__MAX_RECORDS_PER_TRANSACTION="50")


def _stream_with_restarts(broker: EmbeddedKafka, settings: Settings,
                          restart: Callable[[], None], alive: Callable[[], bool]) -> None:
    """Publish in three parts with a broker restart after each of the first two, each while the
    normalizer works on what came before; then wait for the exact reference output."""
    _create_topics(settings)
    _publish(settings, seed=101)
    for seed in (102, 103):
        wait_for(lambda: bool(_command_ids(settings)), 90, "commands")
        assert alive(), "the normalizer exited"
        restart()
        _publish(settings, seed=seed)
    expected = reference_commands(settings)
    got: Counter[str] = Counter()

    def exact() -> bool:
        nonlocal got
        got = _command_ids(settings) or got
        return got == expected

    try:
        wait_for(exact, 180, "the reference command set")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {sum((expected - got).values())} missing, "
                             f"{sum((got - expected).values())} extra") from None
    assert alive(), "the normalizer exited"


@pytest.mark.parametrize("graceful", [True, False], ids=["graceful", "hard"])
def test_a_normalizer_process_survives_two_broker_restarts(
        broker: EmbeddedKafka, graceful: bool, tmp_path: Path) -> None:
    env = _env(broker)
    settings = settings_for(env)
    log_path = tmp_path / "normalizer.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "connector", "run", "normalizer"],
                                   env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        _stream_with_restarts(broker, settings, lambda: broker.restart(graceful=graceful),
                              lambda: process.poll() is None)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log_path.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    text = log_path.read_text()
    assert "Traceback" not in text, text[-3000:]


class _RestartDuringCommit(BoundedTransactions):
    """Kills the broker (SIGKILL) right before the given commits end, on the committer thread:
    the transaction's records are written, its offsets and EndTxn are not."""

    def __init__(self, broker: EmbeddedKafka, at: set[int]) -> None:
        super().__init__()
        self.broker, self.at, self.ends = broker, at, 0
        self.restarted = 0

    def end(self, producer: Any, offsets: Any, group: Any) -> None:
        self.ends += 1
        if self.ends in self.at:
            self.broker.restart(graceful=False)
            self.restarted += 1
        super().end(producer, offsets, group)


def test_a_broker_killed_during_a_commit_loses_and_duplicates_nothing(
        broker: EmbeddedKafka) -> None:
    settings = settings_for(_env(broker))
    stop = threading.Event()
    worker = normalizer_worker(settings, stop)
    transactions = _RestartDuringCommit(broker, at={3, 12})
    worker.transactions = transactions
    failure: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:
            failure.append(exc)

    _create_topics(settings)
    for seed in (111, 112, 113):
        _publish(settings, seed=seed)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        expected = reference_commands(settings)
        wait_for(lambda: transactions.restarted == 2 and _command_ids(settings) == expected,
                 240, "both restarts and the reference command set")
        assert thread.is_alive() and not failure
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive() and not failure, failure
