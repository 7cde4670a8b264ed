"""The normalizer's state for a replay: rebuilt as of the new offsets, written with them.

The normalizer keeps, per input partition, a compacted changelog `<group>-<source>-changelog`
(connector.runtime.changelog). Moving its input offsets without touching that state would be
wrong: merges are idempotent, but the state remembers what was already emitted (and stream
time), so a rewound normalizer would stay silent about commands that must be sent again.

So a reset of the normalizer group replaces the state of each affected partition by the state
the normalizer would hold at the new offset:

1. rebuild: an AttendanceNormalizer (activity) or EventProjector (webinars) is fed the
   partition's records [low watermark, target) with the whole webinar table loaded, emitting
   nothing (to-earliest: nothing to read, the state is empty);
2. truncate: the changelog partition is emptied with DeleteRecords up to its high watermark.
   Kafka refuses DeleteRecords on a compact-only topic (POLICY_VIOLATION), so the topic is
   switched to `compact,delete` with infinite retention for the moment of the call and its
   configuration restored right after. Tombstones would not do: stream time ("t") only moves
   forward on restore and cannot be deleted, and a future stream time closes attendances early;
   deleting and re-creating the topic would touch every partition, not only the affected ones;
3. commit: one Kafka transaction writes the rebuilt state and commits the group's new offsets
   (send_offsets_to_transaction), so state and offsets cannot disagree.

This needs the group EMPTY: a running instance holds the state in memory and would write it back.
Kafka also silently ignores a transactional offset commit for a group with members, so the
offsets are read back and compared after the commit.

Records deleted by the source topic's retention cannot be replayed: the state is rebuilt from
what the topic still holds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector.config import Settings
from connector.kafka import TopicSpec, clients, ensure_topics
from connector.kafka.admin import alter_topic_config, delete_records, topic_config
from connector.kafka.clients import KafkaError, KafkaException, TopicPartition
from connector.kafka.lifecycle import closing
from connector.normalize.event import EventProjector
from connector.normalize.normalizer import AttendanceNormalizer
from connector.replay.cluster import TIMEOUT, TP, Cluster, read_ranges
from connector.replay.errors import OffsetCommitError, ReplayError
from connector.runtime import changelog
from connector.runtime.assemble import rules_from
from connector.runtime.table import WebinarTable
from connector.serde.record import Decoded, SourceRecord
from connector.serde.topic import TopicCodecs, TopicDecoder

log = logging.getLogger(__name__)

Entries = dict[TP, list[tuple[str, Any]]]
ACTIVITY, WEBINARS = "activity", "webinars"
#: What an empty state is written as. A truncated changelog partition must not stay empty: the
#: normalizer's restore (changelog.read_partition) waits until its position reaches the high
#: watermark, and a consumer has no position before its first record. Stream time 0 (nothing
#: seen yet) and the tombstone of no webinar change nothing when restored.
EMPTY: dict[str, tuple[str, Any]] = {ACTIVITY: ("t", 0), WEBINARS: ("e|", None)}
Tick = Callable[[int], None]


@dataclass
class RebuiltState:
    """Changelog entries per (changelog topic, partition), and how many records were read."""

    entries: Entries = field(default_factory=dict)
    records: int = 0


def decoders(settings: Settings) -> tuple[TopicDecoder, TopicDecoder]:
    """The activity and webinars decoders, as the normalizer builds them."""
    codecs = TopicCodecs.from_settings(settings)
    return codecs.decoder(settings.topics.activity), codecs.decoder(settings.topics.webinars)


def load_table(settings: Settings, cluster: Cluster, ends: dict[int, int] | None = None,
               tick: Tick | None = None) -> WebinarTable:
    """The webinar table from the webinars topic, up to `ends` (default: the high watermarks)."""
    topic = settings.topics.webinars
    partitions = cluster.resolve_all(topic)
    marks = cluster.watermarks(partitions)
    ranges = {(topic, p): (marks[(topic, p)][0], (ends or {}).get(p, marks[(topic, p)][1]))
              for _, p in partitions}
    _, decoder = decoders(settings)
    table = WebinarTable()
    for message in read_ranges(settings.kafka, ranges):
        result = decoder.decode(SourceRecord.from_message(message))
        if isinstance(result, Decoded):
            table.put(result.value)
        if tick:
            tick(1)
    return table


def rebuild(settings: Settings, table: WebinarTable,
            activity: dict[int, tuple[int, int]], webinars: dict[int, tuple[int, int]],
            tick: Tick | None = None) -> RebuiltState:
    """The normalizer state after reading [start, end) of each source partition, emitting
    nothing. Keys of the result are ("activity" | "webinars", partition); an empty state is
    written as EMPTY's entry."""
    topics = settings.topics
    activity_decoder, webinar_decoder = decoders(settings)
    state = RebuiltState()
    normalizers = {p: AttendanceNormalizer(table.get, rules_from(settings)) for p in activity}
    projectors = {p: EventProjector() for p in webinars}
    ranges = {**{(topics.activity, p): r for p, r in activity.items()},
              **{(topics.webinars, p): r for p, r in webinars.items()}}
    for message in read_ranges(settings.kafka, ranges):
        state.records += 1
        if tick:
            tick(1)
        record = SourceRecord.from_message(message)
        if record.topic == topics.activity:
            result = activity_decoder.decode(record)
            if isinstance(result, Decoded):
                normalizers[record.partition].on_activity(result.value, record)
        else:
            result = webinar_decoder.decode(record)
            if isinstance(result, Decoded):
                projectors[record.partition].on_webinar(result.value)
    for p, normalizer in normalizers.items():
        state.entries[(ACTIVITY, p)] = list(normalizer.drain_changes()) or [EMPTY[ACTIVITY]]
    for p, projector in projectors.items():
        state.entries[(WEBINARS, p)] = list(projector.drain_changes()) or [EMPTY[WEBINARS]]
    return state


