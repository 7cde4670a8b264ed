"""What replay asks Kafka: groups, topics, watermarks, offsets by time; and offset commits.

Every KafkaException is translated here, once, into a ReplayError that says what to do.
Reads use consumers that never join a group and never commit (assign only).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from connector.kafka import admin as topics_admin
from connector.kafka import clients, groups
from connector.kafka.admin import partition_counts
from connector.kafka.clients import KafkaException, TopicPartition
from connector.kafka.lifecycle import closing
from connector.kafka.offsets import watermarks
from connector.kafka.protocols import ConsumedRecord
from connector.kafka.reader import EndNotReached, ReadFailed, ReadLimits, reading_consumer
from connector.kafka.reader import read_ranges as read_offset_ranges
from connector.replay.errors import (
    GroupActiveError,
    OffsetCommitError,
    ReplayError,
    UnknownGroupError,
    UnknownTopicError,
)
from connector.replay.spec import TopicSelector

TIMEOUT = 30.0

TP = tuple[str, int]


@dataclass(frozen=True)
class GroupInfo:
    """A consumer group's state and its members, one readable line each."""

    group_id: str
    state: str
    members: tuple[str, ...]

    @property
    def is_active(self) -> bool:
        return bool(self.members) or self.state not in ("EMPTY", "DEAD")


def _short(items: Iterable[str], limit: int = 30) -> str:
    names = sorted(items)
    shown = ", ".join(names[:limit])
    more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
    return (shown + more) if names else "(none)"


