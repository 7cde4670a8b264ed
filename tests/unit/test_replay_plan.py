"""Reset targets per partition (clamped like kafka-consumer-groups) and the dry-run table."""

from __future__ import annotations

import pytest

from connector.replay.plan import (
    Kind,
    PartitionOffsets,
    Row,
    Strategy,
    as_json,
    format_table,
    target,
)


def offsets(current: int | None = 50, by_time: int | None = None) -> PartitionOffsets:
    return PartitionOffsets("t", 0, low=10, high=100, current=current, by_time=by_time)


@pytest.mark.parametrize(("strategy", "expected"), [
    (Strategy(Kind.EARLIEST), 10),
    (Strategy(Kind.LATEST), 100),
    (Strategy(Kind.OFFSET, 42), 42),
    (Strategy(Kind.SHIFT, -20), 30),
    (Strategy(Kind.SHIFT, 20), 70),
    (Strategy(Kind.FILE, offsets=(("t", 0, 77), ("t", 1, 5))), 77),
])
def test_targets(strategy: Strategy, expected: int) -> None:
    row = target(strategy, offsets())
    assert row.target == expected and row.note == ""


@pytest.mark.parametrize(("strategy", "expected", "note"), [
    (Strategy(Kind.SHIFT, -1000), 10, "-950 clamped to earliest (10)"),
    (Strategy(Kind.SHIFT, 1000), 100, "1050 clamped to latest (100)"),
    (Strategy(Kind.OFFSET, 3), 10, "3 clamped to earliest (10)"),
    (Strategy(Kind.OFFSET, 500), 100, "500 clamped to latest (100)"),
])
def test_targets_are_clamped_to_what_kafka_holds(strategy: Strategy, expected: int,
                                                 note: str) -> None:
    row = target(strategy, offsets())
    assert (row.target, row.note) == (expected, note)


def test_by_time_uses_the_offset_found_or_the_end() -> None:
    strategy = Strategy(Kind.DATETIME, 1_767_261_600_000)
    assert target(strategy, offsets(by_time=60)).target == 60
    assert target(strategy, offsets(by_time=None)).target == 100  # nothing that late
    assert target(Strategy(Kind.DURATION, 1), offsets(by_time=5)).target == 10  # retention ate it


def test_without_a_committed_offset_the_group_starts_at_earliest() -> None:
    row = target(Strategy(Kind.SHIFT, 5), offsets(current=None))
    assert row.target == 15 and "no committed offset" in row.note
    assert row.lag_before == 90 and row.lag_after == 85


def test_a_partition_absent_from_the_file_keeps_its_offset() -> None:
    row = target(Strategy(Kind.FILE, offsets=(("t", 1, 5),)), offsets())
    assert row.target == 50 and not row.changes


def test_lags() -> None:
    row = target(Strategy(Kind.EARLIEST), offsets())
    assert (row.lag_before, row.lag_after, row.lag_change) == (50, 90, 40)
    assert as_json([row])[0] == {"topic": "t", "partition": 0, "low": 10, "high": 100,
                                 "current": 50, "target": 10, "note": "", "lag_before": 50,
                                 "lag_after": 90, "lag_change": 40}


def test_the_dry_run_table() -> None:
    rows = [Row("webinar.activity", 0, 0, 1200, 1200, 0),
            Row("webinar.activity", 1, 0, 900, None, 900, "no committed offset"),
            Row("webinar.webinars", 10, 5, 7, 7, 7)]
    assert format_table(rows).splitlines() == [
        "TOPIC             PARTITION  CURRENT  TARGET  LAG BEFORE  LAG AFTER  CHANGE  NOTE",
        "webinar.activity          0     1200       0           0       1200   +1200",
        "webinar.activity          1        -     900         900          0    -900  "
        "no committed offset",
        "webinar.webinars         10        7       7           0          0       0",
    ]


def test_strategies_describe_themselves_like_the_flags() -> None:
    assert Strategy(Kind.EARLIEST).describe() == "--to-earliest"
    assert Strategy(Kind.SHIFT, -5).describe() == "--shift-by -5"
    assert Strategy(Kind.DATETIME, 1_767_261_600_000).describe() == \
        "--to-datetime (offsets at 2026-01-01T10:00:00Z)"
