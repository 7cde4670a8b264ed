"""TableFeeder with a fake reader, probe and clock: readiness flags, retries, clean stop."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from connector.runtime.table import WebinarTable
from connector.serve import TableFeeder, is_caught_up


class FakeReader:
    """Partitions reach their end when ``batches`` run out; ``poll`` may raise."""

    def __init__(self, table: WebinarTable, partitions: int = 2,
                 batches: list[list[dict[str, Any]]] | None = None) -> None:
        self.table = table
        self._partitions = set(range(partitions))
        self._at_end: set[int] = set()
        self.batches = list(batches or [])
        self.closed = False
        self.fail_next: Exception | None = None

    def poll(self, timeout: float = 0.0, max_records: int = 1000) -> list[str]:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        if not self.batches:
            self._at_end = set(self._partitions)
            return []
        changed = []
        for webinar in self.batches.pop(0):
            if self.table.put(webinar):
                changed.append(webinar["webinarId"])
        return changed

    def close(self) -> None:
        self.closed = True


def webinar(n: int, updated: int = 1) -> dict[str, Any]:
    return {"webinarId": f"w{n}", "accountId": "a", "updatedAt": updated}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def feeder(factory: Any, *, probe: Any = None, clock: Clock | None = None,
           stop: threading.Event | None = None) -> TableFeeder:
    return TableFeeder(factory, stop or threading.Event(), probe=probe, probe_seconds=10,
                       retry_seconds=0, poll_seconds=0, clock=clock or Clock())


def test_caught_up_only_once_every_partition_reached_its_end_and_then_latched() -> None:
    table = WebinarTable()
    reader = FakeReader(table, batches=[[webinar(1)], [webinar(2)]])
    f = feeder(lambda: reader)
    f.step()
    f.step()
    assert len(table) == 2 and not f.checks()["webinar_table"]
    f.step()
    assert f.checks()["webinar_table"]
    reader.batches.append([webinar(1, updated=2)])
    reader._at_end = set()  # new records: the reader lags for a moment
    f.step()
    assert f.checks()["webinar_table"]  # still ready: the table has every webinar it had
    assert table.get("w1") == webinar(1, updated=2)


def test_a_reader_that_cannot_be_built_is_retried_and_reported() -> None:
    table = WebinarTable()
    attempts: list[int] = []

    def factory() -> FakeReader:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("broker down")
        return FakeReader(table)

    f = feeder(factory)
    f.step()
    f.step()
    assert f.last_error == "build: RuntimeError: broker down"
    assert not f.checks()["webinar_table"]
    f.step()
    f.step()
    assert len(attempts) == 3 and f.checks()["webinar_table"]


def test_a_missing_topic_is_not_caught_up() -> None:
    readers: list[FakeReader] = []

    def factory() -> FakeReader:
        readers.append(FakeReader(WebinarTable(), partitions=0))
        return readers[-1]

    f = feeder(factory)
    f.step()
    f.step()
    assert not f.checks()["webinar_table"]
    assert len(readers) == 2 and all(r.closed for r in readers)
    assert f.last_error is not None and "no partitions" in f.last_error
    assert not is_caught_up(FakeReader(WebinarTable(), partitions=0))


def test_a_failing_poll_rebuilds_the_reader() -> None:
    table = WebinarTable()
    readers: list[FakeReader] = []

    def factory() -> FakeReader:
        readers.append(FakeReader(table))
        return readers[-1]

    f = feeder(factory)
    f.step()
    readers[0].fail_next = RuntimeError("consumer broken")
    f.step()
    assert readers[0].closed
    f.step()
    assert len(readers) == 2 and not readers[1].closed


def test_kafka_check_follows_the_probe_at_its_interval() -> None:
    clock = Clock()
    answers: list[Exception | None] = [None, RuntimeError("timeout"), None]
    calls: list[float] = []

    def probe() -> None:
        calls.append(clock.now)
        answer = answers.pop(0)
        if answer is not None:
            raise answer

    f = feeder(lambda: FakeReader(WebinarTable()), probe=probe, clock=clock)
    assert not f.checks()["kafka"]  # unknown until the first probe
    f.step()
    assert f.checks()["kafka"]
    clock.now += 5
    f.step()
    assert len(calls) == 1  # not due yet
    clock.now += 5
    f.step()
    assert not f.checks()["kafka"] and f.last_error == "probe: RuntimeError: timeout"
    clock.now += 10
    f.step()
    assert f.checks()["kafka"] and calls == [100.0, 110.0, 120.0]


def test_no_probe_means_kafka_is_not_checked() -> None:
    assert feeder(lambda: FakeReader(WebinarTable())).checks()["kafka"]


def test_run_stops_on_the_event_and_closes_the_reader() -> None:
    stop = threading.Event()
    reader = FakeReader(WebinarTable())
    f = feeder(lambda: reader, stop=stop)
    assert not f.checks()["reader"]
    f.start()
    try:
        assert f.checks()["reader"]
    finally:
        stop.set()
        f.join(10)
    assert reader.closed and not f.checks()["reader"]


def test_a_caught_up_attribute_wins_over_private_state() -> None:
    class Reader:
        caught_up = True

    assert is_caught_up(Reader())


@pytest.mark.parametrize(("partitions", "at_end", "expected"), [
    ({0, 1}, {0, 1}, True), ({0, 1}, {0}, False), (set(), set(), False), (None, None, False),
])
def test_is_caught_up(partitions: Any, at_end: Any, expected: bool) -> None:
    class Reader:
        pass

    reader = Reader()
    reader._partitions = partitions  # type: ignore[attr-defined]
    reader._at_end = at_end  # type: ignore[attr-defined]
    assert is_caught_up(reader) is expected
