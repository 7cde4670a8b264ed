"""The webinar table: every webinar's latest description, read by every normalizer instance.

Like a Kafka Streams GlobalKTable: each instance reads *all* partitions of the compacted
webinars topic (assign, no group, no commits), whatever the partition counts of the two topics.
Only the consumer-group owner of a webinars partition turns records into event commands and
dead-letters bad ones; the table reader skips bad records quietly (the owner reports them).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from connector.kafka import clients
from connector.kafka.clients import OFFSET_BEGINNING, TopicPartition
from connector.kafka.protocols import ConsumerClient
from connector.kafka.reader import is_partition_eof
from connector.serde.record import Decoded, SourceRecord
from connector.serde.topic import TopicDecoder

log = logging.getLogger(__name__)


class WebinarTable:
    """webinarId -> latest webinar datum (by updatedAt; a replayed older version is ignored)."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}

    def get(self, webinar_id: str) -> dict[str, Any] | None:
        return self._rows.get(webinar_id)

    def put(self, webinar: dict[str, Any]) -> bool:
        """Store if newer; True when the table changed."""
        current = self._rows.get(webinar["webinarId"])
        if current is not None and current["updatedAt"] > webinar["updatedAt"]:
            return False
        if current == webinar:
            return False
        self._rows[webinar["webinarId"]] = webinar
        return True

    def __len__(self) -> int:
        return len(self._rows)


class WebinarUpdates(Protocol):
    """What the normalizer's loop needs of the table's reader."""

    def poll(self, timeout: float = 0.0, max_records: int = 1000) -> list[str]:
        """The webinarIds whose description changed since the last poll."""
        ...


class WebinarTableReader:
    """Keeps a WebinarTable up to date from the whole webinars topic."""

    def __init__(self, client_config: clients.Source, topic: str, decoder: TopicDecoder,
                 table: WebinarTable):
        self.table = table
        self._topic = topic
        self._decoder = decoder
        # Assigned, never committed: librdkafka requires the group id all the same.
        self._consumer: ConsumerClient = clients.read_committed_consumer(
            client_config, "webinar-table-reader", {
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                # The end of a partition is known from a fetch response, which the broker
                # holds back up to this long when there is nothing new (500 ms by default):
                # start-up waits for it, and the table is small, so short long-polls cost
                # nothing.
                "fetch.wait.max.ms": 50,
            })
        metadata = self._consumer.list_topics(topic, timeout=30)
        partitions = metadata.topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self._at_end: set[int] = set()
        self._partitions = set(partitions)

    @property
    def caught_up(self) -> bool:
        """Every partition is read to its end right now (a missing topic never is)."""
        return bool(self._partitions) and self._at_end == self._partitions

    def poll(self, timeout: float = 0.0, max_records: int = 1000) -> list[str]:
        """Read what is available; returns the webinarIds whose description changed."""
        changed: list[str] = []
        for message in self._consumer.consume(max_records, timeout):
            error = message.error()
            if error is not None:
                if is_partition_eof(error):
                    self._at_end.add(message.partition() or 0)
                else:
                    log.warning("webinar_table_error error=%s", error)
                continue
            self._at_end.discard(message.partition())
            result = self._decoder.decode(SourceRecord.from_message(message))
            if isinstance(result, Decoded) and self.table.put(result.value):
                changed.append(result.value["webinarId"])
        return changed

    def catch_up(self, timeout: float = 60.0) -> list[str]:
        """Read until every partition reached its end (start-up), returns changed ids."""
        deadline = time.monotonic() + timeout
        changed: list[str] = []
        while not self.caught_up and time.monotonic() < deadline:
            # A batch consume waits its whole timeout unless the batch fills: short waits let
            # start-up go on as soon as every partition reported its end.
            changed += self.poll(0.02)
        return changed

    def close(self) -> None:
        self._consumer.close()
