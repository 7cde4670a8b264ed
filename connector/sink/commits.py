"""Committing the sink's finished offsets: asynchronous, confirmed, never waited for unbounded.

- Commits are asynchronous: ``consumer.commit(asynchronous=True)`` and the result arrives in
  :meth:`~connector.sink.offsets.AssignedOffsets.on_commit` (the consumer's ``on_commit``,
  served by consume/poll). Only a confirmed offset counts as committed; a failed commit is
  retried at the next interval, one that got no answer after ``commit_retry_seconds`` too. One
  commit is outstanding at a time (librdkafka defers commits while no coordinator is known;
  they must not pile up). A synchronous commit could wait forever for a coordinator.
- Before each commit the dead letters are served (produced again, callbacks polled), so a
  letter delivered by then finishes its command in time for this commit.
- :meth:`Committer.commit_and_wait` (at stop) commits and polls, partitions paused, until the
  broker confirms or ``commit_wait_seconds`` pass.
"""

from __future__ import annotations

import logging

from connector.kafka.clients import KafkaException, TopicPartition
from connector.sink.dead_letters import DeadLetters
from connector.sink.intake import Intake
from connector.sink.work import Partition

log = logging.getLogger("connector.sink")


class Committer:
    """Sends the finished positions of the intake's partitions to the group coordinator."""

    def __init__(self, intake: Intake, dead_letters: DeadLetters) -> None:
        self._intake = intake
        self._consumer = intake.consumer
        self._offsets = intake.offsets
        self._options = intake.options
        self._clock = intake.clock
        self._dead_letters = dead_letters
        self._next_commit = 0.0

    def commit_due(self, *, force: bool = False) -> bool:
        """Commit every partition's finished prefix when the commit interval has passed (or
        ``force``); True when it did."""
        now = self._clock()
        if not force and now < self._next_commit:
            return False
        self._next_commit = now + self._options.commit_interval_seconds
        self.commit(self._offsets.keys(), force=force)
        return True

    def commit(self, keys: list[Partition], *, force: bool = False) -> None:
        """Serve the dead letters, then send one asynchronous commit of the positions that moved
        since the last confirmed one, unless a commit is outstanding (and not ``force``).
        Never raises for Kafka: a failed commit is retried at the next interval."""
        self._dead_letters.pump()
        now = self._clock()
        sent = self._offsets.commit_sent
        if not force and sent is not None and now < sent + self._options.commit_retry_seconds:
            return  # the outstanding commit's answer comes through on_commit
        offsets = [TopicPartition(topic, partition, position)
                   for (topic, partition), position in self._offsets.to_commit(keys)]
        if not offsets:
            return
        if sent is not None and not force:
            log.warning("sink.commit_unanswered seconds=%.0f (sent again)", now - sent)
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:  # e.g. no longer in the group: the next interval retries
            log.warning("sink.commit_failed error=%s", exc)
            return
        self._offsets.commit_sent = now

    def commit_and_wait(self) -> None:
        """Commit, then poll (partitions paused) until the broker confirmed every partition's
        position, for at most ``commit_wait_seconds``."""
        self._intake.progress.waiting_on("kafka-commit")
        wait = self._options.commit_wait_seconds
        deadline = self._clock() + wait
        try:
            self._intake.pause_assigned()
            self.commit(self._offsets.keys(), force=True)
            while self._offsets.unconfirmed():
                left = deadline - self._clock()
                if left <= 0:
                    log.warning("sink.final_commit_unconfirmed partitions=%s seconds=%s",
                                self._offsets.unconfirmed(), wait)
                    return
                self._consumer.poll(min(left, self._options.poll_seconds))  # serves on_commit
                if self._offsets.commit_sent is None:  # answered, but not every position
                    self.commit(self._offsets.keys())
        except KafkaException as exc:  # e.g. the consumer failed fatally: nothing to wait for
            log.warning("sink.commit_failed error=%s", exc)
