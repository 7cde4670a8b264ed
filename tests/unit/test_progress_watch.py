"""The stall rule (connector.telemetry.progress) on a fake clock, and /healthz built on it."""

from __future__ import annotations

import logging
import threading

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from starlette.testclient import TestClient

from connector.serve.metrics import create_metrics_app
from connector.telemetry import Telemetry
from connector.telemetry.metrics import WORKER_PROGRESS_AGE, WORKER_STALLED
from connector.telemetry.progress import ProgressBoard, ProgressWatch, cached_lag


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watch(stall_after: float = 60.0) -> tuple[ProgressWatch, Clock]:
    clock = Clock()
    return ProgressWatch("sink", stall_after, clock=clock), clock


def test_an_idle_worker_with_no_lag_is_healthy_however_long() -> None:
    w, clock = watch()
    w.set_backlog(lag=0, in_hand=0)
    clock.now += 10 * 86_400
    status = w.check()
    assert not status.stalled and not status.has_work
    assert status.seconds_without_progress == 0.0


def test_work_without_progress_stalls_after_the_threshold() -> None:
    w, clock = watch(60)
    w.set_backlog(lag=5)
    w.waiting_on("kafka-commit")
    clock.now += 59.9
    assert not w.check().stalled
    clock.now += 0.1
    status = w.check()
    assert status.stalled
    assert (status.worker, status.waiting_on, status.lag) == ("sink", "kafka-commit", 5)
    assert status.seconds_without_progress == pytest.approx(60)


def test_work_in_hand_counts_as_work_without_lag() -> None:
    w, clock = watch(60)
    w.set_backlog(lag=None, in_hand=3)
    clock.now += 61
    assert w.check().stalled


def test_progress_restarts_the_clock() -> None:
    w, clock = watch(60)
    w.set_backlog(lag=100)
    for _ in range(10):  # busy for 10 minutes, progressing every 50 s
        clock.now += 50
        w.progressed()
        assert not w.check().stalled
    clock.now += 61
    assert w.check().stalled


def test_the_clock_starts_when_work_appears_after_an_idle_spell() -> None:
    w, clock = watch(60)
    w.set_backlog(lag=0)
    clock.now += 3600  # an idle hour, no progress
    w.set_backlog(lag=1)
    clock.now += 30
    assert w.check().seconds_without_progress == pytest.approx(30)
    assert not w.check().stalled
    w.set_backlog(lag=2)  # still busy: the start does not move
    clock.now += 31
    assert w.check().stalled


def test_stalled_is_logged_once_and_recovery_once(caplog: pytest.LogCaptureFixture) -> None:
    w, clock = watch(60)
    w.set_backlog(lag=7, in_hand=2)
    w.waiting_on("hubspot")
    clock.now += 61
    with caplog.at_level(logging.INFO, logger="connector.progress"):
        for _ in range(5):
            w.check()
            clock.now += 1
        w.progressed()
        w.check()
        w.check()
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert lines == [
        (logging.WARNING, "worker_stalled worker=sink seconds=61 waiting_on=hubspot lag=7 "
                          "in_hand=2 stall_after=60"),
        (logging.INFO, "worker_recovered worker=sink waiting_on=hubspot lag=7 in_hand=2"),
    ]


def test_running_out_of_work_is_a_recovery() -> None:
    w, clock = watch(60)
    w.set_backlog(in_hand=1)
    clock.now += 100
    assert w.check().stalled
    w.set_backlog(in_hand=0)
    assert not w.check().stalled


def test_gauges_show_stalled_and_the_seconds_without_progress() -> None:
    telemetry = Telemetry.for_tests()
    clock = Clock()
    w = ProgressWatch("normalizer", 60, clock=clock, metrics=telemetry.metrics)
    w.set_backlog(lag=1)
    clock.now += 10
    w.check()
    assert telemetry.metric_value(WORKER_STALLED, worker="normalizer") == 0
    assert telemetry.metric_value(WORKER_PROGRESS_AGE, worker="normalizer") == pytest.approx(10)
    clock.now += 60
    w.check()
    assert telemetry.metric_value(WORKER_STALLED, worker="normalizer") == 1
    assert telemetry.metric_value(WORKER_PROGRESS_AGE, worker="normalizer") == pytest.approx(70)
    telemetry.shutdown()


def test_a_board_keeps_one_watch_per_worker() -> None:
    clock = Clock()
    board = ProgressBoard(60, clock=clock)
    assert board.watch("sink") is board.watch("sink")
    board.watch("normalizer").set_backlog(lag=3)
    clock.now += 61
    assert [(s.worker, s.stalled) for s in board.check()] == [("normalizer", True),
                                                               ("sink", False)]


