"""Redrive: re-produce dead letters' original key, value and headers to where they came from.

`plan` decides (pure): the target topic (`__connect.errors.topic`, or `--to`), the partition (the
original one when going back to the original topic, so per-webinar order and the normalizer's
per-partition state hold; the producer's key partitioner otherwise) and the headers
(connector.dlq.history). `send` produces a plan at a paced rate with an idempotent producer that
the caller passes in, and says which records were delivered.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from connector.dlq.errors import RedriveError
from connector.dlq.history import int_or_text, redrive_headers
from connector.dlq.progress import PartitionProgress, RedriveProgress
from connector.dlq.record import DeadLetterRecord
from connector.kafka.clients import KafkaException
from connector.serde.record import Headers


@dataclass(frozen=True)
class Redrive:
    """One dead letter and how it is re-produced."""

    record: DeadLetterRecord
    target: str
    partition: int | None
    headers: Headers
    attempt: int

    def produce_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"topic": self.target, "key": self.record.key,
                                "value": self.record.value, "headers": self.headers}
        if self.partition is not None:
            args["partition"] = self.partition
        return args

    def to_json(self) -> dict[str, Any]:
        key = self.record.key_text
        return {
            "partition": self.record.partition,
            "offset": self.record.offset,
            "key": key,
            **({"key_base64": base64.b64encode(self.record.key).decode("ascii")}
               if key is None and self.record.key is not None else {}),
            "reason": self.record.reason,
            "status": int_or_text(self.record.http_status),
            "target": self.target,
            "target_partition": self.partition,
            "attempt": self.attempt,
        }


def plan(records: Iterable[DeadLetterRecord], *, to: str | None,
         partitions: dict[str, int], now_ms: int) -> list[Redrive]:
    """How each record is redriven. `partitions` gives the partition count of existing topics.

    Raises RedriveError, before anything is sent, when a record's target is unknown or missing.
    """
    out = []
    for record in records:
        original = record.source_topic
        target = to or original
        if not target:
            raise RedriveError(f"record {record.topic}[{record.partition}]@{record.offset} has no "
                               "__connect.errors.topic header; pass --to TOPIC to choose one")
        if target not in partitions:
            raise RedriveError(f"the target topic {target} (of record {record.topic}"
                               f"[{record.partition}]@{record.offset}) does not exist; nothing "
                               "was sent")
        partition = None
        position = record.source_position
        if target == original and position is not None and position[0] < partitions[target]:
            partition = position[0]
        headers, attempt = redrive_headers(record, now_ms)
        out.append(Redrive(record, target, partition, headers, attempt))
    return out


def advance_progress(progress: RedriveProgress, sent: Iterable[Redrive],
                     scanned: Iterable[DeadLetterRecord]) -> RedriveProgress:
    """The progress after `sent` were delivered, having read `scanned`."""
    sent_by: dict[int, list[int]] = {}
    for r in sent:
        sent_by.setdefault(r.record.partition, []).append(r.record.offset)
    scanned_by: dict[int, list[int]] = {}
    for record in scanned:
        scanned_by.setdefault(record.partition, []).append(record.offset)
    out = dict(progress)
    for partition in set(sent_by) | set(scanned_by):
        current = progress.get(partition, PartitionProgress())
        out[partition] = current.advance(sent_by.get(partition, []),
                                         scanned_by.get(partition, []))
    return out


class Pacer:
    """At most `rate` sends per second (None: unpaced); clock and sleep are injected."""

    def __init__(self, rate: float | None, clock: Callable[[], float],
                 sleep: Callable[[float], None]):
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self._interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    def wait(self) -> None:
        """Block until the next send is allowed."""
        if not self._interval:
            return
        now = self._clock()
        if self._next is not None and self._next > now:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self._interval


@dataclass
class SendResult:
    """What `send` delivered, and the errors of what it did not."""

    delivered: list[Redrive] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.errors)


def send(producer: Any, redrives: list[Redrive], pacer: Pacer,
         flush_timeout: float = 30.0) -> SendResult:
    """Produce every redrive, paced, then flush; delivery reports decide what was sent."""
    result = SendResult()
    outcomes: dict[int, str | None] = {}

    def reporter(index: int) -> Callable[[Any, Any], None]:
        def on_delivery(error: Any, _message: Any) -> None:
            outcomes[index] = None if error is None else str(error)
        return on_delivery

    for index, redrive in enumerate(redrives):
        pacer.wait()
        while True:
            try:
                producer.produce(**redrive.produce_args(), on_delivery=reporter(index))
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.5)
            except KafkaException as exc:
                outcomes[index] = str(exc.args[0])
                break
        producer.poll(0)
    remaining = producer.flush(flush_timeout)
    for index, redrive in enumerate(redrives):
        outcome = outcomes.get(index, "not delivered before the flush timeout")
        if outcome is None:
            result.delivered.append(redrive)
        else:
            rec = redrive.record
            result.errors.append(f"{rec.topic}[{rec.partition}]@{rec.offset}: {outcome}")
    if remaining and not result.errors:  # pragma: no cover - flush says so, reports do not
        result.errors.append(f"{remaining} record(s) still queued after {flush_timeout:.0f}s")
    return result
