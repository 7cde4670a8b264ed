"""SinkWorker when Kafka misbehaves (fake consumer and producer, fake clock): commits that fail
or get no answer, dead letters that are not delivered, a producer that fails fatally, a close
that hangs, a fatal consume error; progress reports; the start-up wait for the broker."""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from connector.config import KafkaSettings, Settings, TopicSettings
from connector.hubspot import HubSpotClient
from connector.normalize.command import Attendance, Command, EventUpsert
from connector.runtime import sink as runner
from connector.serde.topic import TopicDecoder
from connector.sink.apply import Applier
from connector.sink.batch import Batcher
from connector.sink.budget import RateBudget
from connector.sink.errors import DeadLetterDeliveryError, KafkaUnavailableError
from connector.sink.intake import Intake
from connector.sink.options import SinkOptions
from connector.sink.park import ParkingLot
from connector.sink.retry import RetryPolicy
from connector.sink.worker import SinkWorker
from connector.telemetry.progress import ProgressWatch
from tests.fakes import FakeMessage
from tests.unit.test_sink_worker import CODEC, TOKEN, TOPIC, Clock, Consumer, HubSpot, message

DLQ = f"{TOPIC}.dlq"


class FlakyConsumer(Consumer):
    """Commits answered with an error (``fail``), not at all (``silent``), or confirmed."""

    def __init__(self, clock: Clock, commands: list[tuple[int, Command]],
                 extra: Sequence[FakeMessage] = ()) -> None:
        super().__init__(clock, commands)
        for m in extra:
            self.queues.setdefault(m.partition(), deque()).append(m)
            self.ends[m.partition()] = m.offset() + 1
            self.next.setdefault(m.partition(), 0)
        self.fail = 0
        self.silent = False
        self.commits: list[dict[int, int]] = []
        self.closed = threading.Event()
        self.close_blocks: threading.Event | None = None

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous
        self.commits.append({tp.partition: tp.offset for tp in offsets})
        if self.silent:
            return
        if self.fail:
            self.fail -= 1
            self.answers.append([])  # marker: answered with an error
            return
        super().commit(offsets, asynchronous)

    def consume(self, count: int, timeout: float) -> list[FakeMessage]:
        answers, self.answers = self.answers, []
        for offsets in answers:
            if offsets:
                self.on_commit(None, offsets)
            else:
                self.on_commit(KafkaError(KafkaError._WAIT_COORD), None)
        return super().consume(count, timeout)

    def close(self) -> None:
        if self.close_blocks is not None:
            self.close_blocks.wait(30)
        self.closed.set()


class Producer:
    """Delivers at the next poll; ``timeouts`` deliveries fail with _MSG_TIMED_OUT first,
    ``full`` produce calls raise BufferError, ``fatal`` fails every delivery fatally."""

    def __init__(self) -> None:
        self.delivered: list[dict[str, Any]] = []
        self.pending: list[tuple[dict[str, Any], Any]] = []
        self.produced = 0
        self.timeouts = 0
        self.full = 0
        self.fatal = False

    def produce(self, on_delivery: Any, **kwargs: Any) -> None:
        if self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")
        self.produced += 1
        self.pending.append((kwargs, on_delivery))

    def poll(self, timeout: float) -> int:
        pending, self.pending = self.pending, []
        for kwargs, callback in pending:
            if self.fatal:
                callback(KafkaError(KafkaError._FATAL, "fenced", fatal=True), None)
            elif self.timeouts:
                self.timeouts -= 1
                callback(KafkaError(KafkaError._MSG_TIMED_OUT), None)
            else:
                self.delivered.append(kwargs)
                callback(None, None)
        return len(pending)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return 0


def build(commands: list[tuple[int, Command]], *, extra: Sequence[FakeMessage] = (),
          producer: Producer | None = None, producers: list[Producer] | None = None,
          stall_after: float = 120.0, **options: Any
          ) -> tuple[SinkWorker, FlakyConsumer, Producer, Clock, ProgressWatch]:
    clock = Clock()
    consumer = FlakyConsumer(clock, commands, extra)
    hubspot = HubSpot(clock)
    budget = RateBudget(window_limit=100, window_seconds=10, daily_limit=None, clock=clock)
    progress = ProgressWatch("sink", stall_after, clock=clock)
    intake = Intake(consumer, SinkOptions(topic=TOPIC, dlq_topic=DLQ, **options),
                    stop=threading.Event(), clock=clock, progress=progress)
    policy = RetryPolicy(budget_seconds=60, clock=clock, sleep=intake.idle,
                         rng=random.Random(1))
    applier = Applier(HubSpotClient(TOKEN, transport=httpx.MockTransport(hubspot)),
                      budget=budget, policy=policy, clock=clock, sleep=intake.idle)
    producer = producer or Producer()
    factory = None
    if producers is not None:
        def factory() -> Producer:
            producers.append(Producer())
            return producers[-1]
    sink = SinkWorker(
        intake, producer=producer, applier=applier, decoder=TopicDecoder(CODEC),
        batcher=Batcher(max_inputs=100, linger_seconds=0.2, clock=clock, max_wait_seconds=10),
        parking=ParkingLot(budget_seconds=60, clock=clock), budget=budget,
        producer_factory=factory)
    consumer.on_commit = sink.on_commit
    sink.start()
    return sink, consumer, producer, clock, progress


