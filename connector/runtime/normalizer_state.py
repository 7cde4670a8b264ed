"""What the normalizer's parts share: the state of the assigned partitions, the topics it writes
(changelogs included), what one transaction will write, and the signal to rebuild the state.

One instance of each per worker (:mod:`connector.runtime.assemble` builds them): the record
handler fills a `TransactionWrites` from the partitions' state, the committer writes it with the
state's changes, the rebalance handler restores and drops partitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connector.config import TopicSettings
from connector.dlq import DeadLetter
from connector.errors import ConnectorError
from connector.kafka.admin import TopicSpec
from connector.normalize.command import Command
from connector.normalize.event import EventProjector
from connector.normalize.normalizer import AttendanceNormalizer, Output
from connector.runtime import changelog
from connector.runtime.table import WebinarTable
from connector.serde.record import SourceRecord
from connector.telemetry import RecordTrace


class RestartNeeded(Exception):
    """State in memory is ahead of (or no longer matches) Kafka: a transaction was aborted or
    its end is unknown, or a restore failed. Rebuild the unit from the changelogs."""


@dataclass
class TransactionWrites:
    """Everything one transaction will write (besides the state's changes, drained at write)."""

    #: (command, the record that caused it, that record's trace)
    commands: list[tuple[Command, SourceRecord | None, RecordTrace]] = field(
        default_factory=list)
    #: (dead-letter topic, letter, the record's trace)
    dead_letters: list[tuple[str, DeadLetter, RecordTrace]] = field(default_factory=list)
    consumed: int = 0

    def is_empty(self) -> bool:
        return not (self.commands or self.dead_letters or self.consumed)


@dataclass(frozen=True)
class Changelogs:
    """The changelog topic of each input topic's state, for one consumer group."""

    activity: str
    webinars: str

    @classmethod
    def of_group(cls, group_id: str, activity_topic: str, webinars_topic: str) -> Changelogs:
        return cls(changelog.changelog_topic(group_id, activity_topic),
                   changelog.changelog_topic(group_id, webinars_topic))


class PartitionStates:
    """The state of the input partitions this instance owns, by partition number.

    Activity partitions each have an AttendanceNormalizer, webinars partitions an
    EventProjector; both read the webinar table, which every instance holds whole.
    """

    def __init__(self, table: WebinarTable) -> None:
        self.table = table
        self.normalizers: dict[int, AttendanceNormalizer] = {}
        self.projectors: dict[int, EventProjector] = {}
        #: Activity partition -> when it last had a record (monotonic), for idle punctuation.
        self.quiet_since: dict[int, float] = {}
        #: What restored partitions produced: it goes into the next transaction.
        self.restored_output = Output()

    def take_restored(self) -> Output:
        restored, self.restored_output = self.restored_output, Output()
        return restored

    def clear(self) -> None:
        """Drop every partition's state (it is rebuilt from the changelogs on rejoining)."""
        self.normalizers.clear()
        self.projectors.clear()
        self.restored_output = Output()


def normalizer_topics(topics: TopicSettings, changelogs: Changelogs, partitions: dict[str, int],
                      output_partitions: int = 0) -> list[TopicSpec]:
    """The topics the normalizer writes, given the cluster's ``partitions`` per topic: the
    commands and dead letters (``output_partitions``, 0: as many as the activity topic), and
    the changelogs (as many as their input). The inputs must exist: ConnectorError if not."""
    activity, webinars = topics.activity, topics.webinars
    for source in (activity, webinars):
        if source not in partitions:
            raise ConnectorError(f"input topic {source} does not exist (check "
                                 "CONNECTOR_TOPICS__* and that the platform publishes)")
    count = output_partitions or partitions[activity]
    compact = {"cleanup.policy": "compact"}
    return [
        TopicSpec(topics.commands, count),
        TopicSpec(topics.dlq_for(activity), count),
        TopicSpec(topics.dlq_for(webinars), count),
        TopicSpec(changelogs.activity, partitions[activity], config=compact),
        TopicSpec(changelogs.webinars, partitions[webinars], config=compact),
    ]
