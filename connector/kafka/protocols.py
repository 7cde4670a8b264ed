"""What the connector needs of Kafka clients, as typed protocols, one per role.

confluent-kafka's Consumer and Producer satisfy them; a test hands a fake with the same methods.
Code that is given its clients (the workers, the shared helpers of this package) depends on these,
not on the library's classes; the builders of :mod:`connector.kafka.clients` return the library's.

Each protocol holds what one role calls, with the arguments it passes (positional-only where the
callers pass them by position, so a fake may name them as it likes):

* consumers: :class:`GroupMember` (joins with rebalance callbacks, reads, closes), refined into
  :class:`CommittingMember` (the sink's: commits its own offsets, pauses for backpressure) and
  :class:`TransactionalMember` (the normalizer's: its offsets go into transactions, through
  :class:`GroupPositions`); :class:`ConsumerClient` for the helpers that read, look up and
  assign; what they return is a :class:`ConsumedMessage` (or a :class:`ConsumedRecord`, once
  known to be no error event);
* producers: :class:`RecordProducer` (produce) and :class:`ProducerClient` (with poll and
  flush); :class:`DeliveryProducer` (the sink's dead letters, confirmed by callbacks);
  :class:`TransactionalClient` (the transactional calls), :class:`TransactionWriter` (what a
  transaction is written with) and :class:`TransactionalProducer` (the one a worker owns);
* :class:`Closable`: any client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

from connector.kafka.clients import KafkaError, Message, TopicPartition

#: A partition named by (topic, partition number): hashable, unlike a TopicPartition.
PartitionId = tuple[str, int]
#: A partition's (low, high) watermark offsets.
Watermarks = tuple[int, int]
#: A record's headers as a client hands them over: (name, value) pairs (a mapping if produced
#: from one).
MessageHeaders = Sequence[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None]
#: ``on_assign`` / ``on_revoke`` / ``on_lost``: called with the consumer and the partitions.
RebalanceCallback = Callable[[Any, list[TopicPartition]], None]
#: ``on_delivery``: called by poll/flush with the error (None: delivered) and the message.
DeliveryCallback = Callable[[KafkaError | None, Any], None]


class ConsumedMessage(Protocol):
    """What a consumer's poll or consume returns: a record, or an error event (``error()`` set,
    coordinates not necessarily)."""

    def error(self) -> KafkaError | None: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> MessageHeaders | None: ...
    def timestamp(self) -> tuple[int, int]: ...


class ConsumedRecord(Protocol):
    """A record as a consumer delivers it (a Message that is no error event): its coordinates
    are always set, its headers a list when it has any."""

    def topic(self) -> str: ...
    def partition(self) -> int: ...
    def offset(self) -> int: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> list[tuple[str, bytes | None]] | None: ...
    def timestamp(self) -> tuple[int, int]: ...


# -- consumers -------------------------------------------------------------------------------


class GroupMember(Protocol):
    """A consumer in a group: joins it with rebalance callbacks, reads, and closes."""

    def subscribe(self, topics: list[str], *, on_assign: RebalanceCallback,
                  on_revoke: RebalanceCallback, on_lost: RebalanceCallback) -> None: ...
    def consume(self, num_messages: int, timeout: float, /) -> Sequence[ConsumedMessage]: ...
    def poll(self, timeout: float, /) -> ConsumedMessage | None: ...
    def close(self) -> None: ...


class CommittingMember(GroupMember, Protocol):
    """The sink's consumer: commits its own offsets, asynchronously (the answer comes to its
    ``on_commit``), pauses partitions while the worker holds too much, and seeks a partition
    back to read an account's skipped records again."""

    def pause(self, partitions: list[TopicPartition], /) -> None: ...
    def resume(self, partitions: list[TopicPartition], /) -> None: ...
    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[True]) -> None: ...
    def seek(self, partition: TopicPartition, /) -> None: ...


class GroupPositions(Protocol):
    """The consumer whose positions a transaction commits (with its group's metadata)."""

    def assignment(self) -> list[TopicPartition]: ...
    def position(self, partitions: list[TopicPartition], /) -> list[TopicPartition]: ...
    def consumer_group_metadata(self) -> Any: ...


class TransactionalMember(GroupMember, GroupPositions, Protocol):
    """The normalizer's consumer: its offsets go into its producer's transactions, and it
    leaves the group (unsubscribe) before closing, when the worker stops or restarts it."""

    def unsubscribe(self) -> None: ...


class ConsumerClient(Protocol):
    """The consumer calls of the helpers that read, look up and assign (reading to the end,
    positions, offsets, metadata)."""

    def poll(self, timeout: float = -1) -> Message | None: ...
    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    def assignment(self) -> list[TopicPartition]: ...
    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...
    def pause(self, partitions: list[TopicPartition]) -> None: ...
    def resume(self, partitions: list[TopicPartition]) -> None: ...
    def committed(self, partitions: list[TopicPartition],
                  timeout: float = -1) -> list[TopicPartition]: ...
    def get_watermark_offsets(self, partition: TopicPartition, timeout: float = -1,
                              cached: bool = False) -> tuple[int, int]: ...
    def offsets_for_times(self, partitions: list[TopicPartition],
                          timeout: float = -1) -> list[TopicPartition]: ...
    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...
    def consumer_group_metadata(self) -> Any: ...
    def close(self) -> None: ...


# -- producers -------------------------------------------------------------------------------


class RecordProducer(Protocol):
    """Produces records (confluent-kafka's ``produce``; ``headers`` as it takes them)."""

    def produce(self, topic: str, value: str | bytes | None = None,
                key: str | bytes | None = None, partition: int = -1,
                callback: DeliveryCallback | None = None,
                on_delivery: DeliveryCallback | None = None, timestamp: int = 0,
                headers: Any = None) -> None: ...


class ProducerClient(RecordProducer, Protocol):
    """The producer calls the connector makes outside transactions."""

    def poll(self, timeout: float = -1) -> int: ...
    def flush(self, timeout: float = -1) -> int: ...
    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...


class DeliveryProducer(Protocol):
    """The sink's dead-letter producer: each record produced (by keyword) with a delivery
    callback, which ``poll`` and ``flush`` serve on the caller's thread."""

    def produce(self, *, topic: str, on_delivery: DeliveryCallback, key: str | bytes | None = None,
                value: str | bytes | None = None, headers: Any = None) -> None: ...
    def poll(self, timeout: float, /) -> int: ...
    def flush(self, timeout: float, /) -> int: ...


class TransactionalClient(Protocol):
    """The transactional calls of a Producer (bounded by `connector.kafka.transaction`)."""

    def init_transactions(self, timeout: float, /) -> None: ...
    def begin_transaction(self) -> None: ...
    def send_offsets_to_transaction(self, positions: list[TopicPartition], group_metadata: Any,
                                    timeout: float, /) -> None: ...
    def commit_transaction(self, timeout: float, /) -> None: ...
    def abort_transaction(self, timeout: float, /) -> None: ...


class TransactionWriter(RecordProducer, TransactionalClient, Protocol):
    """What a transaction is written with: produces, and commits or aborts what it produced."""


class TransactionalProducer(TransactionWriter, Protocol):
    """The transactional producer a worker owns: flushed when the worker stops, purged when it
    is dropped for a new one."""

    def flush(self, timeout: float, /) -> int: ...
    def purge(self) -> None: ...


class Closable(Protocol):
    """Any client: each has a close() (a Producer's returns a flag, a Consumer's nothing)."""

    def close(self) -> object: ...