def to_changelogs(entries: Entries, activity_log: str, webinars_log: str) -> Entries:
    """Rebuilt entries keyed by the changelog topics they go to."""
    names = {ACTIVITY: activity_log, WEBINARS: webinars_log}
    return {(names[source], p): items for (source, p), items in entries.items()}


def ensure_changelogs(settings: Settings, cluster: Cluster, group: str) -> None:
    """Create the group's changelog topics as the normalizer would (compact, one per source)."""
    topics = cluster.topics()
    specs = [TopicSpec(changelog.changelog_topic(group, source), topics[source],
                       config={"cleanup.policy": "compact"})
             for source in (settings.topics.activity, settings.topics.webinars)
             if source in topics]
    ensure_topics(settings.kafka, specs)


def truncate(cluster: Cluster, partitions: list[TP]) -> None:
    """Empty changelog partitions: DeleteRecords up to the high watermark (see module doc)."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    for topic, numbers in sorted(by_topic.items()):
        marks = cluster.watermarks([(topic, p) for p in numbers])
        todo = {(topic, p): marks[(topic, p)][1] for p in numbers
                if marks[(topic, p)][1] > marks[(topic, p)][0]}
        if not todo:
            continue
        restore = _allow_delete_records(cluster, topic)
        try:
            _delete_records(cluster, topic, todo)
        finally:
            _alter(cluster, topic, restore)


def _delete_records(cluster: Cluster, topic: str, todo: dict[TP, int],
                    wait: float = 15.0) -> None:
    """DeleteRecords, retried while the broker has not applied the new policy yet (the config
    change reaches the partition leader asynchronously: POLICY_VIOLATION until then)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            for tp in delete_records(cluster.admin, todo, TIMEOUT):
                log.info("changelog_truncated topic=%s partition=%s to=%s",
                         tp[0], tp[1], todo[tp])
            return
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() == KafkaError.POLICY_VIOLATION and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            raise ReplayError(f"emptying the normalizer state in {topic} failed: "
                              f"{error}") from exc


_POLICY_KEYS = ("cleanup.policy", "retention.ms", "retention.bytes")
#: Lets DeleteRecords work on a changelog, and keeps every record meanwhile.
_DELETABLE = {"cleanup.policy": "compact,delete", "retention.ms": "-1", "retention.bytes": "-1"}


