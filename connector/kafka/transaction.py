"""Kafka transactions with every broker call bounded, and what to do when one fails.

librdkafka's transactional calls wait forever unless given a timeout, and a broker restart is
exactly when they would: the commit of a transaction in flight when the broker went away never
returned (issue 17). Here every call has a timeout, and a failure is sorted into what the caller
can do about it (librdkafka's transactional API, INTRODUCTION.md "Transactional Producer"):

    retriable       (timed out, coordinator moving)   -> the same call again, until ``give_up``
    txn_requires_abort                                 -> abort, then TransactionAborted
    fatal, fenced, or still failing at ``give_up``     -> ProducerUnusable: build a new producer
                                                          (its init_transactions fences this
                                                          one and ends its open transaction)

A call that does not return at all is bounded too: librdkafka 2.x's
``send_offsets_to_transaction`` ignores its timeout while the group coordinator is away
(librdkafka issues #5456 and #5511, open), which is the hang a broker restart caused. Each call
runs on a daemon thread and is given up ``call_seconds`` plus a grace after it should have
returned; the producer is then ProducerUnusable and the call's thread is left to the library.

Either way the caller's state that was built on the transaction is ahead of Kafka: it must be
rebuilt from what Kafka committed (the normalizer restarts from its changelogs), so exactly-once
holds whichever way a transaction ends. Clock and sleep are injected; tests never wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connector.errors import ConnectorError
from connector.kafka.clients import KafkaError, KafkaException, TopicPartition
from connector.kafka.protocols import TransactionalClient

__all__ = [
    "BoundedTransactions",
    "ProducerUnusable",
    "TransactionAborted",
    "TransactionBounds",
    "describe",
]

log = logging.getLogger(__name__)


class TransactionAborted(ConnectorError):
    """The transaction was aborted (by us, after Kafka asked for it): nothing of it is visible."""


class ProducerUnusable(ConnectorError):
    """The transactional producer cannot go on (fatal error, fenced, or a call that kept failing
    past its bound): close it and build a new one with the same transactional.id."""


@dataclass(frozen=True)
class TransactionBounds:
    """How long one broker call may take, and how long one step is retried before giving up."""

    #: One init/send-offsets/commit/abort call (librdkafka returns _TIMED_OUT, retriable).
    call_seconds: float = 10.0
    #: Retrying one step (a broker restart takes seconds; a longer absence rebuilds the producer).
    give_up_seconds: float = 60.0
    #: Pause between retries of a call that failed at once (e.g. coordinator not available).
    retry_pause_seconds: float = 0.5
    #: How long past its own timeout a call may take before it counts as hung.
    hang_grace_seconds: float = 5.0


def _error(exc: KafkaException) -> KafkaError:
    return exc.args[0]


def describe(exc: KafkaException) -> str:
    error = _error(exc)
    return (f"{error.name()}: {error.str()} (retriable={error.retriable()} "
            f"abortable={error.txn_requires_abort()} fatal={error.fatal()})")


class BoundedTransactions:
    """Runs the transactional calls of one producer, each bounded, with the retries above."""

    def __init__(self, bounds: TransactionBounds | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.bounds = bounds or TransactionBounds()
        self._clock = clock
        self._sleep = sleep

    def init(self, producer: TransactionalClient, stop: Callable[[], bool] = lambda: False
             ) -> None:
        """init_transactions, retried while Kafka says so; ProducerUnusable past the bound."""
        self._retrying("init_transactions", lambda t: producer.init_transactions(t), stop)

    def end(self, producer: TransactionalClient, offsets: list[TopicPartition],
            group: Any) -> None:
        """Commit the input offsets and the transaction. Raises TransactionAborted (aborted
        here) or ProducerUnusable; the caller's state is then ahead of Kafka either way."""
        try:
            if offsets:
                self._retrying("send_offsets_to_transaction",
                               lambda t: producer.send_offsets_to_transaction(offsets, group, t))
            self._retrying("commit_transaction", lambda t: producer.commit_transaction(t))
        except _Abortable as exc:
            self.abort(producer)
            raise TransactionAborted(f"transaction aborted: {exc}") from exc

    def abort(self, producer: TransactionalClient) -> None:
        """abort_transaction, retried; ProducerUnusable when it cannot be done."""
        try:
            self._retrying("abort_transaction", lambda t: producer.abort_transaction(t))
        except _Abortable as exc:  # an abort that needs an abort: nothing more to try here
            raise ProducerUnusable(f"abort_transaction failed: {exc}") from exc

    def _retrying(self, name: str, call: Callable[[float], None],
                  stop: Callable[[], bool] = lambda: False) -> None:
        bounds = self.bounds
        deadline = self._clock() + bounds.give_up_seconds
        attempt = 0
        while True:
            attempt += 1
            started = self._clock()
            left = deadline - started
            timeout = max(min(bounds.call_seconds, left), 0.1)
            try:
                _within(name, call, timeout, timeout + bounds.hang_grace_seconds)
                if attempt > 1:
                    log.info("kafka_call_recovered call=%s attempts=%s", name, attempt)
                return
            except KafkaException as exc:
                error = _error(exc)
                if error.txn_requires_abort():
                    raise _Abortable(describe(exc)) from exc
                if error.fatal() or not error.retriable():
                    raise ProducerUnusable(f"{name} failed: {describe(exc)}") from exc
                if self._clock() >= deadline or stop():
                    raise ProducerUnusable(
                        f"{name} still failing after {bounds.give_up_seconds:.0f}s "
                        f"({attempt} attempts): {describe(exc)}") from exc
                log.warning("kafka_call_retrying call=%s attempt=%s error=%s", name, attempt,
                            describe(exc))
                if self._clock() - started < bounds.retry_pause_seconds:
                    self._sleep(bounds.retry_pause_seconds)


def _within(name: str, call: Callable[[float], None], timeout: float, seconds: float) -> None:
    """Run ``call(timeout)`` on a daemon thread; ProducerUnusable if it has not returned in
    ``seconds`` (its exception, if it raised in time, is raised here)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call(timeout)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, name=f"kafka-{name}", daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        log.error("kafka_call_hung call=%s seconds=%.0f (librdkafka ignored the call's timeout; "
                  "the producer is replaced)", name, seconds)
        raise ProducerUnusable(f"{name} did not return within {seconds:.0f}s")
    failure = outcome[0]
    if failure is not None:
        raise failure


class _Abortable(Exception):
    """Internal: Kafka said the transaction must be aborted."""
