"""The sink against a broker that goes away: restarted (graceful, hard, during a commit) and
paused (SIGSTOP). The sink must not exit, HubSpot must end up exactly as the commands say, and
a sink stuck on Kafka must say so on /healthz.

These tests own a private EmbeddedKafka (never the session's broker: restarting that one would
disturb every other test). It is started, restarted and stopped from the main thread (the JVM
dies with the thread that forked it). A consumer wrapper (:class:`CommitTrap`) lets the test act
on the broker at the exact moment the sink commits: right after the commit was sent (the broker
dies with the commit unanswered) or right before it (the commit cannot land).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from starlette.testclient import TestClient

from connector.broker import EmbeddedKafka
from connector.config import Settings
from connector.kafka import clients
from connector.runtime import sink as runner
from connector.serve.metrics import create_metrics_app
from connector.telemetry import Telemetry
from connector.telemetry.progress import ProgressBoard, ProgressWatch
from tests.integration.test_sink_e2e import (
    Topics,
    admin,
    command_interaction,
    committed_all,
    expected_state,
    hubspot_state,
    interactions,
    make_workload,
    produce,
    read_dlq,
    sandbox,
    settings,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kafka() -> Iterator[EmbeddedKafka]:
    """A broker of this module's own, free to restart and pause."""
    with EmbeddedKafka() as broker:
        yield broker


def new_topics(kafka: EmbeddedKafka, partitions: int) -> Topics:
    client = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    suffix = uuid.uuid4().hex[:8]
    t = Topics(f"commands-{suffix}", f"commands-dlq-{suffix}", f"sink-{suffix}",
               kafka.bootstrap_servers, partitions)
    futures = client.create_topics([NewTopic(t.commands, partitions, 1),
                                    NewTopic(t.dlq, 1, 1)], operation_timeout=30)
    for future in futures.values():
        future.result(30)
    deadline = time.monotonic() + 30
    while True:  # every partition has a leader: clients can use the topics
        topics = client.list_topics(timeout=10).topics
        if all(name in topics and topics[name].partitions
               and all(p.leader >= 0 for p in topics[name].partitions.values())
               for name in (t.commands, t.dlq)):
            return t
        assert time.monotonic() < deadline, "the topics have no leaders"
        time.sleep(0.1)


class CommitTrap:
    """Wraps the consumers ``run_sink`` builds. Armed, the next ``commit`` hands control to the
    test thread (``before`` or after the real commit call) and waits until it is released;
    ``committed`` is set once that commit call returned."""

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.before = False
        self.hit = threading.Event()
        self.released = threading.Event()
        self.committed = threading.Event()

    def arm(self, *, before: bool = False) -> None:
        self.before = before
        self.hit.clear()
        self.released.clear()
        self.committed.clear()
        self.armed.set()

    def consumer(self, config: dict[str, Any]) -> Any:
        return _TrappedConsumer(Consumer(config), self)

    def spring(self) -> None:
        if self.armed.is_set():
            self.armed.clear()
            self.hit.set()
            assert self.released.wait(180), "the test never released the trapped commit"

    @contextlib.contextmanager
    def sprung(self, alive: Callable[[], None]) -> Iterator[None]:
        """Wait (bounded) until the trap caught a commit; release it after the block."""
        wait_until(self.hit.is_set, 120, "the sink to commit", alive)
        try:
            yield
        finally:
            self.released.set()


class _TrappedConsumer:
    def __init__(self, inner: Consumer, trap: CommitTrap) -> None:
        self._inner = inner
        self._trap = trap

    def commit(self, *args: Any, **kwargs: Any) -> Any:
        trap = self._trap
        sprung = trap.armed.is_set()
        if trap.before:
            trap.spring()
        result = self._inner.commit(*args, **kwargs)
        if not trap.before:
            trap.spring()
        if sprung:
            trap.committed.set()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class SinkThread:
    """run_sink in a thread, reporting to ``progress``; whatever it raises is kept."""

    def __init__(self, config: Settings, progress: ProgressWatch | None = None) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.returned = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(config, progress), daemon=True)

    def _run(self, config: Settings, progress: ProgressWatch | None) -> None:
        try:
            runner.run_sink(config, self.stop, telemetry=Telemetry.disabled(),
                            progress=progress)
        except BaseException as exc:
            self.error = exc
        finally:
            self.returned.set()

    def check(self) -> None:
        """The sink is still running (it must never end on its own here)."""
        if self.error is not None:
            raise AssertionError(f"sink failed: {self.error!r}") from self.error
        assert not self.returned.is_set(), "the sink returned without being asked to stop"

    def __enter__(self) -> SinkThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(90)
        assert not self.thread.is_alive(), "the sink did not stop within 90 s"


def participations(running: Any) -> int:
    return len(admin(running, "participations"))


