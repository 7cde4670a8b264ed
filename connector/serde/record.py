"""Values that travel beside each Kafka record: where it came from, and why it failed to decode."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

Headers = list[tuple[str, bytes | None]]


class DecodeReason(StrEnum):
    """Why a record could not be decoded. Each is distinct so operators can filter on it."""

    NULL_VALUE = "null-value"
    EMPTY_VALUE = "empty-value"
    TRUNCATED = "truncated"
    TRAILING_BYTES = "trailing-bytes"
    MALFORMED = "malformed-avro"
    BAD_MAGIC = "bad-magic"
    UNKNOWN_FINGERPRINT = "unknown-fingerprint"
    UNKNOWN_SCHEMA_ID = "unknown-schema-id"
    INCOMPATIBLE_SCHEMA = "incompatible-writer-schema"


# SourceRecord and Decoded are made once per consumed record: plain slots dataclasses, because
# a frozen dataclass's __init__ costs more. Treat them as read-only all the same. Each
# has its own __init__, which mypyc compiles (the one `dataclass` generates stays interpreted).


@dataclass(slots=True, init=False)
class SourceRecord:
    """A Kafka record exactly as consumed: raw key, value and headers with its coordinates."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None,
                 value: bytes | None, headers: Headers | None = None,
                 timestamp_ms: int | None = None):
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = [] if headers is None else headers
        self.timestamp_ms = timestamp_ms

    @classmethod
    def from_message(cls, message: Any) -> SourceRecord:
        """Build from a consumed Kafka message (headers normalized to a list)."""
        ts = message.timestamp()[1]
        headers = message.headers()  # a new list, or None when there are none
        return cls(message.topic(), message.partition(), message.offset(), message.key(),
                   message.value(), list(headers) if headers else [],
                   ts if ts and ts > 0 else None)


@dataclass(slots=True, init=False)
class Decoded:
    """A successfully decoded record: the Avro datum (dict) and the record it came from."""

    value: dict[str, Any]
    source: SourceRecord

    def __init__(self, value: dict[str, Any], source: SourceRecord):
        self.value = value
        self.source = source


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """A record that could not be decoded: the reason, a precise detail, and the raw record."""

    reason: DecodeReason
    detail: str
    source: SourceRecord
    exception_class: str | None = None

    def describe(self) -> str:
        """One line for logs: `reason detail at topic[partition]@offset`."""
        s = self.source
        return f"{self.reason.value}: {self.detail} at {s.topic}[{s.partition}]@{s.offset}"
