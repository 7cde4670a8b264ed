"""`connector replay reset`: plan and apply new committed offsets for one consumer group.

plan_reset() only reads (the dry run); execute_reset() refuses while the group has members and
then commits; reset() does one or both on the configured cluster. For the normalizer's group it
also replaces the state of every partition it moves (connector.replay.state); for any other group,
committing the offsets is all there is (the sink re-applies commands, which HubSpot's idempotent
operations make harmless).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from connector.config import Settings
from connector.replay import state as normalizer_state
from connector.replay.cluster import TP, Cluster, GroupInfo
from connector.replay.errors import ReplayError, UnknownTopicError
from connector.replay.plan import Kind, PartitionOffsets, Row, Strategy, as_json, target
from connector.replay.run import open_cluster
from connector.replay.spec import TopicSelector
from connector.runtime import changelog
from connector.runtime.table import WebinarTable

log = logging.getLogger(__name__)

NORMALIZER, SINK, OTHER = "normalizer", "sink", "group"


@dataclass(frozen=True)
class ResetRequest:
    """What the operator asked for."""

    group: str  # "normalizer", "sink" or a group id
    selectors: tuple[TopicSelector, ...]
    strategy: Strategy


@dataclass(frozen=True)
class StateChange:
    """A normalizer changelog partition that is emptied and rebuilt from [start, end)."""

    changelog: str
    partition: int
    source: str
    start: int
    end: int


@dataclass
class ResetPlan:
    """Everything the dry run shows and the execution does."""

    group_id: str
    role: str
    group: GroupInfo
    strategy: Strategy
    rows: list[Row]
    state: list[StateChange] = field(default_factory=list)

    def as_json(self, executed: bool) -> dict[str, Any]:
        return {
            "group": self.group_id, "role": self.role, "state": self.group.state,
            "members": list(self.group.members), "strategy": self.strategy.describe(),
            "executed": executed, "partitions": as_json(self.rows),
            "normalizer_state": [
                {"changelog": s.changelog, "partition": s.partition, "source": s.source,
                 "rebuilt_from": [s.start, s.end]} for s in self.state],
        }


@dataclass(frozen=True)
class ResetOutcome:
    """The plan, and what executing it did (nothing for a dry run)."""

    plan: ResetPlan
    done: list[str]
    executed: bool

    def as_json(self) -> dict[str, Any]:
        return {**self.plan.as_json(executed=self.executed), "done": self.done}


def reset(settings: Settings, request: ResetRequest, *, execute: bool,
          force: bool = False) -> ResetOutcome:
    """Plan the reset on the configured cluster and, with `execute`, apply it."""
    with open_cluster(settings) as cluster:
        plan = plan_reset(settings, cluster, request)
        done = execute_reset(settings, cluster, plan, force=force) if execute else []
    return ResetOutcome(plan, done, execute)


def resolve_group(settings: Settings, name: str) -> tuple[str, str]:
    """(group id, role) for `normalizer`, `sink` or a literal group id."""
    if name == NORMALIZER or name == settings.normalizer.group_id:
        return settings.normalizer.group_id, NORMALIZER
    if name == SINK or name == settings.sink.group_id:
        return settings.sink.group_id, SINK
    return name, OTHER


def plan_reset(settings: Settings, cluster: Cluster, request: ResetRequest) -> ResetPlan:
    """Read the group, its partitions and their offsets; compute each target. Changes nothing."""
    group_id, role = resolve_group(settings, request.group)
    cluster.require_group(group_id)
    info = cluster.describe_group(group_id)
    partitions = _partitions(settings, cluster, group_id, role, request)
    marks = cluster.watermarks(partitions)
    committed = cluster.committed(group_id, partitions)
    by_time = (cluster.offsets_for_time(partitions, request.strategy.value)
               if request.strategy.is_by_time() else {})
    rows = [target(request.strategy, PartitionOffsets(
        t, p, marks[(t, p)][0], marks[(t, p)][1], committed.get((t, p)), by_time.get((t, p))))
        for t, p in partitions]
    plan = ResetPlan(group_id, role, info, request.strategy, rows)
    if role == NORMALIZER:
        plan.state = [StateChange(changelog.changelog_topic(group_id, r.topic), r.partition,
                                  r.topic, r.low, r.target) for r in rows if r.changes]
    return plan


def _partitions(settings: Settings, cluster: Cluster, group_id: str, role: str,
                request: ResetRequest) -> list[TP]:
    strategy = request.strategy
    if strategy.kind is Kind.FILE:
        named = sorted({(t, p) for t, p, _ in strategy.offsets})
        selectors = [TopicSelector(t, tuple(p for tt, p in named if tt == t))
                     for t in dict.fromkeys(t for t, _ in named)]
    elif request.selectors:
        selectors = list(request.selectors)
    elif role == NORMALIZER:
        selectors = [TopicSelector(settings.topics.activity),
                     TopicSelector(settings.topics.webinars)]
    elif role == SINK:
        selectors = [TopicSelector(settings.topics.commands)]
    else:
        topics = sorted({t for t, _ in cluster.committed(group_id)})
        if not topics:
            raise ReplayError(f"group {group_id!r} has no committed offsets: name the topics "
                              "to reset with --topic")
        selectors = [TopicSelector(t) for t in topics]
    if role == NORMALIZER:
        inputs = {settings.topics.activity, settings.topics.webinars}
        foreign = sorted({s.topic for s in selectors} - inputs)
        if foreign:
            raise UnknownTopicError(f"the normalizer group {group_id!r} reads only "
                                    f"{' and '.join(sorted(inputs))}, not {', '.join(foreign)}")
    return cluster.resolve(selectors)


def execute_reset(settings: Settings, cluster: Cluster, plan: ResetPlan, *,
                  force: bool = False) -> list[str]:
    """Commit the plan's targets (and for the normalizer, its state); returns what was done."""
    offsets = {(r.topic, r.partition): r.target for r in plan.rows}
    if plan.role == NORMALIZER:
        return _execute_normalizer(settings, cluster, plan, offsets)
    if not force:
        cluster.require_inactive(plan.group_id, _ACTIVE_HINT)
    cluster.commit(plan.group_id, offsets)
    normalizer_state.verify_committed(cluster, plan.group_id, offsets)
    log.info("offsets_reset group=%s partitions=%s", plan.group_id, len(offsets))
    return [f"committed new offsets for {len(offsets)} partition(s) of group {plan.group_id}"]


