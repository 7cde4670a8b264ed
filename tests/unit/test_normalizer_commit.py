"""The normalizer ends each transaction on its committer thread: one transaction at a time, in
order, and a failed commit is not lost (stand-in producer and consumer, no broker)."""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from connector.config import load_settings
from connector.runtime.assemble import normalizer_worker
from connector.runtime.normalizer import NormalizerWorker
from connector.runtime.normalizer_state import RestartNeeded, TransactionWrites
from connector.telemetry.progress import ProgressWatch


class _Producer:
    """Records the transactional calls; commit_transaction takes a while on the calling thread
    (as a broker round trip does), so a transaction begun meanwhile would show."""

    def __init__(self, fail_commit: KafkaError | None = None) -> None:
        self.calls: list[str] = []
        self.timeouts: list[float] = []
        self.committing = False
        self.fail_commit = fail_commit
        self.commit_threads: set[str] = set()

    def begin_transaction(self) -> None:
        assert not self.committing, "a transaction began while the previous one was committing"
        self.calls.append("begin")

    def produce(self, *_args: Any, **_kwargs: Any) -> None:
        assert not self.committing, "produced while the previous transaction was committing"
        self.calls.append("produce")

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], _group: Any,
                                    timeout: float) -> None:
        self.timeouts.append(timeout)
        self.calls.append(f"offsets {offsets[0].offset}")

    def commit_transaction(self, timeout: float) -> None:
        self.timeouts.append(timeout)
        self.committing = True
        self.commit_threads.add(threading.current_thread().name)
        time.sleep(0.05)  # widens the window in which a wrongly begun transaction shows
        self.committing = False
        if self.fail_commit is not None:
            raise KafkaException(self.fail_commit)
        self.calls.append("commit")

    def abort_transaction(self, timeout: float) -> None:
        self.timeouts.append(timeout)
        self.calls.append("abort")

    def init_transactions(self, timeout: float) -> None:
        self.timeouts.append(timeout)
        self.calls.append("init")

    def purge(self) -> None:
        self.calls.append("purge")


class _Consumer:
    def __init__(self) -> None:
        self.offset = 0

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("webinar.activity", 0)]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.offset) for tp in partitions]

    def consumer_group_metadata(self) -> object:
        return object()

    def get_watermark_offsets(self, _tp: TopicPartition, cached: bool = False
                              ) -> tuple[int, int]:
        return 0, self.offset


def _worker() -> NormalizerWorker:
    return normalizer_worker(load_settings({}), threading.Event())


def _pending(consumed: int) -> TransactionWrites:
    return TransactionWrites(consumed=consumed)


def test_transactions_are_ended_on_the_committer_thread_one_at_a_time_in_order() -> None:
    worker, producer, consumer = _worker(), _Producer(), _Consumer()
    for offset in (10, 20, 30):
        consumer.offset = offset
        worker.parts.commits.commit_behind(consumer, producer, _pending(10))
    worker.parts.commits.await_commit()
    assert producer.calls == ["begin", "offsets 10", "commit", "begin", "offsets 20", "commit",
                              "begin", "offsets 30", "commit"]
    assert producer.commit_threads  # never the loop's thread: it goes on meanwhile
    assert threading.main_thread().name not in producer.commit_threads
    assert worker.parts.commits.in_flight is None
    assert producer.timeouts and all(0 < t <= 10 for t in producer.timeouts)  # never infinite


def test_a_failed_commit_surfaces_before_the_next_transaction_and_is_aborted() -> None:
    failure = KafkaError(KafkaError._TIMED_OUT, "commit timed out", txn_requires_abort=True)
    worker, producer, consumer = _worker(), _Producer(fail_commit=failure), _Consumer()
    consumer.offset = 10
    worker.parts.commits.commit_behind(consumer, producer, _pending(10))
    consumer.offset = 20
    with pytest.raises(RestartNeeded):
        worker.parts.commits.commit_behind(consumer, producer, _pending(10))
    assert producer.calls == ["begin", "offsets 10", "abort"]  # the second never began


def test_a_fatal_commit_error_replaces_the_producer_and_restarts_from_the_changelogs() -> None:
    failure = KafkaError(KafkaError._FENCED, "fenced by a newer instance", fatal=True)
    worker, producer, consumer = _worker(), _Producer(fail_commit=failure), _Consumer()
    replacement = _Producer()
    worker.producer_factory = lambda: replacement  # type: ignore[assignment,return-value]
    worker.producer = producer  # type: ignore[assignment]
    worker.parts.commits.commit_behind(consumer, producer, _pending(1))
    with pytest.raises(RestartNeeded):
        worker.parts.commits.await_commit()
    assert producer.calls[-1] == "purge" and "abort" not in producer.calls
    assert worker.producer is replacement


def test_a_commit_that_times_out_is_retried_until_it_lands() -> None:
    timed_out = KafkaError(KafkaError._TIMED_OUT, "commit timed out", retriable=True)
    worker, producer, consumer = _worker(), _Producer(), _Consumer()
    worker.transactions._sleep = lambda _s: None
    outcomes = [timed_out, timed_out, None]
    real_commit = producer.commit_transaction

    def flaky_commit(timeout: float) -> None:
        failure = outcomes.pop(0)
        if failure is not None:
            raise KafkaException(failure)
        real_commit(timeout)

    producer.commit_transaction = flaky_commit  # type: ignore[method-assign]
    worker.parts.commits.commit_behind(consumer, producer, _pending(1))
    worker.parts.commits.await_commit()
    assert producer.calls == ["begin", "offsets 0", "commit"] and outcomes == []


