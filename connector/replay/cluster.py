"""What replay asks Kafka: groups, topics, watermarks, offsets by time; and offset commits.

Every KafkaException is translated here, once, into a ReplayError that says what to do.
Reads use consumers that never join a group and never commit (assign only).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from connector.kafka.roles import for_admin, for_consumer
from connector.replay.errors import (
    GroupActiveError,
    OffsetCommitError,
    ReplayError,
    UnknownGroupError,
    UnknownTopicError,
)
from connector.replay.spec import TopicSelector

TIMEOUT = 30.0
#: Group states in which the group has no members and offsets may be committed from outside.
INACTIVE = {ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD}

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

    def __init__(self, client_config: dict[str, Any]):
        self.client_config = for_consumer(client_config)
        self.admin = AdminClient(for_admin(client_config))
        self._consumer = Consumer({**self.client_config,
                                   "group.id": f"replay-{uuid.uuid4().hex[:8]}",
                                   "enable.auto.commit": False})
        self._uncommitted: Consumer | None = None

    def close(self) -> None:
        self._consumer.close()
        if self._uncommitted is not None:
            self._uncommitted.close()

    # -- groups ------------------------------------------------------------------------------

    def group_ids(self) -> set[str]:
        try:
            result = self.admin.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
        except KafkaException as exc:
            raise ReplayError(f"listing consumer groups failed: {exc.args[0]}") from exc
        return {g.group_id for g in result.valid}

    def require_group(self, group_id: str) -> None:
        existing = self.group_ids()
        if group_id not in existing:
            raise UnknownGroupError(f"consumer group {group_id!r} does not exist (it has never "
                                    f"committed offsets); existing groups: "
                                    f"{_short(existing)}")

    def describe_group(self, group_id: str) -> GroupInfo:
        try:
            futures = self.admin.describe_consumer_groups([group_id], request_timeout=TIMEOUT)
            description = futures[group_id].result(TIMEOUT)
        except KafkaException as exc:
            raise ReplayError(f"describing group {group_id!r} failed: {exc.args[0]}") from exc
        members = []
        for m in description.members:
            assigned = sorted(f"{tp.topic}[{tp.partition}]"
                              for tp in (m.assignment.topic_partitions if m.assignment else []))
            members.append(f"{m.client_id} on {m.host.lstrip('/')} (member {m.member_id}) "
                           f"assigned {', '.join(assigned) or 'nothing'}")
        return GroupInfo(group_id, description.state.name, tuple(members))

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
        request = ConsumerGroupTopicPartitions(
            group_id, None if partitions is None else [TopicPartition(t, p)
                                                       for t, p in partitions])
        try:
            result = self.admin.list_consumer_group_offsets([request],
                                                            request_timeout=TIMEOUT)
            listed = result[group_id].result(TIMEOUT)
        except KafkaException as exc:
            raise ReplayError(f"reading the offsets of group {group_id!r} failed: "
                              f"{exc.args[0]}") from exc
        return {(tp.topic, tp.partition): tp.offset for tp in listed.topic_partitions
                if tp.offset >= 0 and tp.error is None}

    def commit(self, group_id: str, offsets: dict[TP, int]) -> None:
        """Commit offsets for an empty group (Kafka refuses it while the group has members)."""
        request = ConsumerGroupTopicPartitions(
            group_id, [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())])
        try:
            result = self.admin.alter_consumer_group_offsets([request],
                                                             request_timeout=TIMEOUT)
            altered = result[group_id].result(TIMEOUT)
        except KafkaException as exc:
            raise OffsetCommitError(_commit_refused(group_id, exc.args[0])) from exc
        errors = [tp.error for tp in altered.topic_partitions if tp.error is not None]
        if errors:
            raise OffsetCommitError(_commit_refused(group_id, errors[0]))

    def delete_groups(self, group_ids: list[str]) -> list[str]:
        """Delete groups, best effort; returns the errors."""
        if not group_ids:
            return []
        problems = []
        for group_id, future in self.admin.delete_consumer_groups(
                group_ids, request_timeout=TIMEOUT).items():
            try:
                future.result(TIMEOUT)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.GROUP_ID_NOT_FOUND:
                    problems.append(f"group {group_id}: {exc.args[0].str()}")
        return problems

    # -- topics ------------------------------------------------------------------------------

    def topics(self) -> dict[str, int]:
        """Every topic (internal ones excluded) and its partition count."""
        try:
            metadata = self.admin.list_topics(timeout=TIMEOUT)
        except KafkaException as exc:
            raise ReplayError(f"Kafka did not answer: {exc.args[0]}") from exc
        return {name: len(t.partitions) for name, t in metadata.topics.items()
                if not name.startswith("__") and t.error is None}

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
        if not names:
            return []
        problems = []
        for name, future in self.admin.delete_topics(names,
                                                     operation_timeout=TIMEOUT).items():
            try:
                future.result(TIMEOUT)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    problems.append(f"topic {name}: {exc.args[0].str()}")
        return problems

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
                self._uncommitted = Consumer({
                    **self.client_config, "group.id": f"replay-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False, "isolation.level": "read_uncommitted"})
            consumer = self._uncommitted
        out = {}
        for topic, partition in partitions:
            try:
                out[(topic, partition)] = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=TIMEOUT)
            except KafkaException as exc:
                raise ReplayError(f"reading the offsets of {topic}[{partition}] failed: "
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


def read_ranges(client_config: dict[str, Any], ranges: dict[TP, tuple[int, int]],
                timeout: float = 120.0) -> Iterator[Any]:
    """Every committed record with start <= offset < end, per partition in offset order.

    read_committed: transaction markers and aborted records are skipped, so fewer than
    end - start records may come back. Raises ReplayError when a range stalls for `timeout`.
    """
    todo = {tp: (start, end) for tp, (start, end) in ranges.items() if end > start}
    if not todo:
        return
    consumer = Consumer({**for_consumer(client_config),
                         "group.id": f"replay-read-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    try:
        consumer.assign([TopicPartition(t, p, start if start > 0 else OFFSET_BEGINNING)
                         for (t, p), (start, _end) in todo.items()])
        last_progress = time.monotonic()
        while todo:
            message = consumer.poll(0.5)
            if message is None:
                if time.monotonic() - last_progress > timeout:
                    raise ReplayError(f"reading {_short(f'{t}[{p}]' for t, p in todo)} stalled "
                                      f"for {timeout:.0f}s (an open transaction?)")
                continue
            tp: TP = (message.topic() or "", message.partition() or 0)
            offset: int = message.offset() or 0
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise ReplayError(f"reading {tp[0]}[{tp[1]}] failed: {error}")
                _finish_if_done(consumer, todo, tp)
                continue
            last_progress = time.monotonic()
            if tp not in todo:
                continue
            if offset >= todo[tp][1]:
                _finish(consumer, todo, tp)
                continue
            yield message
            if offset >= todo[tp][1] - 1:
                _finish(consumer, todo, tp)
    finally:
        consumer.close()


def _finish_if_done(consumer: Consumer, todo: dict[TP, tuple[int, int]], tp: TP) -> None:
    if tp in todo and consumer.position([TopicPartition(*tp)])[0].offset >= todo[tp][1]:
        _finish(consumer, todo, tp)


def _finish(consumer: Consumer, todo: dict[TP, tuple[int, int]], tp: TP) -> None:
    todo.pop(tp, None)
    consumer.pause([TopicPartition(*tp)])
