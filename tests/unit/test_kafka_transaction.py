"""BoundedTransactions: every transactional call bounded, failures sorted into retry, abort, or
a new producer (stand-in producer, no broker; the clock and sleep are injected)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from connector.kafka.transaction import (
    BoundedTransactions,
    ProducerUnusable,
    TransactionAborted,
    TransactionBounds,
)
from tests.fakes import FakeClock

OFFSETS = [TopicPartition("t", 0, 5)]


class _Producer:
    """Each call pops its next outcome: None succeeds, a KafkaError raises, "hang" blocks."""

    def __init__(self, **outcomes: list[Any]) -> None:
        self.outcomes = outcomes
        self.calls: list[tuple[str, float]] = []
        self.release = threading.Event()

    def _call(self, name: str, timeout: float) -> None:
        self.calls.append((name, timeout))
        queue = self.outcomes.get(name) or [None]
        outcome = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(outcome, str):  # "hang"
            self.release.wait(30)  # as librdkafka does while the coordinator is away (#5456)
        elif outcome is not None:
            raise KafkaException(outcome)

    def init_transactions(self, timeout: float) -> None:
        self._call("init", timeout)

    def send_offsets_to_transaction(self, _offsets: Any, _group: Any, timeout: float) -> None:
        self._call("offsets", timeout)

    def commit_transaction(self, timeout: float) -> None:
        self._call("commit", timeout)

    def abort_transaction(self, timeout: float) -> None:
        self._call("abort", timeout)

    def begin_transaction(self) -> None:
        pass


def _transactions(clock: FakeClock, **bounds: float) -> BoundedTransactions:
    return BoundedTransactions(TransactionBounds(**bounds), clock=clock, sleep=clock.sleep)


TIMED_OUT = KafkaError(KafkaError._TIMED_OUT, "timed out", retriable=True)
ABORTABLE = KafkaError(KafkaError._TIMED_OUT, "must abort", txn_requires_abort=True)
FENCED = KafkaError(KafkaError._FENCED, "fenced", fatal=True)


def test_every_call_has_a_finite_timeout_and_a_clean_commit_makes_two_calls() -> None:
    clock = FakeClock()
    producer = _Producer()
    _transactions(clock).end(producer, OFFSETS, object())
    assert [name for name, _ in producer.calls] == ["offsets", "commit"]
    assert all(0 < timeout <= 10 for _, timeout in producer.calls)


def test_a_timed_out_commit_is_called_again_and_lands() -> None:
    clock = FakeClock()
    producer = _Producer(commit=[TIMED_OUT, TIMED_OUT, None])
    _transactions(clock).end(producer, OFFSETS, object())
    assert [name for name, _ in producer.calls] == ["offsets", "commit", "commit", "commit"]


def test_a_commit_that_keeps_timing_out_gives_up_within_its_bound() -> None:
    clock = FakeClock()
    producer = _Producer(commit=[TIMED_OUT])
    with pytest.raises(ProducerUnusable, match="still failing after 3s"):
        _transactions(clock, give_up_seconds=3, retry_pause_seconds=0.5).end(
            producer, OFFSETS, object())
    assert 2 <= len(producer.calls) <= 9 and clock.now >= 3


def test_an_abortable_error_aborts_and_says_so() -> None:
    clock = FakeClock()
    producer = _Producer(commit=[ABORTABLE])
    with pytest.raises(TransactionAborted):
        _transactions(clock).end(producer, OFFSETS, object())
    assert [name for name, _ in producer.calls] == ["offsets", "commit", "abort"]


def test_an_abort_that_fails_for_good_asks_for_a_new_producer() -> None:
    clock = FakeClock()
    producer = _Producer(commit=[ABORTABLE], abort=[FENCED])
    with pytest.raises(ProducerUnusable, match="abort_transaction failed"):
        _transactions(clock).end(producer, OFFSETS, object())


def test_a_fatal_error_asks_for_a_new_producer_without_retrying() -> None:
    clock = FakeClock()
    producer = _Producer(offsets=[FENCED])
    with pytest.raises(ProducerUnusable, match="fenced"):
        _transactions(clock).end(producer, OFFSETS, object())
    assert [name for name, _ in producer.calls] == ["offsets"]


def test_a_call_that_never_returns_is_given_up_and_the_producer_replaced() -> None:
    clock = FakeClock()
    producer = _Producer(offsets=["hang"])
    try:
        with pytest.raises(ProducerUnusable, match="did not return"):
            _transactions(clock, call_seconds=0.05, hang_grace_seconds=0.05).end(
                producer, OFFSETS, object())
    finally:
        producer.release.set()
    assert [name for name, _ in producer.calls] == ["offsets"]


def test_init_is_retried_while_the_cluster_does_not_answer() -> None:
    clock = FakeClock()
    producer = _Producer(init=[TIMED_OUT, TIMED_OUT, None])
    _transactions(clock).init(producer)
    assert [name for name, _ in producer.calls] == ["init", "init", "init"]
