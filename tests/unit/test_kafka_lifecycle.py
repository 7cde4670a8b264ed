"""The workers' shared start-up wait (until_available) and bounded close (no broker)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, KafkaException

from connector.kafka.admin import KafkaUnavailableError
from connector.kafka.lifecycle import close_within, is_transient, pause_before, until_available
from tests.fakes import FakeClock


def _failing(*errors: BaseException) -> tuple[list[float], Callable[[float], str]]:
    calls: list[float] = []
    queue = list(errors)

    def call(seconds_left: float) -> str:
        calls.append(seconds_left)
        if queue:
            raise queue.pop(0)
        return "metadata"

    return calls, call


TRANSPORT = KafkaException(KafkaError(KafkaError._TRANSPORT))


def test_a_cluster_away_for_a_while_is_waited_for_with_growing_pauses() -> None:
    clock = FakeClock()
    calls, call = _failing(TRANSPORT, TRANSPORT, TRANSPORT)
    result = until_available(call, what="x", servers="h:1", give_up_seconds=60,
                             stop=threading.Event(), clock=clock, sleep=clock.sleep)
    assert result == "metadata" and len(calls) == 4
    assert clock.now == 0.5 + 1.0 + 2.0 and calls[-1] == 60 - clock.now


def test_past_the_bound_it_is_a_clear_error_naming_the_servers() -> None:
    clock = FakeClock()
    _calls, call = _failing(*[TRANSPORT] * 100)
    with pytest.raises(KafkaUnavailableError, match=r"Kafka at h:1 did not answer for 20s "
                                                    r"while reading x"):
        until_available(call, what="reading x", servers="h:1", give_up_seconds=20,
                        stop=threading.Event(), clock=clock, sleep=clock.sleep)


def test_an_error_that_is_not_the_cluster_being_away_raises_at_once() -> None:
    denied = KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    calls, call = _failing(denied)
    with pytest.raises(KafkaException):
        until_available(call, what="x", servers="h:1", give_up_seconds=60,
                        stop=threading.Event(), sleep=lambda _s: None)
    assert len(calls) == 1 and not is_transient(denied) and is_transient(TRANSPORT)


def test_a_kraft_broker_still_fenced_after_its_restart_is_waited_for() -> None:
    """CreateTopics right after a broker restart (the chaos run: a worker starting meanwhile);
    a replication factor that the cluster cannot meet is still an error at once."""
    fenced = KafkaException(KafkaError(
        KafkaError.INVALID_REPLICATION_FACTOR,
        "Unable to replicate the partition 1 time(s): All brokers are currently fenced."))
    too_many = KafkaException(KafkaError(
        KafkaError.INVALID_REPLICATION_FACTOR,
        "Unable to replicate the partition 3 time(s): The target replication factor of 3 "
        "cannot be reached because only 1 broker(s) are registered."))
    calls, call = _failing(fenced)
    assert until_available(call, what="x", servers="h:1", give_up_seconds=60,
                           stop=threading.Event(), sleep=lambda _s: None) == "metadata"
    assert len(calls) == 2 and is_transient(fenced) and not is_transient(too_many)


def test_stop_ends_the_wait_with_none() -> None:
    stop = threading.Event()
    stop.set()
    _calls, call = _failing(*[TRANSPORT] * 100)
    assert until_available(call, what="x", servers="h:1", give_up_seconds=60,
                           stop=stop) is None


def test_pauses_grow_to_their_last_value() -> None:
    assert [pause_before(n) for n in (1, 2, 3, 4, 5, 9)] == [0.5, 1.0, 2.0, 5.0, 10.0, 10.0]


def test_a_close_that_hangs_is_given_up_and_one_that_returns_is_not() -> None:
    release = threading.Event()
    try:
        assert close_within(lambda: release.wait(30), 0.05, "stuck") is False
    finally:
        release.set()
    assert close_within(lambda: None, 5.0, "fine") is True