def test_the_monitor_checks_every_watch_until_stopped(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    board = ProgressBoard(60.0, clock=clock)
    board.watch("sink").set_backlog(lag=3)
    clock.now += 61  # stalled: only a check notices (nobody asks /healthz here)
    stop = threading.Event()
    monitor = threading.Thread(target=board.monitor, args=(stop, 0.01), daemon=True)
    with caplog.at_level(logging.WARNING, logger="connector.progress"):
        monitor.start()
        for _ in range(500):  # bounded: up to 5 s for the first check
            if any("worker_stalled worker=sink" in r.getMessage() for r in caplog.records):
                break
            stop.wait(0.01)
        stop.set()
        monitor.join(5)
    assert not monitor.is_alive()
    assert any("worker_stalled worker=sink" in r.getMessage() for r in caplog.records)


def test_stall_after_must_be_positive() -> None:
    with pytest.raises(ValueError, match="stall_after_seconds"):
        ProgressWatch("sink", 0)


# --------------------------------------------------------------------------- /healthz


def healthz(board: ProgressBoard | None, alive: bool = True) -> tuple[int, dict[str, object]]:
    app = create_metrics_app(Telemetry.disabled(), alive=lambda: alive, progress=board)
    with TestClient(app) as client:
        response = client.get("/healthz")
    return response.status_code, response.json()


def test_healthz_is_ok_with_each_workers_status() -> None:
    clock = Clock()
    board = ProgressBoard(120, clock=clock)
    board.watch("sink").set_backlog(lag=4)
    board.watch("sink").waiting_on("hubspot-rate-budget")
    board.watch("normalizer")
    clock.now += 30
    status, body = healthz(board)
    assert status == 200
    assert body == {"status": "ok", "workers": {
        "normalizer": {"status": "idle", "seconds_without_progress": 0.0, "waiting_on": "nothing",
                       "lag": None, "in_hand": 0, "stall_after_seconds": 120},
        "sink": {"status": "busy", "seconds_without_progress": 30.0,
                 "waiting_on": "hubspot-rate-budget", "lag": 4, "in_hand": 0,
                 "stall_after_seconds": 120}}}


def test_healthz_is_503_naming_the_stalled_worker() -> None:
    clock = Clock()
    board = ProgressBoard(120, clock=clock)
    sink = board.watch("sink")
    sink.set_backlog(lag=12, in_hand=1)
    sink.waiting_on("kafka-commit")
    board.watch("normalizer")
    clock.now += 125
    status, body = healthz(board)
    assert status == 503
    assert body["status"] == "stalled"
    assert body["stalled"] == [{"worker": "sink", "waiting_on": "kafka-commit",
                                "seconds_without_progress": 125.0, "lag": 12, "in_hand": 1}]
    workers = body["workers"]
    assert isinstance(workers, dict) and workers["sink"]["status"] == "stalled"
    sink.progressed()
    assert healthz(board)[0] == 200


def test_healthz_is_503_while_stopping() -> None:
    assert healthz(ProgressBoard(), alive=False) == (503, {"status": "stopping", "workers": {}})
    assert healthz(None, alive=False) == (503, {"status": "stopping"})
    assert healthz(None) == (200, {"status": "ok"})


# --------------------------------------------------------------------------- cached_lag


class LagConsumer:
    """Positions and cached high watermarks of three partitions; p2 has not been fetched."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.positions = {0: 10, 1: 5, 2: -1001}
        self.highs = {0: 14, 1: 5, 2: -1001}

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("t", p) for p in self.positions]

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        if self.fail:
            raise KafkaException(KafkaError(KafkaError._STATE))
        return [TopicPartition(tp.topic, tp.partition, self.positions[tp.partition])
                for tp in tps]

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool) -> tuple[int, int]:
        assert cached  # never a broker round trip
        return 0, self.highs[tp.partition]


def test_cached_lag_sums_what_the_consumer_knows() -> None:
    assert cached_lag(LagConsumer()) == 4
    assert cached_lag(LagConsumer(), [("t", 1)]) == 0
    assert cached_lag(LagConsumer(), [("t", 2)]) is None  # nothing known yet
    assert cached_lag(LagConsumer(), []) == 0  # nothing assigned: nothing to do


def test_cached_lag_of_a_failed_consumer_is_unknown() -> None:
    assert cached_lag(LagConsumer(fail=True)) is None
