"""Consumer groups administered from outside: list, describe, read and move their committed
offsets, delete them (an AdminClient's calls, each bounded by a timeout).

Failures are raised as the library's KafkaException for the caller to translate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions

from connector.kafka.clients import AdminClient, KafkaError, KafkaException, TopicPartition
from connector.kafka.protocols import PartitionId

#: The bound of one admin request, unless the caller gives one.
TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class GroupDescription:
    """A consumer group's state (e.g. "STABLE", "EMPTY") and its members, one line each."""

    state: str
    members: tuple[str, ...]


def group_ids(admin: AdminClient, timeout: float = TIMEOUT_SECONDS) -> set[str]:
    """Every consumer group the cluster knows."""
    result = admin.list_consumer_groups(request_timeout=timeout).result(timeout)
    return {group.group_id for group in result.valid}


def describe_group(admin: AdminClient, group_id: str,
                   timeout: float = TIMEOUT_SECONDS) -> GroupDescription:
    """The group's state and a readable line per member (client, host, assignment)."""
    futures = admin.describe_consumer_groups([group_id], request_timeout=timeout)
    description = futures[group_id].result(timeout)
    members = []
    for member in description.members:
        assignment = member.assignment.topic_partitions if member.assignment else []
        assigned = sorted(f"{tp.topic}[{tp.partition}]" for tp in assignment)
        members.append(f"{member.client_id} on {member.host.lstrip('/')} (member "
                       f"{member.member_id}) assigned {', '.join(assigned) or 'nothing'}")
    return GroupDescription(description.state.name, tuple(members))


def group_offsets(admin: AdminClient, group_id: str, partitions: list[PartitionId] | None = None,
                  timeout: float = TIMEOUT_SECONDS) -> dict[PartitionId, int]:
    """The group's committed offsets (all of them when ``partitions`` is None); partitions
    without one are left out."""
    wanted = None if partitions is None else [TopicPartition(t, p) for t, p in partitions]
    request = ConsumerGroupTopicPartitions(group_id, wanted)
    listed = admin.list_consumer_group_offsets([request],
                                               request_timeout=timeout)[group_id].result(timeout)
    return {(tp.topic, tp.partition): tp.offset for tp in listed.topic_partitions
            if tp.offset >= 0 and tp.error is None}


def alter_group_offsets(admin: AdminClient, group_id: str, offsets: Mapping[PartitionId, int],
                        timeout: float = TIMEOUT_SECONDS) -> list[KafkaError]:
    """Commit ``offsets`` for a group from outside it (Kafka refuses while the group has
    members); returns the errors of the partitions Kafka refused."""
    request = ConsumerGroupTopicPartitions(
        group_id, [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())])
    altered = admin.alter_consumer_group_offsets([request],
                                                 request_timeout=timeout)[group_id].result(timeout)
    return [tp.error for tp in altered.topic_partitions if tp.error is not None]


def delete_groups(admin: AdminClient, ids: list[str],
                  timeout: float = TIMEOUT_SECONDS) -> list[str]:
    """Delete groups, best effort (a group already gone is fine); returns the problems."""
    if not ids:
        return []
    problems = []
    for group_id, future in admin.delete_consumer_groups(ids, request_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.GROUP_ID_NOT_FOUND:
                problems.append(f"group {group_id}: {exc.args[0].str()}")
    return problems
