"""One dead letter as read back from a dead-letter topic, with its error headers at hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from connector.dlq.envelope import (
    H_ACCOUNT,
    H_EXC_CLASS,
    H_HTTP_STATUS,
    H_OFFSET,
    H_PARTITION,
    H_REASON,
    H_TOPIC,
    header_map,
)
from connector.serde.record import Headers, SourceRecord


@dataclass(frozen=True)
class DeadLetterRecord:
    """A record of a dead-letter topic: where it sits there, and what it carries."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)
    timestamp_ms: int | None = None

    @classmethod
    def from_message(cls, message: Any) -> DeadLetterRecord:
        """From a consumed Kafka message."""
        return cls.from_source(SourceRecord.from_message(message))

    @classmethod
    def from_source(cls, source: SourceRecord) -> DeadLetterRecord:
        return cls(source.topic, source.partition, source.offset, source.key, source.value,
                   list(source.headers), source.timestamp_ms)

    @cached_property
    def header_map(self) -> dict[str, str]:
        """The last value of each header, as text (computed once)."""
        return header_map(self.headers)

    @property
    def key_text(self) -> str | None:
        """The key as UTF-8 text (the webinarId), or None when absent or not text."""
        if self.key is None:
            return None
        try:
            return self.key.decode("utf-8")
        except UnicodeDecodeError:
            return None

    @property
    def reason(self) -> str | None:
        return self.header_map.get(H_REASON)

    @property
    def http_status(self) -> str | None:
        return self.header_map.get(H_HTTP_STATUS)

    @property
    def exception_class(self) -> str | None:
        return self.header_map.get(H_EXC_CLASS)

    @property
    def account_header(self) -> str | None:
        """The platform account the `connector.errors.account` header names (None: no header,
        as in dead letters written before it existed; connector.dlq.account decodes those)."""
        return self.header_map.get(H_ACCOUNT) or None

    @property
    def source_topic(self) -> str | None:
        """The topic the record failed on (`__connect.errors.topic`)."""
        return self.header_map.get(H_TOPIC)

    @property
    def source_position(self) -> tuple[int, int] | None:
        """(partition, offset) of the record on its source topic when the headers say so."""
        headers = self.header_map
        try:
            return int(headers[H_PARTITION]), int(headers[H_OFFSET])
        except (KeyError, ValueError):
            return None
