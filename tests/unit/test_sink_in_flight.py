"""SinkWorker with requests in flight together (a real thread pool, a mock HubSpot that takes
real time): several requests are in the air at once, yet each person's commands reach HubSpot
in order, an event's upsert lands before its attendance, 429 storms and retries keep that order,
and a revoke returns only once no request of its partitions is in the air."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from confluent_kafka import TopicPartition

from connector.hubspot import HubSpotClient
from connector.normalize.command import Attendance, Command, EventUpsert
from connector.serde.topic import TopicDecoder
from connector.sink.apply import Applier
from connector.sink.batch import Batcher
from connector.sink.budget import RateBudget
from connector.sink.flight import Concurrency
from connector.sink.intake import Intake
from connector.sink.options import SinkOptions
from connector.sink.park import ParkingLot
from connector.sink.retry import RetryPolicy
from connector.sink.worker import SinkWorker
from tests.unit.test_sink_worker import CODEC, TOKEN, TOPIC, Consumer, Producer

STATES = ["REGISTERED", "CANCELLED", "REGISTERED", "ATTENDED"]


class _NoClock:
    now = 0.0


class RealTimeConsumer(Consumer):
    """The fake consumer, on the real clock: an empty consume waits a little for real."""

    def consume(self, count: int, timeout: float) -> list[Any]:
        out = super().consume(count, 0.0)
        if not out:
            time.sleep(min(timeout, 0.005))
        return out


class HubSpot:
    """Takes ``latency`` seconds per request (for real, on the caller's thread); records what
    each person got, in the order HubSpot applied it, and how many requests were in the air."""

    def __init__(self, latency: float, *, storm: float = 0.0, seed: int = 1) -> None:
        self.latency = latency
        self.storm = storm
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.active: Counter[str] = Counter()  # requests in the air, by event
        self.most_active = 0
        self.applied: dict[tuple[str, str], list[tuple[str, int]]] = {}
        self.upserted: set[str] = set()
        self.attendance_before_upsert = 0
        self.rate_limited = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        event = self._event_of(request)
        with self.lock:
            self.active[event] += 1
            self.most_active = max(self.most_active, sum(self.active.values()))
            storm = request.method == "POST" and self.rng.random() < self.storm
        try:
            time.sleep(self.latency * (0.5 + self.rng.random()))
            if storm:
                with self.lock:
                    self.rate_limited += 1
                return httpx.Response(429, headers={"Retry-After": "0"}, json={
                    "status": "error", "message": "You have reached your secondly limit.",
                    "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING",
                    "correlationId": "c"})
            return self._apply(request, event)
        finally:
            with self.lock:
                self.active[event] -= 1

    @staticmethod
    def _event_of(request: httpx.Request) -> str:
        if request.method == "PUT":
            return str(json.loads(request.content)["externalEventId"])
        return request.url.path.split("/")[4].removeprefix("obj-")

    def _apply(self, request: httpx.Request, event: str) -> httpx.Response:
        if request.method == "PUT":
            with self.lock:
                self.upserted.add(event)
            return httpx.Response(200, json={"objectId": f"obj-{event}", "eventName": "W",
                                             "eventOrganizer": "O"})
        state = request.url.path.split("/")[6]
        inputs = json.loads(request.content)["inputs"]
        with self.lock:
            if event not in self.upserted:
                self.attendance_before_upsert += 1
            for i in inputs:
                self.applied.setdefault((event, i["email"]), []).append(
                    (state, int(i["interactionDateTime"])))
        return httpx.Response(200, json={
            "status": "COMPLETE", "results": [{"email": i["email"], "vid": 1} for i in inputs],
            "startedAt": "2026-01-01T00:00:00Z", "completedAt": "2026-01-01T00:00:01Z"})


def traffic(events: int, people: int) -> tuple[list[tuple[int, Command]], dict[Any, list[Any]]]:
    """Each webinar's upsert, then each person's commands (register, cancel, register,
    attend) interleaved across people and webinars; and what each person must get, in order."""
    commands = [(e % 2, Command(f"w{e}", "acct", EventUpsert(f"W{e}", "O", "WEBINAR")))
                for e in range(events)]
    expected: dict[Any, list[Any]] = {}
    t = 1_767_261_600_000
    for step, state in enumerate(STATES):
        for n in range(people):
            for e in range(events):
                t += 1
                email = f"p{n}@x.io"
                commands.append((e % 2, Command(f"w{e}", "acct", Attendance(
                    state, None, email, t))))
                expected.setdefault((f"w{e}", email), []).append(
                    (_path_state(state), t))
        del step
    return commands, expected


def _path_state(state: str) -> str:
    return {"REGISTERED": "register", "CANCELLED": "cancel", "ATTENDED": "attend"}[state]


def worker(commands: list[tuple[int, Command]], hubspot: HubSpot, *,
           max_in_flight: int = 8) -> tuple[SinkWorker, RealTimeConsumer]:
    clock = time.time
    consumer = RealTimeConsumer(_NoClock(), commands)  # type: ignore[arg-type]
    budget = RateBudget(window_limit=10_000, window_seconds=10, daily_limit=None, clock=clock)
    intake = Intake(consumer, SinkOptions(topic=TOPIC, dlq_topic=f"{TOPIC}.dlq",
                                          poll_seconds=0.01, landing_seconds=10),
                    stop=threading.Event(), clock=clock)
    concurrency = Concurrency(max_in_flight, initial=max_in_flight)
    policy = RetryPolicy(budget_seconds=60, clock=clock, sleep=intake.idle, base_seconds=0.001,
                         cap_seconds=0.01, rng=random.Random(1))
    applier = Applier(HubSpotClient(TOKEN, transport=httpx.MockTransport(hubspot)),
                      budget=budget, policy=policy, clock=clock, sleep=intake.idle,
                      on_latency=concurrency.observe)
    sink = SinkWorker(
        intake, producer=Producer(), applier=applier, decoder=TopicDecoder(CODEC),
        batcher=Batcher(max_inputs=7, linger_seconds=0.0, clock=clock, max_wait_seconds=1),
        parking=ParkingLot(budget_seconds=60, clock=clock), budget=budget,
        executor=ThreadPoolExecutor(max_in_flight), concurrency=concurrency)
    consumer.on_commit = sink.on_commit
    sink.start()
    return sink, consumer


def run_until_applied(sink: SinkWorker, total: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while sink.stats["applied"] < total:
        assert time.monotonic() < deadline, f"applied {sink.stats['applied']} of {total}"
        sink.step()


def test_requests_fly_together_and_each_person_keeps_their_order() -> None:
    events, people = 4, 30
    commands, expected = traffic(events, people)
    hubspot = HubSpot(latency=0.01)
    sink, consumer = worker(commands, hubspot)
    try:
        run_until_applied(sink, len(commands))
        sink.commit(force=True)
        sink.step()  # the commit's answer
    finally:
        sink.stop()
    assert hubspot.most_active > 1  # in flight together
    assert hubspot.applied == expected  # every person's commands, in order, once
    assert hubspot.attendance_before_upsert == 0
    assert consumer.committed == {0: len(commands) // 2, 1: len(commands) // 2}


def test_a_429_storm_keeps_every_persons_order() -> None:
    events, people = 3, 20
    commands, expected = traffic(events, people)
    hubspot = HubSpot(latency=0.005, storm=0.4, seed=7)
    sink, _ = worker(commands, hubspot)
    try:
        run_until_applied(sink, len(commands))
    finally:
        sink.stop()
    assert hubspot.rate_limited > 10 and hubspot.most_active > 1
    assert hubspot.applied == expected


def test_a_revoke_returns_only_when_its_partitions_flights_landed() -> None:
    events, people = 2, 40
    commands, _ = traffic(events, people)
    hubspot = HubSpot(latency=0.05)
    sink, consumer = worker(commands, hubspot)
    try:
        while hubspot.active["w0"] == 0:  # w0's commands are on partition 0
            sink.step()
        sink.revoke(consumer, [TopicPartition(TOPIC, 0)])
        assert hubspot.active["w0"] == 0  # nothing of partition 0 is in the air
        assert (TOPIC, 0) not in sink.offsets
        applied_w0 = sum(len(v) for k, v in hubspot.applied.items() if k[0] == "w0")
        committed = consumer.committed.get(0, 0)
        assert committed <= applied_w0 + 1  # never past what HubSpot has (the upsert is 1)
        for _ in range(20):
            sink.step()
        assert hubspot.active["w0"] == 0  # and nothing more of it was sent
        assert sum(len(v) for k, v in hubspot.applied.items() if k[0] == "w0") == applied_w0
    finally:
        sink.stop()