def test_the_sink_survives_broker_restarts_mid_stream_and_during_a_commit(
        kafka: EmbeddedKafka, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four restarts, each followed by commands the sink has to fetch from the restarted broker:
    graceful and hard while it applies a backlog; hard right after a commit was sent (the
    answer may be lost); hard right before a commit (sent while no coordinator is known)."""
    trap = CommitTrap()
    monkeypatch.setattr(clients, "Consumer", trap.consumer)  # the sink's consumer
    t = new_topics(kafka, 3)
    parts = [make_workload(events=2, people=60, seed=31, prefix="a"),
             *(make_workload(events=1, people=60, seed=32 + n, prefix=p)
               for n, p in enumerate("bcd"))]
    everything = [c for part in parts for c in part.commands]
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5})
    # 20 requests per 10 s of at most 10 inputs: each part takes several windows, so every
    # restart below lands while the sink still has work.
    with sandbox(window_limit=20, window_seconds=10.0) as running:
        config = settings(t, running.url, max_inputs_per_request=10, window_limit=20,
                          window_seconds=10)
        produce(producer, t.commands, parts[0].commands)
        with SinkThread(config) as sink:
            wait_until(lambda: participations(running) >= 20, 120, "the first part to start",
                       sink.check)
            kafka.restart(graceful=True)
            sink.check()
            produce(producer, t.commands, parts[1].commands)
            wait_until(lambda: participations(running) >= 140, 240,
                       "the second part to start", sink.check)
            kafka.restart(graceful=False)
            sink.check()
            produce(producer, t.commands, parts[2].commands)
            trap.arm()  # the next commit is sent, then the broker is killed
            with trap.sprung(sink.check):
                kafka.restart(graceful=False)
            sink.check()
            produce(producer, t.commands, parts[3].commands)
            trap.arm(before=True)  # the broker is killed, then the next commit is sent
            with trap.sprung(sink.check):
                pid = kafka.pid
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda: kafka.pid is None, 30, "the broker to die")
            wait_until(trap.committed.is_set, 30, "the commit call to return", sink.check)
            kafka.restart(graceful=False)
            wait_until(lambda: committed_all(t), 300, "every command committed", sink.check)
            sink.check()
        assert sink.error is None
        assert hubspot_state(running) == expected_state(everything)
        recorded = interactions(running)
    # every attendance applied, none invented (the sandbox keeps each distinct interaction once)
    assert recorded == {command_interaction(c) for part in parts for c in part.attendance}
    assert read_dlq(t, 0, timeout=3) == []


def test_a_sink_stuck_on_kafka_turns_healthz_unhealthy_then_recovers(
        kafka: EmbeddedKafka, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    trap = CommitTrap()
    monkeypatch.setattr(clients, "Consumer", trap.consumer)  # the sink's consumer
    t = new_topics(kafka, 1)
    work = make_workload(events=1, people=40, seed=41, prefix="s")
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "acks": "all"})
    board = ProgressBoard(stall_after_seconds=3.0)
    app = create_metrics_app(Telemetry.disabled(), alive=lambda: True, progress=board)
    pid = kafka.pid
    assert pid is not None
    with sandbox() as running, TestClient(app) as http, \
            caplog.at_level(logging.INFO, logger="connector.progress"):
        produce(producer, t.commands, work.commands)

        def health() -> tuple[int, Any]:
            response = http.get("/healthz")
            return response.status_code, response.json()

        with SinkThread(settings(t, running.url), board.watch("sink")) as sink:
            trap.arm(before=True)  # the first commit finds the broker paused
            stopped = False
            try:
                with trap.sprung(sink.check):
                    os.kill(pid, signal.SIGSTOP)
                    stopped = True
                wait_until(lambda: health()[0] == 503, 60, "/healthz to report the stall",
                           sink.check)
                body = health()[1]
            finally:
                if stopped:
                    os.kill(pid, signal.SIGCONT)
            assert body["status"] == "stalled"
            assert [(s["worker"], s["waiting_on"]) for s in body["stalled"]] == [
                ("sink", "kafka-commit")]
            assert body["stalled"][0]["seconds_without_progress"] >= 3.0
            wait_until(lambda: health()[0] == 200, 120, "/healthz to recover", sink.check)
            wait_until(lambda: committed_all(t), 120, "every command committed", sink.check)
            sink.check()
        assert hubspot_state(running) == expected_state(work.commands)
    messages = [r.getMessage() for r in caplog.records if r.name == "connector.progress"]
    stalls = [m for m in messages if m.startswith("worker_stalled worker=sink")]
    assert len(stalls) == 1 and "waiting_on=kafka-commit" in stalls[0]
    assert any(m.startswith("worker_recovered worker=sink") for m in messages)
    assert read_dlq(t, 0, timeout=3) == []
