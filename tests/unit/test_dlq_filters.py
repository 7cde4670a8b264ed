"""Dead-letter filters: durations, ISO times, future times, statuses, and matching records."""

from __future__ import annotations

import pytest

from connector.dlq import DeadLetter, Stage
from connector.dlq.filters import (
    FilterError,
    RecordFilter,
    format_ms,
    parse_duration_ms,
    parse_status,
    parse_time_ms,
)
from connector.dlq.record import DeadLetterRecord
from connector.serde.record import SourceRecord

NOW = 1_767_261_600_000  # 2026-01-01T10:00:00Z
HOUR = 3_600_000


def letter(*, reason: str = "event-not-found", status: int | None = 404, key: bytes | None = b"w1",
           timestamp_ms: int | None = NOW - HOUR, partition: int = 0, offset: int = 7,
           now_ms: int = NOW - HOUR) -> DeadLetterRecord:
    source = SourceRecord("connector.commands", 2, 40, key, b"v", [("traceparent", b"00-x")])
    args = DeadLetter(source, Stage.SINK, reason, "m", "c", "X", status).produce_args(
        "connector.commands.dlq", now_ms)
    return DeadLetterRecord("connector.commands.dlq", partition, offset, args["key"],
                            args["value"], args["headers"], timestamp_ms)


@pytest.mark.parametrize(("text", "ms"), [
    ("90s", 90_000), ("15m", 900_000), ("1h", HOUR), ("2d", 48 * HOUR), ("1w", 168 * HOUR),
    ("1h30m", 5_400_000), ("0s", 0), (" 2H ", 2 * HOUR),
])
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "h", "1", "1x", "1h-", "-1h", "1.5h", "1 h"])
def test_not_durations(text: str) -> None:
    assert parse_duration_ms(text) is None


@pytest.mark.parametrize(("text", "ms"), [
    ("2026-01-01T10:00:00Z", NOW),
    ("2026-01-01T10:00Z", NOW),
    ("2026-01-01T10:00", NOW),  # no zone: UTC
    ("2026-01-01T12:00:00+02:00", NOW),
    ("2026-01-01", NOW - 10 * HOUR),
    ("2026-01-01T10:00:00.250Z", NOW + 250),
    ("1767261600000", NOW),  # epoch ms, as connector.errors.time carries
    ("1h", NOW - HOUR),
])
def test_times(text: str, ms: int) -> None:
    assert parse_time_ms(text, NOW) == ms


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "2026-01-01T25:00", "12345", "1h ago"])
def test_bad_times_say_what_is_valid(text: str) -> None:
    with pytest.raises(FilterError, match=r"not a time: expected an ISO-8601 time.*duration ago"):
        parse_time_ms(text, NOW)


def test_since_in_the_future_is_refused() -> None:
    with pytest.raises(FilterError, match=r"--since 2026-01-02 is in the future "
                                          r"\(2026-01-02T00:00:00.000Z, now is "
                                          r"2026-01-01T10:00:00.000Z\)"):
        RecordFilter.parse(now_ms=NOW, since="2026-01-02")
    # now itself, and an --until in the future, are fine
    assert RecordFilter.parse(now_ms=NOW, since="0s", until="2030-01-01").since_ms == NOW


def test_since_after_until_is_refused() -> None:
    with pytest.raises(FilterError, match=r"--since 1h .* is after --until 2h"):
        RecordFilter.parse(now_ms=NOW, since="1h", until="2h")


def test_errors_name_the_option() -> None:
    with pytest.raises(FilterError, match=r"^--until: 'soon' is not a time"):
        RecordFilter.parse(now_ms=NOW, until="soon")
    with pytest.raises(FilterError, match=r"^--status: '42' is not an HTTP status: .*e\.g\. 429"):
        RecordFilter.parse(now_ms=NOW, statuses=("42",))
    with pytest.raises(FilterError, match=r"^--record: '0-12' is not a record position: "
                                          r"expected PARTITION:OFFSET"):
        RecordFilter.parse(now_ms=NOW, records=("0-12",))
    with pytest.raises(FilterError, match=r"^--webinar"):
        RecordFilter.parse(now_ms=NOW, webinars=("",))


@pytest.mark.parametrize(("text", "span"), [
    ("429", (429, 429)), ("5xx", (500, 599)), ("4XX", (400, 499)), ("100", (100, 100)),
])
def test_statuses(text: str, span: tuple[int, int]) -> None:
    assert parse_status(text) == span


@pytest.mark.parametrize("text", ["600", "99", "6xx", "abc", "4x", ""])
def test_bad_statuses(text: str) -> None:
    with pytest.raises(FilterError):
        parse_status(text)


def test_format_ms() -> None:
    assert format_ms(NOW + 5) == "2026-01-01T10:00:00.005Z"


def test_everything_matches_an_empty_filter() -> None:
    selection = RecordFilter.parse(now_ms=NOW)
    assert selection.is_everything
    assert selection.matches(letter(key=None, status=None, timestamp_ms=None))


def test_each_criterion() -> None:
    rec = letter()

    def parse(**kw: object) -> RecordFilter:
        return RecordFilter.parse(now_ms=NOW, **kw)  # type: ignore[arg-type]

    assert parse(reasons=("event-not-found", "other")).matches(rec)
    assert not parse(reasons=("hubspot-rejected",)).matches(rec)
    assert parse(statuses=("404",)).matches(rec)
    assert parse(statuses=("429", "4xx")).matches(rec)
    assert not parse(statuses=("5xx",)).matches(rec)
    assert not parse(statuses=("404",)).matches(letter(status=None))
    assert parse(webinars=("w1",)).matches(rec)
    assert not parse(webinars=("w2",)).matches(rec)
    assert not parse(webinars=("w1",)).matches(letter(key=b"\xff\xfe"))
    assert parse(records=("0:7",)).matches(rec)
    assert not parse(records=("1:7",)).matches(rec)
    assert parse(since="2h", until="30m").matches(rec)
    assert not parse(since="30m").matches(rec)
    assert not parse(until="2h").matches(rec)
    # all criteria must hold
    assert not parse(reasons=("event-not-found",), webinars=("w2",)).matches(rec)


def test_time_falls_back_to_the_error_header() -> None:
    rec = letter(timestamp_ms=None, now_ms=NOW - 3 * HOUR)
    assert RecordFilter.parse(now_ms=NOW, since="4h", until="2h").matches(rec)
    assert not RecordFilter.parse(now_ms=NOW, since="1h").matches(rec)