def webinar(people: int, partition: int = 0) -> list[tuple[int, Command]]:
    return [(partition, Command("w0", "acct", EventUpsert("W0", "O", "WEBINAR")))] + [
        (partition, Command("w0", "acct", Attendance("REGISTERED", None, f"p{n}@x.io", n)))
        for n in range(people)]


def garbage(partition: int, offset: int) -> FakeMessage:
    return FakeMessage(TOPIC, partition, offset, b"k", b"\x00not a command", timestamp_=(0, 0))


def run_for(sink: SinkWorker, clock: Clock, seconds: float) -> None:
    end = clock.now + seconds
    while clock.now < end:
        sink.step()


def test_failed_commits_are_logged_and_retried_at_the_next_interval(
        caplog: pytest.LogCaptureFixture) -> None:
    sink, consumer, _, clock, _ = build(webinar(5))
    consumer.fail = 2
    with caplog.at_level(logging.WARNING, logger="connector.sink"):
        run_for(sink, clock, 5)
    assert consumer.committed == {0: 6}
    assert sink.offsets.trackers[(TOPIC, 0)].committed == 6  # confirmed by on_commit
    # failed twice, sent again at each interval, then nothing moved: nothing more to commit
    assert len(consumer.commits) == 3 and consumer.commits[-1] == {0: 6}
    assert sum("sink.commit_failed" in r.getMessage() for r in caplog.records) == 2


def test_an_unanswered_commit_is_sent_again_after_the_retry_time() -> None:
    sink, consumer, _, clock, _ = build(webinar(5), commit_retry_seconds=15)
    consumer.silent = True
    run_for(sink, clock, 14)
    assert consumer.commits == [{0: 1}]  # one outstanding at a time: none pile up
    run_for(sink, clock, 2)
    assert consumer.commits == [{0: 1}, {0: 6}]
    consumer.silent = False
    run_for(sink, clock, 16)
    assert sink.offsets.trackers[(TOPIC, 0)].committed == 6
    assert len(consumer.commits) == 3


def test_undelivered_dead_letters_are_produced_again_and_hold_the_commit() -> None:
    producer = Producer()
    producer.timeouts = 2  # the first delivery and its first retry time out
    sink, consumer, _, clock, _ = build(webinar(3), extra=[garbage(0, 4)], producer=producer)
    sink.step()
    run_for(sink, clock, 0.5)
    assert producer.delivered == []
    assert sink.offsets.trackers[(TOPIC, 0)].position() == 4  # not past the undelivered letter
    run_for(sink, clock, 5)
    assert producer.produced == 3 and len(producer.delivered) == 1
    assert producer.delivered[0]["topic"] == DLQ
    assert consumer.committed == {0: 5}
    assert sink.stats["dead_lettered"] == 1


def test_a_full_producer_queue_is_retried_later() -> None:
    producer = Producer()
    producer.full = 3
    sink, consumer, _, clock, _ = build(webinar(1), extra=[garbage(0, 2)], producer=producer)
    run_for(sink, clock, 6)
    assert len(producer.delivered) == 1
    assert consumer.committed == {0: 3}


def test_a_fatal_producer_is_rebuilt_and_the_letters_produced_again() -> None:
    first = Producer()
    first.fatal = True
    producers: list[Producer] = []
    sink, consumer, _, clock, _ = build(webinar(1), extra=[garbage(0, 2), garbage(0, 3)],
                                        producer=first, producers=producers)
    run_for(sink, clock, 4)
    assert len(producers) == 1 and first.delivered == []
    assert len(producers[0].delivered) == 2
    assert consumer.committed == {0: 4}


def test_a_fatal_producer_without_a_factory_ends_the_worker() -> None:
    first = Producer()
    first.fatal = True
    sink, _, _, clock, _ = build(webinar(1), extra=[garbage(0, 2)], producer=first)
    with pytest.raises(DeadLetterDeliveryError, match="failed fatally"):
        run_for(sink, clock, 4)


