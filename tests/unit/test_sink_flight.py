"""Flights: the concurrency target, the inline executor, waits that end when their work must."""

from __future__ import annotations

import pytest

from connector.sink.errors import SinkInterrupted
from connector.sink.flight import Concurrency, InlineExecutor, sliced_sleep


def test_the_target_is_about_rate_times_latency_within_the_ceiling() -> None:
    concurrency = Concurrency(32, initial=4)
    assert concurrency.target(19.0) == 4  # nothing measured yet
    assert concurrency.target(None) == 32  # no rate limit known: the ceiling
    for _ in range(20):
        concurrency.observe(0.35)
    assert concurrency.target(19.0) == 10  # ceil(19 x 0.35 x 1.25) + 1
    assert concurrency.target(100.0) == 32  # capped
    assert Concurrency(1).target(100.0) == 1


def test_an_overloaded_server_does_not_call_for_more_requests_in_flight() -> None:
    concurrency = Concurrency(64)
    for _ in range(10):
        concurrency.observe(0.3)
    for _ in range(50):
        concurrency.observe(5.0)  # answers slow down: queueing, not a longer path
    assert concurrency.latency == pytest.approx(0.6)  # twice the quickest recent round trip
    assert concurrency.target(19.0) == 16


def test_the_inline_executor_runs_at_once_and_keeps_the_exception() -> None:
    executor = InlineExecutor()
    assert executor.submit(lambda x: x + 1, 1).result() == 2

    def boom() -> None:
        raise SinkInterrupted("stop")

    future = executor.submit(boom)
    assert future.done() and isinstance(future.exception(), SinkInterrupted)


def test_a_sliced_sleep_ends_as_soon_as_its_check_raises() -> None:
    calls = []

    def check() -> None:
        calls.append(1)
        if len(calls) > 2:
            raise SinkInterrupted("revoked")

    with pytest.raises(SinkInterrupted):
        sliced_sleep(check)(30.0)
    assert len(calls) == 3  # ended at the third look, two slices in, not after the 30 s
    sliced_sleep(lambda: None)(0.0)  # nothing to wait: returns
