"""SinkWorker's loop against a fake consumer and a mock HubSpot, on a fake clock: requests go
only while the rate budget has a slot, groups keep filling meanwhile (so interleaved webinars
still send full batches), what is held is bounded by pausing, idle traffic goes after linger."""

from __future__ import annotations

import json
import random
import threading
from collections import deque
from typing import Any

import httpx
from confluent_kafka import TopicPartition

from connector.hubspot import HubSpotClient
from connector.normalize.command import COMMAND_SCHEMA, Attendance, Command, EventUpsert
from connector.serde.catalog import SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.topic import TopicDecoder, TopicFormat, build_codec
from connector.sink.apply import Applier
from connector.sink.batch import Batcher
from connector.sink.budget import RateBudget
from connector.sink.intake import Intake
from connector.sink.options import SinkOptions
from connector.sink.park import ParkingLot
from connector.sink.retry import RetryPolicy
from connector.sink.worker import SinkWorker
from tests.fakes import FakeMessage

TOPIC = "cmds"
TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
CODEC = build_codec(TopicFormat(Framing.SINGLE_OBJECT, COMMAND_SCHEMA), TOPIC,
                    SchemaCatalog.from_directory())


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_261_600.0

    def __call__(self) -> float:
        return self.now


def message(partition: int, offset: int, command: Command) -> FakeMessage:
    return FakeMessage(TOPIC, partition, offset, command.key, CODEC.encode(command.to_avro()),
                       timestamp_=(0, 0))


class Consumer:
    """Partitions of commands; an empty poll lets its timeout pass on the fake clock; commits
    are answered through ``on_commit`` at the next consume or poll, like librdkafka's."""

    def __init__(self, clock: Clock, commands: list[tuple[int, Command]]) -> None:
        self.clock = clock
        self.queues: dict[int, deque[FakeMessage]] = {}
        for partition, command in commands:
            queue = self.queues.setdefault(partition, deque())
            queue.append(message(partition, len(queue), command))
        self.paused: set[int] = set()
        self.pauses = 0
        self.committed: dict[int, int] = {}
        self.on_commit: Any = None
        self.answers: list[list[TopicPartition]] = []
        self.ends = {p: len(q) for p, q in self.queues.items()}
        self.next = dict.fromkeys(self.queues, 0)
        self.logs = {p: list(q) for p, q in self.queues.items()}  # every record, for seek
        self.seeks: list[tuple[int, int]] = []

    def seek(self, tp: TopicPartition) -> None:
        """Read the partition again from ``tp.offset`` (what was fetched past it is gone)."""
        self.seeks.append((tp.partition, tp.offset))
        self.queues[tp.partition] = deque(self.logs[tp.partition][tp.offset:])

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        callbacks["on_assign"](self, [TopicPartition(TOPIC, p) for p in self.queues])

    def consume(self, count: int, timeout: float) -> list[FakeMessage]:
        answers, self.answers = self.answers, []
        for offsets in answers:
            self.on_commit(None, offsets)
        out: list[FakeMessage] = []
        while len(out) < count:
            ready = [q for p, q in self.queues.items() if q and p not in self.paused]
            if not ready:
                break
            for queue in ready[:count - len(out)]:
                out.append(queue.popleft())
        if not out:
            self.clock.now += timeout
        for m in out:
            self.next[m.partition()] = m.offset() + 1
        return out

    def poll(self, timeout: float) -> FakeMessage | None:
        messages = self.consume(1, timeout)
        return messages[0] if messages else None

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.pauses += 1
        self.paused.update(tp.partition for tp in partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused.difference_update(tp.partition for tp in partitions)

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous
        self.committed.update({tp.partition: tp.offset for tp in offsets})
        self.answers.append([TopicPartition(tp.topic, tp.partition, tp.offset)
                             for tp in offsets])

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.next[tp.partition])
                for tp in partitions]

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool) -> tuple[int, int]:
        return 0, self.ends[tp.partition]

    def close(self) -> None:
        pass


class Producer:
    def produce(self, **kwargs: Any) -> None:
        raise AssertionError("nothing is dead-lettered here")

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


