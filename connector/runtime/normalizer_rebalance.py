"""The normalizer's rebalances: state restored from the changelogs for partitions assigned, and
dropped for partitions revoked.

Both run inside ``consume()`` (librdkafka calls them there), so between transactions: each first
concludes the commit in flight, so that a restore reads our last transaction's changelog writes
and the next owner of a revoked partition finds our last transaction committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from connector.config import TopicSettings
from connector.errors import ConnectorError
from connector.kafka.clients import KafkaException, TopicPartition
from connector.normalize.event import EventProjector
from connector.normalize.normalizer import AttendanceNormalizer
from connector.normalize.rules import NormalizeRules
from connector.runtime import changelog
from connector.runtime.normalizer_clients import NormalizerClients
from connector.runtime.normalizer_state import Changelogs, PartitionStates, RestartNeeded
from connector.telemetry.progress import ProgressWatch

log = logging.getLogger(__name__)


class RebalanceHandler:
    """The consumer's ``on_assign`` and ``on_revoke`` (also ``on_lost``) callbacks."""

    def __init__(self, topics: TopicSettings, changelogs: Changelogs, state: PartitionStates,
                 rules: NormalizeRules, clients: NormalizerClients, progress: ProgressWatch,
                 await_commit: Callable[[], None]) -> None:
        self.activity_topic = topics.activity
        self.webinars_topic = topics.webinars
        self.changelogs = changelogs
        self.state = state
        self.rules = rules
        self.clients = clients
        self.progress = progress
        #: Concludes the transaction in flight (the committer's).
        self.await_commit = await_commit

    def on_assign(self, _consumer: object, partitions: list[TopicPartition]) -> None:
        self.await_commit()  # a restore reads changelogs our last transaction may write to
        started = time.monotonic()
        self.progress.waiting_on("state-restore")
        normalizers = {tp.partition: AttendanceNormalizer(self.state.table.get, self.rules)
                       for tp in partitions if tp.topic == self.activity_topic}
        projectors = {tp.partition: EventProjector() for tp in partitions
                      if tp.topic == self.webinars_topic}
        try:
            entries = self._restore(partitions, normalizers, projectors)
        except (KafkaException, ConnectorError) as exc:
            # A broker away mid-restore: nothing of these partitions is in use yet.
            log.warning("state_restore_failed partitions=%s error=%s", names(partitions), exc)
            raise RestartNeeded() from exc
        self.state.projectors.update(projectors)
        for partition, normalizer in normalizers.items():
            self._take_into_use(partition, normalizer, entries[partition])
        self.progress.progressed()
        log.info("partitions_assigned partitions=%s restore_seconds=%.2f", names(partitions),
                 time.monotonic() - started)

    def on_revoke(self, _consumer: object, partitions: list[TopicPartition]) -> None:
        self.await_commit()  # the next owner must find our last transaction committed
        for tp in partitions:
            if tp.topic == self.activity_topic:
                self.state.normalizers.pop(tp.partition, None)
                self.state.quiet_since.pop(tp.partition, None)
            elif tp.topic == self.webinars_topic:
                self.state.projectors.pop(tp.partition, None)
        log.info("partitions_revoked partitions=%s", names(partitions))

    def _restore(self, partitions: list[TopicPartition],
                 normalizers: dict[int, AttendanceNormalizer],
                 projectors: dict[int, EventProjector]) -> dict[int, int]:
        """Read the assigned partitions' changelogs into their fresh state; returns how many
        entries each activity partition restored."""
        changelogs = {self.activity_topic: self.changelogs.activity,
                      self.webinars_topic: self.changelogs.webinars}
        config = self.clients.consumer_config
        marks = changelog.high_watermarks(config, [
            TopicPartition(changelogs[tp.topic], tp.partition) for tp in partitions
            if tp.topic in changelogs])
        entries = dict.fromkeys(normalizers, 0)
        for topic, partition, key, value in changelog.read_partitions(config, marks):
            if topic == self.changelogs.activity:
                normalizers[partition].restore(key, value)
                entries[partition] += 1
            else:
                projectors[partition].restore(key, value)
        return entries

    def _take_into_use(self, partition: int, normalizer: AttendanceNormalizer,
                       entries: int) -> None:
        """Take a restored partition's state into use."""
        state = self.state
        state.restored_output.extend(normalizer.after_restore())
        state.normalizers[partition] = normalizer
        state.quiet_since[partition] = time.monotonic()
        for webinar_id in [w for w in normalizer.held if state.table.get(w) is not None]:
            state.restored_output.extend(normalizer.on_webinar(webinar_id))
        log.info("state_restored partition=%s entries=%s people=%s held_webinars=%s",
                 partition, entries, len(normalizer.people), len(normalizer.held))


def names(partitions: list[TopicPartition]) -> str:
    """``topic[partition]`` of each, for the log."""
    return ",".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)
