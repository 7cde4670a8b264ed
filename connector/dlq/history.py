"""The headers a redriven record carries: its original headers, an attempt counter, and the history
of every failure it went through.

A dead letter holds the original record's headers followed by the error headers of its failure.
Redriving strips those error headers (the stage that fails it next adds fresh ones) and appends
the failure to `connector.redrive.history` instead, a JSON list, so a record that fails again
arrives in the dead-letter topic with the whole story: the stages keep all original headers, and
the `connector.redrive.*` headers are original headers from then on.
"""

from __future__ import annotations

import json
from typing import Any

from connector.dlq.envelope import (
    CONNECT,
    H_EXC_CLASS,
    H_HTTP_STATUS,
    H_OFFSET,
    H_PARTITION,
    H_REASON,
    H_STAGE,
    H_TIME,
    H_TOPIC,
    OURS,
)
from connector.dlq.record import DeadLetterRecord
from connector.serde.record import Headers

REDRIVE = "connector.redrive."
H_REDRIVE_ATTEMPT = REDRIVE + "attempt"
H_REDRIVE_HISTORY = REDRIVE + "history"
H_REDRIVE_TIME = REDRIVE + "time"
#: The dead letter this record was redriven from: `<dlq topic>/<partition>/<offset>`.
H_REDRIVE_FROM = REDRIVE + "from"


def is_error_header(name: str) -> bool:
    """An error header of the last failure (Kafka Connect's or ours)."""
    return name.startswith((CONNECT, OURS))


def is_redrive_header(name: str) -> bool:
    return name.startswith(REDRIVE)


def original_headers(headers: Headers) -> Headers:
    """The record's own headers: without the error headers and the redrive headers."""
    return [(name, value) for name, value in headers
            if not is_error_header(name) and not is_redrive_header(name)]


def failure_entry(record: DeadLetterRecord) -> dict[str, Any]:
    """One history entry: what failed, where, when, and which dead letter said so."""
    headers = record.header_map
    return {
        "reason": headers.get(H_REASON),
        "status": int_or_text(headers.get(H_HTTP_STATUS)),
        "exception": headers.get(H_EXC_CLASS),
        "stage": headers.get(H_STAGE),
        "time": int_or_text(headers.get(H_TIME) or record.timestamp_ms),
        "topic": headers.get(H_TOPIC),
        "partition": int_or_text(headers.get(H_PARTITION)),
        "offset": int_or_text(headers.get(H_OFFSET)),
        "dlq": f"{record.topic}/{record.partition}/{record.offset}",
    }


def read_history(headers: Headers) -> list[Any]:
    """The history a record already carries (last `connector.redrive.history` header).

    A value that is not a JSON list is kept, as `{"unparsed": text}`, never dropped.
    """
    raw: bytes | None = None
    for name, value in headers:
        if name == H_REDRIVE_HISTORY:
            raw = value
    if raw is None:
        return []
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return [{"unparsed": text}]
    return parsed if isinstance(parsed, list) else [{"unparsed": text}]


def previous_attempts(headers: Headers) -> int:
    """How many times the record was redriven before (`connector.redrive.attempt`)."""
    attempt = None
    for name, value in headers:
        if name == H_REDRIVE_ATTEMPT and value is not None:
            attempt = value
    if attempt is not None:
        try:
            return max(0, int(attempt.decode("ascii")))
        except (UnicodeDecodeError, ValueError):
            pass
    return len(read_history(headers))


def redrive_headers(record: DeadLetterRecord, now_ms: int) -> tuple[Headers, int]:
    """The headers to re-produce `record` with, and its attempt number (1 for a first redrive).

    Original headers first, in their order, then `connector.redrive.attempt`, `.history` (the
    earlier entries followed by this failure), `.time` (epoch ms) and `.from`.
    """
    attempt = previous_attempts(record.headers) + 1
    history = [*read_history(record.headers), failure_entry(record)]
    ours: Headers = [
        (H_REDRIVE_ATTEMPT, str(attempt).encode()),
        (H_REDRIVE_HISTORY, json.dumps(history, separators=(",", ":")).encode()),
        (H_REDRIVE_TIME, str(now_ms).encode()),
        (H_REDRIVE_FROM, f"{record.topic}/{record.partition}/{record.offset}".encode()),
    ]
    return original_headers(record.headers) + ours, attempt


def int_or_text(value: str | int | None) -> int | str | None:
    """A header number as int; text that is not a number stays text (nothing is lost)."""
    if value is None or isinstance(value, int):
        return value
    try:
        return int(value)
    except ValueError:
        return value