@dataclass(frozen=True)
class _ConfigChange:
    set_to: dict[str, str]
    reset: list[str]


def _allow_delete_records(cluster: Cluster, topic: str) -> _ConfigChange:
    """Switch `topic` to compact,delete with infinite retention; returns what undoes it."""
    try:
        config = topic_config(cluster.admin, topic, TIMEOUT)
    except KafkaException as exc:
        raise ReplayError(f"reading the configuration of {topic} failed: {exc.args[0]}") from exc
    undo = _ConfigChange({}, [])
    for key in _POLICY_KEYS:
        entry = config[key]
        if entry.is_default:
            undo.reset.append(key)
            continue
        value = entry.value
        if key == "cleanup.policy" and "delete" in value.split(","):
            value = "compact"  # left over by an interrupted run: the changelog's policy
        undo.set_to[key] = value
    _alter(cluster, topic, _ConfigChange(dict(_DELETABLE), []))
    return undo


def _alter(cluster: Cluster, topic: str, change: _ConfigChange) -> None:
    try:
        alter_topic_config(cluster.admin, topic, set_to=change.set_to, reset=change.reset,
                           timeout=TIMEOUT)
    except KafkaException as exc:
        raise ReplayError(f"changing the configuration of {topic} failed: {exc.args[0]} "
                          f"(check its cleanup.policy is 'compact')") from exc


def commit_with_state(client_config: clients.Source, group: str, transactional_id: str,
                      entries: Entries, offsets: dict[TP, int]) -> None:
    """One transaction: the changelog entries and the group's new offsets.

    `client_config`: a producer's (`KafkaSettings.producer_config()`); the consumer that only
    names the group takes the properties a consumer takes of it."""
    producer = clients.transactional_producer(client_config, transactional_id, {"linger.ms": 5})
    with closing(clients.consumer(client_config, group), "replay-group") as metadata_consumer:
        try:
            producer.init_transactions(TIMEOUT)
            producer.begin_transaction()
            for (topic, partition), items in sorted(entries.items()):
                for key, value in changelog.records(items):
                    clients.produce_waiting(producer, topic=topic, key=key, value=value,
                                            partition=partition)
                    producer.poll(0)
            producer.send_offsets_to_transaction(
                [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())],
                metadata_consumer.consumer_group_metadata(), TIMEOUT)
            producer.commit_transaction(TIMEOUT)
        except KafkaException as exc:
            error = exc.args[0]
            # (a queue that stayed full, connector.kafka.clients.produce_waiting, leaves the
            # transaction open: abort it too)
            if error.txn_requires_abort() or error.code() == KafkaError._QUEUE_FULL:
                producer.abort_transaction(TIMEOUT)
            raise OffsetCommitError(f"writing the normalizer state and offsets of group "
                                    f"{group!r} failed (the transaction was aborted): "
                                    f"{error.str()}") from exc


def verify_committed(cluster: Cluster, group: str, offsets: dict[TP, int],
                     wait: float = 15.0, sleep: Callable[[float], None] = time.sleep,
                     clock: Callable[[], float] = time.monotonic) -> None:
    """Read the offsets back: Kafka drops a transactional offset commit for a group with
    members without an error. Transactional offsets become visible once the coordinator wrote
    the commit markers, shortly after commit_transaction returns, hence the `wait`."""
    deadline = clock() + wait
    while True:
        committed = cluster.committed(group, list(offsets))
        wrong = {tp: (o, committed.get(tp)) for tp, o in offsets.items()
                 if committed.get(tp) != o}
        if not wrong:
            return
        if clock() > deadline:
            break
        sleep(0.2)
    detail = ", ".join(f"{t}[{p}] wanted {want} has {got}"
                       for (t, p), (want, got) in sorted(wrong.items()))
    raise OffsetCommitError(f"Kafka did not apply the new offsets of group {group!r} "
                            f"({detail}): did a member join the group meanwhile? Stop "
                            "every instance and run the reset again")
