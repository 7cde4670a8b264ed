"""Consumer lag when Kafka fails: a refresh never raises, warns (rate-limited), recovers.

The lag arithmetic is tested in test_telemetry_metrics.py; the real-broker outage is in
tests/integration/test_telemetry_lag.py.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from connector.telemetry import Telemetry

LOGGER = "connector.telemetry.lag"
NOT_SET = -1001


def timed_out() -> KafkaException:
    """What librdkafka raises from committed() while the broker is away."""
    return KafkaException(KafkaError(KafkaError._TIMED_OUT,
                                     "Failed to get committed offsets: Local: Timed out"))


class TP:
    def __init__(self, topic: str, partition: int, offset: int = NOT_SET) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset


class FlakyConsumer:
    """A consumer whose calls named in ``failing`` raise ``error`` until :meth:`recover`."""

    def __init__(self, positions: dict[int, int], highs: dict[int, int],
                 committed: dict[int, int]) -> None:
        self.positions, self.highs, self.committed_offsets = positions, highs, committed
        self.failing: set[str] = set()
        self.error: Exception = timed_out()
        self.calls: dict[str, int] = {}

    def fail(self, *calls: str, error: Exception | None = None) -> None:
        self.failing = set(calls)
        if error is not None:
            self.error = error

    def recover(self) -> None:
        self.failing = set()

    def _call(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if name in self.failing:
            raise self.error

    def assignment(self) -> list[TP]:
        self._call("assignment")
        return [TP("t", p) for p in self.positions]

    def position(self, partitions: list[TP]) -> list[TP]:
        self._call("position")
        return [TP(tp.topic, tp.partition, self.positions[tp.partition]) for tp in partitions]

    def get_watermark_offsets(self, tp: Any, cached: bool = False) -> tuple[int, int]:
        self._call("get_watermark_offsets")
        assert cached, "lag must not cost a broker round trip"
        return 0, self.highs.get(tp.partition, NOT_SET)

    def committed(self, partitions: list[Any], timeout: float) -> list[TP]:
        self._call("committed")
        assert 0 < timeout <= 2.0, "committed() runs on the poll loop: a short bound"
        return [TP(tp.topic, tp.partition, self.committed_offsets.get(tp.partition, NOT_SET))
                for tp in partitions]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == LOGGER and r.levelno == logging.WARNING]


def lag_points(telemetry: Telemetry) -> dict[str, int]:
    points = telemetry.metric_points("connector.consumer.lag")
    return {dict(k)["partition"]: v for k, v in points.items()}


def test_committed_timing_out_is_a_warning_and_the_next_refresh_reports_the_lag(
        caplog: pytest.LogCaptureFixture) -> None:
    # Partition 1 has consumed nothing: its lag needs the committed offset (a broker round trip).
    consumer = FlakyConsumer(positions={0: 40, 1: NOT_SET}, highs={0: 100, 1: 50},
                             committed={1: 45})
    consumer.fail("committed")
    caplog.set_level(logging.INFO, logger=LOGGER)
    with Telemetry.for_tests() as telemetry:
        monitor = telemetry.lag_monitor("g", interval_s=0)
        assert monitor.refresh(consumer) == {("t", 0): 60}  # partition 1 left out, no raise
        assert consumer.calls["committed"] == 1
        assert lag_points(telemetry) == {"0": 60}
        [warning] = warnings_of(caplog)
        assert warning.startswith("telemetry.lag_refresh_failed group=g call=committed ")
        assert "_TIMED_OUT" in warning and "Failed to get committed offsets" in warning

        consumer.recover()
        assert monitor.refresh(consumer) == {("t", 0): 60, ("t", 1): 5}  # asked again
        assert consumer.calls["committed"] == 2
        assert lag_points(telemetry) == {"0": 60, "1": 5}
    assert len(warnings_of(caplog)) == 1
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "telemetry.lag_refresh_recovered group=g unreported_failures=0"]


@pytest.mark.parametrize("call", ["assignment", "position", "get_watermark_offsets"])
def test_a_failing_local_call_keeps_the_last_good_values(
        call: str, caplog: pytest.LogCaptureFixture) -> None:
    consumer = FlakyConsumer(positions={0: 40, 1: 10}, highs={0: 100, 1: 10}, committed={})
    with Telemetry.for_tests() as telemetry:
        monitor = telemetry.lag_monitor("g", interval_s=0)
        assert monitor.refresh(consumer) == {("t", 0): 60, ("t", 1): 0}

        consumer.positions[0], consumer.highs[1] = 70, 25
        consumer.fail(call)
        assert monitor.refresh(consumer) == {("t", 0): 60, ("t", 1): 0}  # the last good ones
        assert lag_points(telemetry) == {"0": 60, "1": 0}
        [warning] = warnings_of(caplog)
        assert "group=g call=refresh failures=1 error=KafkaError{code=_TIMED_OUT" in warning

        consumer.recover()
        assert monitor.refresh(consumer) == {("t", 0): 30, ("t", 1): 15}
        assert lag_points(telemetry) == {"0": 30, "1": 15}


def test_any_exception_from_the_consumer_is_contained_on_the_poll_loop_path(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    consumer = FlakyConsumer(positions={0: NOT_SET}, highs={0: 9}, committed={0: 4})
    with Telemetry.for_tests() as telemetry:
        monitor = telemetry.lag_monitor("g", interval_s=5, clock=lambda: now[0])
        consumer.fail("assignment", error=RuntimeError("Consumer closed"))
        monitor.maybe_refresh(consumer)  # what the workers call: must not raise
        consumer.fail("committed", error=ValueError("anything else"))
        now[0] = 5.0
        monitor.maybe_refresh(consumer)
        assert monitor.last == {}
        consumer.recover()
        now[0] = 10.0
        monitor.maybe_refresh(consumer)
        assert monitor.last == {("t", 0): 5}
    assert warnings_of(caplog) == [
        "telemetry.lag_refresh_failed group=g call=refresh failures=1 error=Consumer closed"]


def test_a_long_outage_logs_one_warning_per_warning_interval(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    consumer = FlakyConsumer(positions={0: NOT_SET}, highs={0: 9}, committed={0: 4})
    consumer.fail("committed")
    caplog.set_level(logging.INFO, logger=LOGGER)
    with Telemetry.for_tests() as telemetry:
        monitor = telemetry.lag_monitor("g", interval_s=5, clock=lambda: now[0])
        for t in range(0, 65, 5):  # a refresh every 5 s for a minute, each one failing
            now[0] = float(t)
            monitor.maybe_refresh(consumer)
        assert consumer.calls["committed"] == 13  # tried again at every interval
        warnings = warnings_of(caplog)
        assert len(warnings) == 3  # at 0, 30 and 60 s (30 s floor on the warning interval)
        assert [w.split(" ")[3] for w in warnings] == ["failures=1", "failures=6", "failures=6"]

        consumer.recover()
        now[0] = 65.0
        monitor.maybe_refresh(consumer)
        assert monitor.last == {("t", 0): 5}
    assert caplog.records[-1].getMessage() == (
        "telemetry.lag_refresh_recovered group=g unreported_failures=0")


def test_warnings_follow_a_refresh_interval_longer_than_the_floor(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    consumer = FlakyConsumer(positions={0: NOT_SET}, highs={0: 9}, committed={})
    consumer.fail("committed")
    with Telemetry.for_tests() as telemetry:
        monitor = telemetry.lag_monitor("g", interval_s=120, clock=lambda: now[0])
        for t in (0.0, 120.0, 240.0):
            now[0] = t
            monitor.maybe_refresh(consumer)
    assert len(warnings_of(caplog)) == 3  # every failed refresh, as they are 120 s apart


def test_bad_statistics_do_not_raise_from_the_stats_callback(
        caplog: pytest.LogCaptureFixture) -> None:
    with Telemetry.for_tests() as telemetry:
        monitor = telemetry.lag_monitor("g")
        monitor.on_stats(json.dumps({"topics": {"t": {"partitions": {"0": {"consumer_lag": 3}}}}}))
        monitor.on_stats("{not json")
        monitor.on_stats(json.dumps({"topics": {"t": {"partitions": {"x": {}}}}}))
        assert monitor.last == {("t", 0): 3}
    assert [w.split(" ")[2] for w in warnings_of(caplog)] == ["call=stats"]
