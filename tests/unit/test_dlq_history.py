"""Redrive headers: original headers kept, error headers moved into a history that only grows."""

from __future__ import annotations

import json

from connector.dlq import DeadLetter, Stage
from connector.dlq.history import (
    H_REDRIVE_ATTEMPT,
    H_REDRIVE_FROM,
    H_REDRIVE_HISTORY,
    H_REDRIVE_TIME,
    previous_attempts,
    read_history,
    redrive_headers,
)
from connector.dlq.record import DeadLetterRecord
from connector.serde.record import Headers, SourceRecord

T0 = 1_767_261_600_000
ORIGINAL: Headers = [("traceparent", b"00-abc"), ("connector.source", b"activity/1/5"),
                     ("binary", b"\xff\x00"), ("empty", None)]


def dead_letter(headers: Headers, *, reason: str, status: int | None, offset: int,
                now_ms: int, dlq_offset: int) -> DeadLetterRecord:
    """What the sink writes for a record with `headers` at commands[1]@offset."""
    source = SourceRecord("connector.commands", 1, offset, b"web-1", b"\xc3\x01value", headers)
    letter = DeadLetter(source, Stage.SINK, reason, "failed", "connector.sink", "NotFoundError",
                        status, attempts=3)
    args = letter.produce_args("connector.commands.dlq", now_ms)
    return DeadLetterRecord("connector.commands.dlq", 0, dlq_offset, args["key"], args["value"],
                            args["headers"], now_ms)


def names(headers: Headers) -> list[str]:
    return [name for name, _value in headers]


def test_first_redrive_keeps_original_headers_and_records_the_failure() -> None:
    record = dead_letter(ORIGINAL, reason="event-not-found", status=404, offset=12,
                         now_ms=T0, dlq_offset=3)
    headers, attempt = redrive_headers(record, T0 + 1000)
    assert attempt == 1
    assert headers[:4] == ORIGINAL  # original headers first, untouched, in order
    assert names(headers[4:]) == [H_REDRIVE_ATTEMPT, H_REDRIVE_HISTORY, H_REDRIVE_TIME,
                                  H_REDRIVE_FROM]
    assert not any(n.startswith(("__connect.errors.", "connector.errors.")) for n in names(headers))
    values = dict(headers[4:])
    assert values[H_REDRIVE_ATTEMPT] == b"1"
    assert values[H_REDRIVE_TIME] == str(T0 + 1000).encode()
    assert values[H_REDRIVE_FROM] == b"connector.commands.dlq/0/3"
    assert json.loads(values[H_REDRIVE_HISTORY] or b"") == [{
        "reason": "event-not-found", "status": 404, "exception": "NotFoundError",
        "stage": "TASK_PUT", "time": T0, "topic": "connector.commands", "partition": 1,
        "offset": 12, "dlq": "connector.commands.dlq/0/3"}]


def test_a_second_failure_appends_and_keeps_the_first() -> None:
    first = dead_letter(ORIGINAL, reason="event-not-found", status=404, offset=12, now_ms=T0,
                        dlq_offset=3)
    redriven, _ = redrive_headers(first, T0 + 1000)
    # the redriven record lands at commands[1]@80 and fails again, differently: the sink keeps
    # all its headers (the redrive ones included) and adds fresh error headers
    second = dead_letter(redriven, reason="retry-budget-exhausted", status=429, offset=80,
                         now_ms=T0 + 5000, dlq_offset=9)
    assert previous_attempts(second.headers) == 1
    again, attempt = redrive_headers(second, T0 + 6000)
    assert attempt == 2
    assert again[:4] == ORIGINAL
    assert names(again).count(H_REDRIVE_HISTORY) == 1  # replaced, not duplicated
    history = read_history(again)
    assert [(h["reason"], h["status"], h["offset"], h["dlq"]) for h in history] == [
        ("event-not-found", 404, 12, "connector.commands.dlq/0/3"),
        ("retry-budget-exhausted", 429, 80, "connector.commands.dlq/0/9"),
    ]
    assert dict(again)[H_REDRIVE_ATTEMPT] == b"2"
    assert dict(again)[H_REDRIVE_FROM] == b"connector.commands.dlq/0/9"


def test_an_unreadable_history_is_kept_not_dropped() -> None:
    headers: Headers = [("a", b"1"), (H_REDRIVE_HISTORY, b"not json"),
                        (H_REDRIVE_ATTEMPT, b"x")]
    record = dead_letter(headers, reason="r", status=None, offset=1, now_ms=T0, dlq_offset=0)
    out, attempt = redrive_headers(record, T0)
    assert attempt == 2  # the attempt header is unreadable: one entry of history before this
    history = read_history(out)
    assert history[0] == {"unparsed": "not json"}
    assert history[1]["reason"] == "r" and history[1]["status"] is None


def test_no_history_means_first_attempt() -> None:
    assert read_history([("x", b"1")]) == []
    assert previous_attempts([("x", b"1")]) == 0
