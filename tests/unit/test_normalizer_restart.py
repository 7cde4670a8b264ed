"""The normalizer's consumer at the end of its life (a restart after an aborted transaction, or a
stop): it leaves the group on the worker's thread before close(), and what close() still
serves on its helper thread never reaches the worker's state (stand-in consumer, no broker)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from connector.config import load_settings
from connector.runtime import normalizer, normalizer_rebalance
from connector.runtime.assemble import normalizer_worker
from connector.runtime.normalizer import NormalizerWorker
from connector.runtime.normalizer_state import RestartNeeded

PARTITIONS = [TopicPartition("webinar.activity", p) for p in range(3)]
#: These tests put stand-ins for the worker's loop and rebalance methods, which a class the
#: native core compiled does not allow: they run in `make test`'s interpreted pass.
interpreted_only = pytest.mark.skipif(
    not all(m.__file__ and m.__file__.endswith(".py") for m in (normalizer, normalizer_rebalance)),
    reason="stands in for compiled methods: runs in the interpreted pass (-p tests.interpreted)")


class _Member:
    """A group member as librdkafka drives one: a poll serves the revocation an unsubscribe
    asked for; close() serves what is still pending (here: the assignment of a rejoin that
    completes while it closes, then its revocation), calling the callbacks on its own thread."""

    def __init__(self, assigned: list[TopicPartition] | None = None,
                 pending_assignment: list[TopicPartition] | None = None) -> None:
        self.callbacks: dict[str, Any] = {}
        self.assigned = list(PARTITIONS if assigned is None else assigned)
        self.pending_assignment = pending_assignment
        self.unsubscribed = False
        self.calls: list[tuple[str, str]] = []  # (call, thread)
        self.assigned_at_close: list[TopicPartition] | None = None

    def _call(self, name: str) -> None:
        self.calls.append((name, threading.current_thread().name))

    def subscribe(self, _topics: list[str], **callbacks: Any) -> None:
        self.callbacks = callbacks

    def assignment(self) -> list[TopicPartition]:
        return list(self.assigned)

    def unsubscribe(self) -> None:
        self._call("unsubscribe")
        self.unsubscribed = True

    def poll(self, _timeout: float) -> None:
        self._call("poll")
        if self.unsubscribed and self.assigned:
            self.callbacks["on_revoke"](self, self.assigned)
            self._call("revoked")
            self.assigned = []

    def close(self) -> None:
        self._call("close")
        self.assigned_at_close = list(self.assigned)
        if self.pending_assignment is not None:
            self.assigned = self.pending_assignment
            self.callbacks["on_assign"](self, self.assigned)
        if self.assigned:
            self.callbacks["on_revoke"](self, self.assigned)
            self.assigned = []


class _Clients:
    def __init__(self, member: _Member) -> None:
        self.member = member

    def group_member(self) -> _Member:
        return self.member


class _Reader:
    def poll(self, _timeout: float) -> list[str]:
        return []


def _worker(member: _Member) -> NormalizerWorker:
    worker = normalizer_worker(load_settings({}), threading.Event())
    worker.clients = _Clients(member)  # type: ignore[assignment]
    worker.producer = object()  # type: ignore[assignment]
    return worker


def _aborted(*_args: Any) -> None:
    error = KafkaError(KafkaError._FENCED, "Static consumer fenced", txn_requires_abort=True)
    raise RestartNeeded() from KafkaException(error)


def _recording(calls: list[str], name: str) -> Any:
    def record(_consumer: object, _partitions: list[TopicPartition]) -> None:
        calls.append(f"{name} {threading.current_thread().name}")
    return record


@interpreted_only
def test_a_restarting_consumer_leaves_on_the_workers_thread_before_it_is_closed() -> None:
    member = _Member()
    worker = _worker(member)
    worker._loop = _aborted  # type: ignore[method-assign]
    worker._run_consumer(_Reader())  # type: ignore[arg-type]
    names = [name for name, _thread in member.calls]
    assert names.index("unsubscribe") < names.index("revoked") < names.index("close")
    here = threading.current_thread().name
    assert all(thread == here for name, thread in member.calls if name != "close")
    # nothing left for close() to revoke on its helper thread
    assert member.assigned_at_close == []


@interpreted_only
def test_what_close_still_serves_does_not_touch_the_state_of_the_next_consumer() -> None:
    """The failing chaos run: the consumer's session had timed out (assignment revoked, a
    rejoin under way); the rejoin completed while it closed, and close() ran the restore and
    the revocation on its thread, next to the worker's."""
    member = _Member(assigned=[], pending_assignment=list(PARTITIONS))  # rejoining
    worker = _worker(member)
    worker._loop = _aborted  # type: ignore[method-assign]
    handled: list[str] = []
    worker.parts.rebalance.on_assign = _recording(handled, "assign")  # type: ignore[method-assign]
    worker.parts.rebalance.on_revoke = _recording(handled, "revoke")  # type: ignore[method-assign]
    worker._run_consumer(_Reader())  # type: ignore[arg-type]
    assert "close" in [name for name, _thread in member.calls]
    assert not [h for h in handled if "close-" in h]  # nothing from close()'s thread
    assert worker.normalizers == {}


@interpreted_only
def test_a_stopping_consumer_still_leaves_and_revokes_before_close() -> None:
    member = _Member()
    worker = _worker(member)
    handled: list[str] = []
    worker.parts.rebalance.on_revoke = _recording(handled, "revoke")  # type: ignore[method-assign]

    def loop_until_stopped(*_args: Any) -> None:
        worker.stop.set()

    worker._loop = loop_until_stopped  # type: ignore[method-assign]
    worker._run_consumer(_Reader())  # type: ignore[arg-type]
    names = [name for name, _thread in member.calls]
    assert names.index("unsubscribe") < names.index("revoked") < names.index("close")
    assert member.assigned_at_close == []


@pytest.mark.parametrize("failure", [
    KafkaError(KafkaError._TRANSPORT, "Failed while waiting for response from broker"),
    KafkaError(KafkaError.INVALID_REPLICATION_FACTOR,
               "Unable to replicate the partition 1 time(s): All brokers are currently fenced."),
])
def test_topics_are_created_again_once_a_restarting_broker_answers(failure: KafkaError) -> None:
    """Start-up just after a broker restart: CreateTopics may fail (no answer, or a KRaft broker
    still fenced); it is asked again like the metadata before it, not a crash of the worker."""
    worker = normalizer_worker(load_settings({}), threading.Event())
    attempts: list[int] = []

    class Clients:
        def partition_counts(self) -> dict[str, int]:
            return {"webinar.activity": 3, "webinar.webinars": 3}

        def create_missing(self, _specs: list[Any]) -> list[str]:
            attempts.append(1)
            if len(attempts) == 1:
                raise KafkaException(failure)
            return []

        def webinar_table(self, *_args: Any) -> None:
            worker.stop.set()  # enough: what follows the table is tested elsewhere
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker transport"))

    worker.clients = Clients()  # type: ignore[assignment]
    worker.parts.wait.stop = worker.stop
    worker.run()  # returns: stopped while waiting for the webinars topic
    assert len(attempts) == 2