class HubSpot:
    """Answers upserts and attendance; each request takes 20 ms of fake time."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.batches: list[int] = []
        self.upserts = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.clock.now += 0.02
        if request.method == "PUT":
            self.upserts += 1
            event = json.loads(request.content)
            return httpx.Response(200, json={
                "objectId": f"obj-{event['externalEventId']}", "eventName": "W",
                "eventOrganizer": "O"})
        inputs = json.loads(request.content)["inputs"]
        self.batches.append(len(inputs))
        return httpx.Response(200, json={
            "status": "COMPLETE", "results": [{"email": i["email"], "vid": 1} for i in inputs],
            "startedAt": "2026-01-01T00:00:00Z", "completedAt": "2026-01-01T00:00:01Z"})


def worker(commands: list[tuple[int, Command]], *, window_limit: int,
           max_buffered: int) -> tuple[SinkWorker, Consumer, HubSpot, Clock]:
    clock = Clock()
    consumer = Consumer(clock, commands)
    hubspot = HubSpot(clock)
    budget = RateBudget(window_limit=window_limit, window_seconds=10, daily_limit=None,
                        clock=clock)
    intake = Intake(consumer, SinkOptions(topic=TOPIC, dlq_topic=f"{TOPIC}.dlq",
                                          max_buffered=max_buffered),
                    stop=threading.Event(), clock=clock)
    policy = RetryPolicy(budget_seconds=60, clock=clock, sleep=intake.idle,
                         rng=random.Random(1))
    applier = Applier(HubSpotClient(TOKEN, transport=httpx.MockTransport(hubspot)),
                      budget=budget, policy=policy, clock=clock, sleep=intake.idle)
    sink = SinkWorker(
        intake, producer=Producer(), applier=applier, decoder=TopicDecoder(CODEC),
        batcher=Batcher(max_inputs=100, linger_seconds=0.2, clock=clock, max_wait_seconds=10),
        parking=ParkingLot(budget_seconds=60, clock=clock), budget=budget)
    consumer.on_commit = sink.on_commit
    sink.start()
    return sink, consumer, hubspot, clock


def webinars(events: int, people: int) -> list[tuple[int, Command]]:
    """Per webinar an upsert, then registrations of distinct people, webinars interleaved
    record by record over two partitions."""
    commands = [(e % 2, Command(f"w{e}", "acct", EventUpsert(f"W{e}", "O", "WEBINAR")))
                for e in range(events)]
    commands += [(e % 2, Command(f"w{e}", "acct", Attendance(
        "REGISTERED", None, f"p{n}@x.io", 1_767_261_600_000 + n)))
        for n in range(people) for e in range(events)]
    return commands


def test_interleaved_webinars_under_a_tight_budget_send_full_batches() -> None:
    events, people = 40, 300
    sink, consumer, hubspot, _ = worker(webinars(events, people), window_limit=10,
                                        max_buffered=6_000)
    most_held = 0
    for _ in range(20_000):
        sink.step()
        most_held = max(most_held, len(sink.batcher))
        if sink.stats["applied"] == events * (people + 1):
            break
    sink.commit(force=True)
    assert sink.stats["applied"] == events * (people + 1)
    assert hubspot.upserts == events
    assert hubspot.batches == [100] * (events * people // 100)  # every request full
    assert consumer.pauses > 0 and most_held <= 6_000 + 500  # bounded: paused at the limit
    assert consumer.committed == {0: events // 2 * (people + 1), 1: events // 2 * (people + 1)}


def test_idle_traffic_goes_after_its_linger() -> None:
    commands = [(0, Command("w0", "acct", EventUpsert("W0", "O", "WEBINAR"))),
                (0, Command("w0", "acct", Attendance("REGISTERED", None, "a@x.io", 1)))]
    sink, _, hubspot, clock = worker(commands, window_limit=100, max_buffered=1_000)
    start = clock.now
    while sink.stats["applied"] < 2:
        sink.step()
        assert clock.now - start < 1.0
    assert hubspot.batches == [1]
    assert 0.2 <= clock.now - start < 0.5  # the linger, not the poll interval or a window