def test_stop_waits_for_the_final_commit_within_its_bound(
        caplog: pytest.LogCaptureFixture) -> None:
    sink, consumer, _, clock, _ = build(webinar(5), commit_wait_seconds=10)
    sink.step()
    consumer.silent = True
    start = clock.now
    with caplog.at_level(logging.WARNING, logger="connector.sink"):
        sink.request_stop()
        sink.stop()
    assert 10 <= clock.now - start < 11  # gave up after the bound (fake time)
    assert consumer.closed.is_set()
    assert any("sink.final_commit_unconfirmed" in r.getMessage() for r in caplog.records)


def test_stop_confirms_the_final_commit() -> None:
    sink, consumer, _, _clock, _ = build(webinar(5))
    sink.step()
    sink.request_stop()
    sink.stop()
    assert consumer.committed == {0: 6}
    assert sink.offsets.trackers[(TOPIC, 0)].committed == 6


def test_a_hanging_close_is_abandoned_after_its_bound(caplog: pytest.LogCaptureFixture) -> None:
    sink, consumer, _, _clock, _ = build(webinar(1), close_timeout_seconds=0.05)
    consumer.close_blocks = threading.Event()
    try:
        with caplog.at_level(logging.WARNING, logger="connector.sink"):
            sink.stop()
        assert not consumer.closed.is_set()
        assert any("sink.close_timeout" in r.getMessage() for r in caplog.records)
    finally:
        consumer.close_blocks.set()


class FatalMessage:
    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return -1

    def error(self) -> KafkaError:
        return KafkaError(KafkaError._FATAL, "fenced", fatal=True)


def test_a_fatal_consume_error_ends_the_worker_clearly(caplog: pytest.LogCaptureFixture) -> None:
    sink, consumer, _, _clock, _ = build(webinar(1))
    consumer.queues[0].append(FatalMessage())  # type: ignore[arg-type]
    with caplog.at_level(logging.CRITICAL, logger="connector.sink"), \
            pytest.raises(KafkaException):
        sink.run()
    assert any("sink.consumer_fatal" in r.getMessage() for r in caplog.records)
    assert consumer.closed.is_set()


def test_a_sink_whose_commits_never_land_is_stalled_on_kafka_commit() -> None:
    sink, consumer, _, clock, progress = build(webinar(5), stall_after=30)
    consumer.silent = True
    run_for(sink, clock, 29)
    assert not progress.check().stalled  # the work was applied: that was progress
    run_for(sink, clock, 5)
    status = progress.check()
    assert status.stalled and status.waiting_on == "kafka-commit"
    consumer.silent = False
    run_for(sink, clock, 16)  # the retried commit is confirmed
    status = progress.check()
    assert not status.stalled and not status.has_work and status.waiting_on == "nothing"


def test_an_idle_sink_is_never_stalled() -> None:
    sink, _, _, clock, progress = build(webinar(2), stall_after=30)
    run_for(sink, clock, 600)
    status = progress.check()
    assert not status.stalled and not status.has_work and status.lag == 0


# --------------------------------------------------------------------------- start-up wait


def settings() -> Settings:
    return Settings(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),
                    topics=TopicSettings(commands="cmds", commands_dlq="cmds.dlq"))


class Attempts:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, errors: list[KafkaError]) -> None:
        self.errors = errors
        self.calls = 0
        monkeypatch.setattr(runner, "_create_dead_letter_topic", self)

    def __call__(self, _settings: Settings, _timeout: float) -> None:
        self.calls += 1
        if self.errors:
            raise KafkaException(self.errors.pop(0))


def test_a_broker_away_at_start_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    attempts = Attempts(monkeypatch, [KafkaError(KafkaError._TRANSPORT)] * 3
                        + [KafkaError(KafkaError._TIMED_OUT)])
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds

    assert runner.ensure_dead_letter_topic(settings(), clock=clock, sleep=sleep)
    assert attempts.calls == 5
    assert sleeps == [0.5, 1.0, 2.0, 5.0]


def test_a_broker_away_too_long_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    Attempts(monkeypatch, [KafkaError(KafkaError._TRANSPORT)] * 1000)

    def sleep(seconds: float) -> None:
        clock.now += seconds

    with pytest.raises(KafkaUnavailableError, match=r"127\.0\.0\.1:1 did not answer for 60s"):
        runner.ensure_dead_letter_topic(settings(), wait_seconds=60, clock=clock, sleep=sleep)


def test_other_kafka_errors_are_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = Attempts(monkeypatch, [KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)])
    with pytest.raises(KafkaException):
        runner.ensure_dead_letter_topic(settings(), sleep=lambda _s: None)
    assert attempts.calls == 1


def test_stop_ends_the_start_up_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    Attempts(monkeypatch, [KafkaError(KafkaError._TRANSPORT)] * 1000)
    stop = threading.Event()
    stop.set()
    assert not runner.ensure_dead_letter_topic(settings(), stop=stop)


def test_messages_helper_builds_commands() -> None:  # the helper this module shares
    assert message(0, 0, webinar(0)[0][1]).offset() == 0