def test_a_rebalance_waits_for_the_commit_in_flight() -> None:
    worker, producer, consumer = _worker(), _Producer(), _Consumer()
    consumer.offset = 10
    worker.parts.commits.commit_behind(consumer, producer, _pending(10))
    worker.parts.rebalance.on_revoke(consumer, [TopicPartition("webinar.activity", 0)])
    assert producer.calls[-1] == "commit"
    assert worker.parts.commits.in_flight is None


def test_a_freezing_worker_collects_with_no_transaction_open_and_freezes_once_written() -> None:
    worker = normalizer_worker(load_settings({}), threading.Event(), freeze_state=True)
    producer, consumer = _Producer(), _Consumer()
    seen: list[tuple[str, list[str]]] = []
    worker.collector.collect_if_due = (  # type: ignore[method-assign]
        lambda: seen.append(("collect", list(producer.calls))))
    worker.collector.after_transaction = (  # type: ignore[method-assign]
        lambda: seen.append(("freeze", list(producer.calls))))
    for offset in (10, 20):
        consumer.offset = offset
        worker.parts.commits.commit_behind(consumer, producer, _pending(10))
    worker.parts.commits.await_commit()
    # A full collection only between transactions: the previous one committed, none begun.
    assert [kind for kind, _calls in seen] == ["collect", "freeze", "collect", "freeze"]
    assert seen[0][1] == [] and seen[2][1] == ["begin", "offsets 10", "commit"]
    # The freeze once the transaction is written (its commit may be under way meanwhile).
    assert seen[1][1][:1] == ["begin"]
    assert seen[3][1][:4] == ["begin", "offsets 10", "commit", "begin"]


@pytest.mark.parametrize(("freeze_state", "frozen"), [(True, True), (False, False)])
def test_only_a_freezing_worker_leaves_its_state_frozen_after_a_transaction(
        freeze_state: bool, frozen: bool) -> None:
    gc.unfreeze()
    worker = normalizer_worker(load_settings({}), threading.Event(), freeze_state=freeze_state)
    producer, consumer = _Producer(), _Consumer()
    try:
        with worker.collector:
            worker.parts.commits.commit_behind(consumer, producer, _pending(1))
            worker.parts.commits.await_commit()
            assert (gc.get_freeze_count() > 0) is frozen
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()


class _IdleConsumer(_Consumer):
    def consume(self, _max: int, _timeout: float) -> list[Any]:
        return []


class _NoWebinars:
    def poll(self, _timeout: float) -> list[str]:
        return []


def test_an_idle_loop_still_takes_the_due_full_collection() -> None:
    worker = normalizer_worker(load_settings({}), threading.Event(), freeze_state=True)
    calls: list[str] = []

    def collect_if_due() -> None:
        calls.append("collect")
        worker.stop.set()

    worker.collector.collect_if_due = collect_if_due  # type: ignore[method-assign]
    worker._loop(_IdleConsumer(), _Producer(), _NoWebinars())  # type: ignore[arg-type]
    assert calls == ["collect"]


class _FailingBegin(_Producer):
    def __init__(self, failure: KafkaError) -> None:
        super().__init__()
        self.failure = failure

    def begin_transaction(self) -> None:
        self.calls.append("begin")
        raise KafkaException(self.failure)


def test_a_write_that_kafka_says_to_abort_is_aborted_and_the_state_rebuilt() -> None:
    failure = KafkaError(KafkaError._STATE, "abort it", txn_requires_abort=True)
    worker, producer = _worker(), _FailingBegin(failure)
    worker.producer = producer  # type: ignore[assignment]
    with pytest.raises(RestartNeeded):
        worker.parts.commits.commit_behind(_Consumer(), producer, _pending(1))
    assert producer.calls == ["begin", "abort"] and worker.producer is producer


def test_a_write_that_fails_for_good_replaces_the_producer() -> None:
    failure = KafkaError(KafkaError._FENCED, "fenced", fatal=True)
    worker, producer, replacement = _worker(), _FailingBegin(failure), _Producer()
    worker.producer = producer  # type: ignore[assignment]
    worker.producer_factory = lambda: replacement  # type: ignore[assignment,return-value]
    with pytest.raises(RestartNeeded):
        worker.parts.commits.commit_behind(_Consumer(), producer, _pending(1))
    assert producer.calls == ["begin", "purge"] and worker.producer is replacement


def test_a_committed_transaction_is_progress_for_the_stall_watch() -> None:
    now = [0.0]
    watch = ProgressWatch("normalizer", 10.0, clock=lambda: now[0])
    worker = normalizer_worker(load_settings({}), threading.Event(), progress=watch)
    watch.set_backlog(lag=5)
    now[0] = 20.0
    assert watch.check().stalled  # work, and nothing committed for 20 s
    worker.parts.commits.commit(_Consumer(), _Producer(), _pending(1))
    status = watch.check()
    assert not status.stalled and status.seconds_without_progress == 0.0
