"""Reading partitions to an end: offset ranges (replay, restores, dead letters) or whole topics.

`read_ranges` is the one loop that reads ``[start, end)`` of several partitions with an assigned
consumer (no group membership, no commits), bounded in time. A read_committed consumer never
delivers transaction markers or aborted records, so a range may end without a record at
``end - 1``: a partition is done when a record at or past its end arrives, or at the end of the
partition when the consumer's position reached the end (`ReadLimits.end_at_eof`: at the first
end of the partition, wherever that is).

`read_all` reads a whole topic to its end as it is now (inspection, the demo's summary, tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import cast

from connector.errors import ConnectorError
from connector.kafka import clients
from connector.kafka.clients import OFFSET_BEGINNING, KafkaError, TopicPartition
from connector.kafka.lifecycle import closing
from connector.kafka.protocols import ConsumedRecord, ConsumerClient, PartitionId

#: An end past any offset: the range ends at the end of its partition (with `end_at_eof`).
END_OF_PARTITION = 2**63 - 1


class EndNotReached(ConnectorError):
    """Reading did not reach the end of every range within its bound."""

    def __init__(self, pending: list[PartitionId], seconds: float):
        self.pending = sorted(pending)
        self.seconds = seconds
        names = ", ".join(f"{topic}[{partition}]" for topic, partition in self.pending)
        super().__init__(f"reading {names} did not reach the end within {seconds:.0f}s")


class ReadFailed(ConnectorError):
    """The consumer reported an error for a partition while reading it."""

    def __init__(self, partition: PartitionId, error: KafkaError):
        self.partition = partition
        self.error = error
        super().__init__(f"reading {partition[0]}[{partition[1]}] failed: {error}")


def never(_error: KafkaError) -> bool:
    return False


@dataclass(frozen=True)
class ReadLimits:
    """How `read_ranges` waits, and what ends a range besides its end offset."""

    #: Seconds the whole read may take (EndNotReached after).
    timeout: float = 30.0
    #: Count ``timeout`` from the last record received instead (a stall, not a total).
    timeout_from_last_record: bool = False
    #: The first end of a partition ends its range, even before the range's end offset.
    end_at_eof: bool = False
    #: Records asked for per call, and how long a call waits for them (a batch call waits its
    #: whole wait unless the batch fills: 1 returns at the first record).
    batch: int = 1
    wait_seconds: float = 0.5
    #: Consumer errors to ignore (the others raise ReadFailed).
    tolerate: Callable[[KafkaError], bool] = never


#: Half a second per poll, 30 s in all, nothing tolerated.
DEFAULT_READ_LIMITS = ReadLimits()


def is_partition_eof(error: KafkaError | None) -> bool:
    """The event a consumer with ``enable.partition.eof`` sends at the end of a partition."""
    return error is not None and error.code() == KafkaError._PARTITION_EOF


class _Deadline:
    def __init__(self, limits: ReadLimits):
        self._limits = limits
        self._expires = time.monotonic() + limits.timeout

    def progressed(self) -> None:
        if self._limits.timeout_from_last_record:
            self._expires = time.monotonic() + self._limits.timeout

    def check(self, pending: Mapping[PartitionId, int]) -> None:
        if time.monotonic() > self._expires:
            raise EndNotReached(list(pending), self._limits.timeout)


def _start(offset: int) -> int:
    return offset if offset > 0 else OFFSET_BEGINNING


def read_ranges(consumer: ConsumerClient, ranges: Mapping[PartitionId, tuple[int, int]],
                limits: ReadLimits = DEFAULT_READ_LIMITS) -> Iterator[ConsumedRecord]:
    """Every record with start <= offset < end of each (topic, partition): (start, end), each
    partition's in offset order. Assigns ``consumer`` (read_committed, with
    ``enable.partition.eof``: see `reading_consumer`); EndNotReached past ``limits.timeout``,
    ReadFailed for a consumer error ``limits.tolerate`` does not accept."""
    pending = {tp: end for tp, (start, end) in ranges.items() if end > start}
    if not pending:
        return
    consumer.assign([TopicPartition(topic, partition, _start(ranges[(topic, partition)][0]))
                     for topic, partition in pending])
    deadline = _Deadline(limits)
    while pending:
        deadline.check(pending)
        for message in consumer.consume(limits.batch, limits.wait_seconds):
            tp = (message.topic() or "", message.partition() or 0)
            error = message.error()
            if error is not None:
                _on_error(consumer, pending, tp, error, limits)
                continue
            deadline.progressed()
            offset = message.offset() or 0
            if tp not in pending or offset >= pending[tp]:
                _finish(consumer, pending, tp)
                continue
            yield cast(ConsumedRecord, message)  # not an error event: coordinates are set
            if offset >= pending[tp] - 1:
                _finish(consumer, pending, tp)


def _on_error(consumer: ConsumerClient, pending: dict[PartitionId, int], tp: PartitionId,
              error: KafkaError, limits: ReadLimits) -> None:
    if not is_partition_eof(error):
        if not limits.tolerate(error):
            raise ReadFailed(tp, error)
        return
    if tp in pending and (limits.end_at_eof
                          or consumer.position([TopicPartition(*tp)])[0].offset >= pending[tp]):
        _finish(consumer, pending, tp)  # past the last commit marker


def _finish(consumer: ConsumerClient, pending: dict[PartitionId, int], tp: PartitionId) -> None:
    if pending.pop(tp, None) is not None:
        consumer.pause([TopicPartition(*tp)])


def reading_consumer(source: clients.Source, group_id: str | None = None,
                     properties: Mapping[str, object] | None = None) -> clients.Consumer:
    """A read_committed consumer for `read_ranges`: reports the end of each partition, commits
    nothing; ``group_id`` None: a group of its own (it never joins it)."""
    return clients.read_committed_consumer(
        source, group_id or clients.unique_group_id("reader"),
        {"enable.partition.eof": True, **(properties or {})})


def topic_partitions(consumer: ConsumerClient, topic: str,
                     timeout: float = 10.0) -> list[int] | None:
    """The partition numbers of ``topic``; None when it does not exist."""
    metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return None
    return sorted(metadata.partitions)


def read_all(source: clients.Source, topic: str,
             timeout: float = 30.0) -> list[ConsumedRecord]:
    """Every committed message of ``topic`` (all partitions) up to the end of each partition,
    in the order they were received; what was read when ``timeout`` ran out; [] when the topic
    does not exist. Uses no consumer group offsets. ``source``: KafkaSettings or a consumer's
    config (`KafkaSettings.consumer_config()`)."""
    consumer = reading_consumer(source)
    messages: list[ConsumedRecord] = []
    with closing(consumer, "reader"):
        partitions = topic_partitions(consumer, topic)
        if partitions is None:
            return []
        ranges = {(topic, p): (0, END_OF_PARTITION) for p in partitions}
        try:
            for message in read_ranges(consumer, ranges,
                                       ReadLimits(timeout=timeout, end_at_eof=True)):
                messages.append(message)
        except EndNotReached:
            pass  # what was read so far: a caller polling for records asks again
    return messages