class Cluster:
    """AdminClient + an assign-only consumer, with the connector's client settings.

    `client_config`: a consumer's (`KafkaSettings.consumer_config()`); the AdminClient takes
    the properties every client takes of it, the consumers the consumer's ones."""

    def __init__(self, client_config: clients.Source):
        self.client_config = client_config
        self.admin = clients.admin(client_config)
        self._consumer = clients.consumer(client_config, clients.unique_group_id("replay"))
        self._uncommitted: clients.Consumer | None = None

    def close(self) -> None:
        self._consumer.close()
        if self._uncommitted is not None:
            self._uncommitted.close()

    # -- groups ------------------------------------------------------------------------------

    def group_ids(self) -> set[str]:
        try:
            return groups.group_ids(self.admin, TIMEOUT)
        except KafkaException as exc:
            raise ReplayError(f"listing consumer groups failed: {exc.args[0]}") from exc

    def require_group(self, group_id: str) -> None:
        existing = self.group_ids()
        if group_id not in existing:
            raise UnknownGroupError(f"consumer group {group_id!r} does not exist (it has never "
                                    f"committed offsets); existing groups: "
                                    f"{_short(existing)}")

    def describe_group(self, group_id: str) -> GroupInfo:
        try:
            description = groups.describe_group(self.admin, group_id, TIMEOUT)
        except KafkaException as exc:
            raise ReplayError(f"describing group {group_id!r} failed: {exc.args[0]}") from exc
        return GroupInfo(group_id, description.state, description.members)

    def require_inactive(self, group_id: str, what: str) -> GroupInfo:
        info = self.describe_group(group_id)
        if info.is_active:
            members = "\n  ".join(info.members) or "(joining)"
            raise GroupActiveError(
                f"group {group_id!r} is {info.state} with {len(info.members)} active "
                f"member(s):\n  {members}\n{what}", list(info.members))
        return info

    def committed(self, group_id: str, partitions: list[TP] | None = None) -> dict[TP, int]:
        """The group's committed offsets (all of them when `partitions` is None)."""
        try:
            return groups.group_offsets(self.admin, group_id, partitions, TIMEOUT)
        except KafkaException as exc:
            raise ReplayError(f"reading the offsets of group {group_id!r} failed: "
                              f"{exc.args[0]}") from exc

    def commit(self, group_id: str, offsets: dict[TP, int]) -> None:
        """Commit offsets for an empty group (Kafka refuses it while the group has members)."""
        try:
            errors = groups.alter_group_offsets(self.admin, group_id, offsets, TIMEOUT)
        except KafkaException as exc:
            raise OffsetCommitError(_commit_refused(group_id, exc.args[0])) from exc
        if errors:
            raise OffsetCommitError(_commit_refused(group_id, errors[0]))

    def delete_groups(self, group_ids: list[str]) -> list[str]:
        """Delete groups, best effort; returns the errors."""
        return groups.delete_groups(self.admin, group_ids, TIMEOUT)

    # -- topics ------------------------------------------------------------------------------

    def topics(self) -> dict[str, int]:
        """Every topic (internal ones excluded) and its partition count."""
        try:
            metadata = self.admin.list_topics(timeout=TIMEOUT)
        except KafkaException as exc:
            raise ReplayError(f"Kafka did not answer: {exc.args[0]}") from exc
        return partition_counts(metadata, internal=False)

    def resolve(self, selectors: list[TopicSelector]) -> list[TP]:
        """(topic, partition) pairs; unknown topics and partitions are reported with what exists."""
        topics = self.topics()
        pairs: list[TP] = []
        for selector in selectors:
            count = topics.get(selector.topic)
            if count is None:
                raise UnknownTopicError(f"topic {selector.topic!r} does not exist; topics: "
                                        f"{_short(topics)}")
            wanted = range(count) if selector.partitions is None else selector.partitions
            for partition in wanted:
                if partition >= count:
                    raise UnknownTopicError(
                        f"topic {selector.topic!r} has no partition {partition}; it has "
                        f"partitions 0-{count - 1}")
                pairs.append((selector.topic, partition))
        return pairs

    def resolve_all(self, topic: str) -> list[TP]:
        """Every partition of `topic`."""
        return self.resolve([TopicSelector(topic)])

    def delete_topics(self, names: list[str]) -> list[str]:
        """Delete topics, best effort; returns the errors."""
        return topics_admin.delete_topics(self.admin, names, TIMEOUT)

    # -- offsets -----------------------------------------------------------------------------

    def watermarks(self, partitions: list[TP], *,
                   uncommitted: bool = False) -> dict[TP, tuple[int, int]]:
        """(low, high) per partition. The high mark is the last stable offset (the client reads
        read_committed, librdkafka's default): records of a transaction whose commit markers are
        not written yet are beyond it, even after the producer's commit returned and the
        group's offsets moved. ``uncommitted``: the end of the log instead, those records
        included (a read_committed reader reaches it once the markers land)."""
        consumer = self._consumer
        if uncommitted:
            if self._uncommitted is None:
                self._uncommitted = clients.consumer(
                    self.client_config, clients.unique_group_id("replay"),
                    {"isolation.level": "read_uncommitted"})
            consumer = self._uncommitted
        out = {}
        for tp in partitions:
            try:
                out.update(watermarks(consumer, [tp], timeout=TIMEOUT))
            except KafkaException as exc:
                raise ReplayError(f"reading the offsets of {tp[0]}[{tp[1]}] failed: "
                                  f"{exc.args[0]}") from exc
        return out

    def offsets_for_time(self, partitions: list[TP], millis: int,
                         retry_seconds: float = 10.0) -> dict[TP, int | None]:
        """The first offset at or after `millis` per partition (None: none that late).

        A partition whose lookup failed comes back from librdkafka with its error set and its
        offset field still holding the *timestamp* it was asked for (a huge number that looks
        like an offset), so it must never be read as a result: it is asked again until
        `retry_seconds` have passed (a leader not known yet, a request timed out under load),
        then the lookup fails with the partition's error.
        """
        out: dict[TP, int | None] = {}
        todo = list(partitions)
        deadline = time.monotonic() + retry_seconds
        while todo:
            try:
                found = self._consumer.offsets_for_times(
                    [TopicPartition(t, p, millis) for t, p in todo], timeout=TIMEOUT)
            except KafkaException as exc:
                raise ReplayError(f"looking up offsets by time failed: {exc.args[0]}") from exc
            failed = []
            for tp in found:
                if tp.error is not None:
                    failed.append(tp)
                else:
                    out[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
            todo = [(tp.topic, tp.partition) for tp in failed]
            if todo and time.monotonic() >= deadline:
                raise ReplayError(
                    "looking up offsets by time failed for "
                    f"{_short(f'{tp.topic}[{tp.partition}]: {tp.error}' for tp in failed)}")
            if todo:
                time.sleep(0.2)
        return out


def _commit_refused(group_id: str, error: Any) -> str:
    name = error.name() if hasattr(error, "name") else str(error)
    if name in ("UNKNOWN_MEMBER_ID", "REBALANCE_IN_PROGRESS", "ILLEGAL_GENERATION",
                "STALE_MEMBER_EPOCH", "FENCED_MEMBER_EPOCH"):
        return (f"Kafka rejected the new offsets of group {group_id!r} ({name}): a group with "
                "active members owns its offsets, and Kafka accepts commits only from those "
                "members (kafka-consumer-groups refuses for the same reason). Stop the group's "
                "consumers (SIGTERM lets them commit and leave), wait until the group is EMPTY, "
                "and run the command again")
    return f"Kafka rejected the new offsets of group {group_id!r}: {error}"


def read_ranges(client_config: clients.Source, ranges: dict[TP, tuple[int, int]],
                timeout: float = 120.0) -> Iterator[ConsumedRecord]:
    """Every committed record with start <= offset < end, per partition in offset order.

    read_committed: transaction markers and aborted records are skipped, so fewer than
    end - start records may come back. Raises ReplayError when a range stalls for `timeout`.
    """
    if not any(end > start for start, end in ranges.values()):
        return
    consumer = reading_consumer(client_config, clients.unique_group_id("replay-read"),
                                {"auto.offset.reset": "earliest"})
    limits = ReadLimits(timeout=timeout, timeout_from_last_record=True)
    with closing(consumer, "replay-read"):
        try:
            yield from read_offset_ranges(consumer, ranges, limits)
        except EndNotReached as exc:
            raise ReplayError(f"reading {_short(f'{t}[{p}]' for t, p in exc.pending)} stalled "
                              f"for {timeout:.0f}s (an open transaction?)") from exc
        except ReadFailed as exc:
            topic, partition = exc.partition
            raise ReplayError(f"reading {topic}[{partition}] failed: {exc.error}") from exc
