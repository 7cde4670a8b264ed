"""Parsing operators' input for `connector replay`: datetimes, durations, topic specs, files."""

from __future__ import annotations

import pytest

from connector.replay.spec import (
    FutureTimeError,
    SpecError,
    TopicSelector,
    format_ms,
    merge_selectors,
    parse_datetime,
    parse_duration,
    parse_offsets_csv,
    parse_time,
    parse_topic_spec,
)

NOW = 1_795_000_000_000  # 2026-11-18T...Z
JAN_1_10H = 1_767_261_600_000  # 2026-01-01T10:00:00Z


@pytest.mark.parametrize("text", ["2026-01-01T10:00:00Z", "2026-01-01T11:00:00+01:00",
                                  "2026-01-01T10:00:00.000Z", " 2026-01-01T10:00:00+00:00 "])
def test_datetimes_with_a_time_zone(text: str) -> None:
    assert parse_datetime(text, NOW) == JAN_1_10H


def test_datetime_keeps_milliseconds_and_round_trips() -> None:
    assert parse_datetime("2026-01-01T10:00:00.250Z", NOW) == JAN_1_10H + 250
    assert format_ms(JAN_1_10H) == "2026-01-01T10:00:00Z"
    assert parse_datetime(format_ms(JAN_1_10H + 250), NOW) == JAN_1_10H + 250


@pytest.mark.parametrize(("text", "message"), [
    ("2026-01-01T10:00:00", "no time zone"),
    ("yesterday", "not an ISO 8601 datetime"),
    ("2026-13-01T10:00:00Z", "not an ISO 8601 datetime"),
])
def test_bad_datetimes_say_why_with_an_example(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as raised:
        parse_datetime(text, NOW)
    assert "2026-01-01T10:00:00Z" in str(raised.value)


def test_a_datetime_in_the_future_is_refused() -> None:
    with pytest.raises(FutureTimeError, match="in the future"):
        parse_datetime("2100-01-01T00:00:00Z", NOW)
    assert parse_datetime(format_ms(NOW), NOW) == NOW  # now itself is not the future


@pytest.mark.parametrize(("text", "millis"), [
    ("PT1H", 3_600_000), ("P1DT2H30M", 95_400_000), ("PT0.5S", 500), ("pt90m", 5_400_000),
    ("P1W", 604_800_000), ("1h", 3_600_000), ("90m", 5_400_000), ("1h30m", 5_400_000),
    ("2d", 172_800_000), ("500ms", 500), ("1.5h", 5_400_000), ("45s", 45_000),
])
def test_durations_iso_and_shorthand(text: str, millis: int) -> None:
    assert parse_duration(text) == millis


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "1x", "h", "1h2", "-1h", "PT-1H",
                                  "1 h", "soon"])
def test_malformed_durations_show_an_example(text: str) -> None:
    with pytest.raises(SpecError, match="PT1H"):
        parse_duration(text)


def test_a_zero_duration_is_refused() -> None:
    with pytest.raises(SpecError, match="positive"):
        parse_duration("PT0S")


def test_a_time_is_a_datetime_or_a_duration_ago() -> None:
    assert parse_time("2026-01-01T10:00:00Z", NOW) == JAN_1_10H
    assert parse_time("2h", NOW) == NOW - 7_200_000
    assert parse_time("PT30M", NOW) == NOW - 1_800_000
    with pytest.raises(SpecError, match="neither a datetime"):
        parse_time("last tuesday", NOW)
    with pytest.raises(FutureTimeError):
        parse_time("2100-01-01T00:00:00Z", NOW)


@pytest.mark.parametrize(("text", "expected"), [
    ("webinar.activity", TopicSelector("webinar.activity")),
    ("webinar.activity:0", TopicSelector("webinar.activity", (0,))),
    ("t:2,0", TopicSelector("t", (0, 2))),
    ("t:0-2,5", TopicSelector("t", (0, 1, 2, 5))),
    ("t:1,1", TopicSelector("t", (1,))),
])
def test_topic_specs(text: str, expected: TopicSelector) -> None:
    assert parse_topic_spec(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("t:", "not a partition"), ("t:a", "not a partition"), ("t:1,", "not a partition"),
    ("t:3-1", "backwards"), ("bad topic", "not a valid topic name"), (":1", "not a valid topic"),
    ("t:-1", "not a partition"),
])
def test_malformed_topic_specs_show_an_example(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as raised:
        parse_topic_spec(text)
    assert "webinar.activity:0" in str(raised.value)


def test_selectors_merge_per_topic() -> None:
    merged = merge_selectors([TopicSelector("a", (0,)), TopicSelector("b"),
                              TopicSelector("a", (2,)), TopicSelector("b", (1,))])
    assert merged == [TopicSelector("a", (0, 2)), TopicSelector("b")]


def test_offsets_file_in_kafka_consumer_groups_format() -> None:
    text = "topic,partition,offset\n# comment\n\nt,0,10\nt, 1 ,0\nu,0,7\n"
    assert parse_offsets_csv(text) == {("t", 0): 10, ("t", 1): 0, ("u", 0): 7}


@pytest.mark.parametrize(("text", "message"), [
    ("t,0\n", "line 1"), ("t,0,x\n", "line 1"), ("t,0,1\nt,a,1\n", "line 2"),
    ("t,0,-5\n", "non-negative"), ("t,0,1\nt,0,2\n", "appears twice"),
    ("\n# only\n", "no partition"),
])
def test_malformed_offsets_files_name_the_line(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_offsets_csv(text)
