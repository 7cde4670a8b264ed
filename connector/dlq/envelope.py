"""The dead-letter envelope: the original record untouched, plus headers that say what failed.

Header names follow Kafka Connect's (`__connect.errors.*`) so operators' tools and habits carry
over; what Connect has no name for (reason, HTTP status, HubSpot category and correlationId,
attempts, first and last failure, the platform account when the stage knows it) is under
`connector.errors.*`. Header values are UTF-8 text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from connector.serde.record import Headers, SourceRecord

CONNECT = "__connect.errors."
OURS = "connector.errors."

H_TOPIC = CONNECT + "topic"
H_PARTITION = CONNECT + "partition"
H_OFFSET = CONNECT + "offset"
H_CONNECTOR = CONNECT + "connector.name"
H_STAGE = CONNECT + "stage"
H_CLASS = CONNECT + "class.name"
H_EXC_CLASS = CONNECT + "exception.class.name"
H_EXC_MESSAGE = CONNECT + "exception.message"
H_REASON = OURS + "reason"
H_TIME = OURS + "time"
H_HTTP_STATUS = OURS + "http.status"
H_CATEGORY = OURS + "hubspot.category"
H_CORRELATION = OURS + "hubspot.correlation.id"
H_ATTEMPTS = OURS + "attempts"
H_FIRST_FAILURE = OURS + "first.failure"
H_LAST_FAILURE = OURS + "last.failure"
#: The platform account (a command's externalAccountId, a record's accountId) when the stage that
#: dead-letters the record knows it; `connector dlq --account` reads it before decoding the value.
H_ACCOUNT = OURS + "account"
#: The backfill whose run dead-lettered the record (`connector replay backfill`'s id); absent for
#: the live pipeline's dead letters. `connector dlq --backfill` selects by it.
H_BACKFILL = OURS + "backfill"
#: On a record a backfill copied: its offset in the topic it was copied from (the dead letter of
#: a copy names the original record, not the deleted copy).
H_ORIGIN_OFFSET = "connector.backfill.origin.offset"

CONNECTOR_NAME = "webinar-hubspot-connector"


def from_backfill(headers: Headers, *, backfill_id: str, topic: str) -> Headers:
    """A backfill's dead letter of a copied record, named after the original: its source topic
    ``topic`` and the original offset (the copy's ``H_ORIGIN_OFFSET``), marked ``H_BACKFILL``.
    The copy's own headers (the origin offset) are dropped."""
    origin = header_map(headers).get(H_ORIGIN_OFFSET)
    out: list[tuple[str, bytes | None]] = []
    for name, value in headers:
        if name in (H_ORIGIN_OFFSET, H_BACKFILL):
            continue
        if name == H_TOPIC:
            value = topic.encode()
        elif name == H_OFFSET and origin is not None:
            value = origin.encode()
        out.append((name, value))
    out.append((H_BACKFILL, backfill_id.encode()))
    return out


class Stage(StrEnum):
    """Where in the pipeline a record failed (Kafka Connect's stage names where they exist); the
    value is the ``__connect.errors.stage`` header's text."""

    DECODE = "VALUE_CONVERTER"
    NORMALIZE = "TRANSFORMATION"
    SINK = "TASK_PUT"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that cannot be applied, with everything its handler needs."""

    source: SourceRecord
    stage: Stage
    reason: str
    message: str
    component: str
    exception_class: str | None = None
    http_status: int | None = None
    category: str | None = None
    correlation_id: str | None = None
    attempts: int | None = None
    first_failure_ms: int | None = None
    last_failure_ms: int | None = None
    #: The platform account of the record, when known (written as `connector.errors.account`).
    account: str | None = None

    def error_headers(self, now_ms: int) -> Headers:
        """The error headers, in a stable order."""
        s = self.source
        pairs: list[tuple[str, Any]] = [
            (H_TOPIC, s.topic), (H_PARTITION, s.partition), (H_OFFSET, s.offset),
            (H_CONNECTOR, CONNECTOR_NAME), (H_STAGE, self.stage), (H_CLASS, self.component),
            (H_EXC_CLASS, self.exception_class), (H_EXC_MESSAGE, self.message),
            (H_REASON, self.reason), (H_TIME, now_ms), (H_HTTP_STATUS, self.http_status),
            (H_CATEGORY, self.category), (H_CORRELATION, self.correlation_id),
            (H_ATTEMPTS, self.attempts), (H_FIRST_FAILURE, self.first_failure_ms),
            (H_LAST_FAILURE, self.last_failure_ms), (H_ACCOUNT, self.account or None),
        ]
        return [(name, str(value).encode()) for name, value in pairs if value is not None]

    def produce_args(self, topic: str, now_ms: int) -> dict[str, Any]:
        """Arguments for Producer.produce: original key, value and headers plus ours."""
        return {
            "topic": topic,
            "key": self.source.key,
            "value": self.source.value,
            "headers": list(self.source.headers) + self.error_headers(now_ms),
        }


def header_map(headers: Headers | None) -> dict[str, str]:
    """The last value of each header as text (error headers are UTF-8)."""
    return {name: value.decode("utf-8", "replace") for name, value in (headers or [])
            if value is not None}