_ACTIVE_HINT = ("Offsets move only while the group is empty: stop its consumers (SIGTERM lets "
                "them commit and leave) and run the command again. --force skips this check, "
                "but Kafka itself rejects commits from outside an active group (UNKNOWN_MEMBER_ID)"
                ", so it helps only when the group is just emptying.")

_NORMALIZER_ACTIVE = ("The normalizer's state can be replaced only while no instance runs (a "
                      "running instance holds it in memory and would write it back), so --force "
                      "does not apply: stop every normalizer instance and run the command again.")


def _execute_normalizer(settings: Settings, cluster: Cluster, plan: ResetPlan,
                        offsets: dict[TP, int]) -> list[str]:
    group = plan.group_id
    cluster.require_inactive(group, _NORMALIZER_ACTIVE)
    topics = settings.topics
    activity = {s.partition: (s.start, s.end) for s in plan.state if s.source == topics.activity}
    webinars = {s.partition: (s.start, s.end) for s in plan.state if s.source == topics.webinars}
    needs_table = any(end > start for start, end in activity.values())
    table = normalizer_state.load_table(settings, cluster) if needs_table else WebinarTable()
    rebuilt = normalizer_state.rebuild(settings, table, activity, webinars)
    entries = normalizer_state.to_changelogs(
        rebuilt.entries, changelog.changelog_topic(group, topics.activity),
        changelog.changelog_topic(group, topics.webinars))
    normalizer_state.ensure_changelogs(settings, cluster, group)
    cluster.require_inactive(group, _NORMALIZER_ACTIVE)  # again: nothing may have joined
    normalizer_state.truncate(cluster, list(entries))
    try:
        normalizer_state.commit_with_state(settings.kafka.producer_config(), group,
                                           f"{group}-replay", entries, offsets)
        normalizer_state.verify_committed(cluster, group, offsets)
    except ReplayError as exc:
        raise ReplayError(f"{exc}\nThe state of the reset partitions was emptied; run the same "
                          "reset again: it rebuilds the state from the input") from exc
    count = sum(len(v) for v in entries.values())
    log.info("normalizer_reset group=%s partitions=%s state_partitions=%s entries=%s",
             group, len(offsets), len(entries), count)
    return [f"committed new offsets for {len(offsets)} partition(s) of group {group}",
            f"replaced the state of {len(entries)} changelog partition(s): "
            f"{count} entries rebuilt from {rebuilt.records} input record(s)"]

