"""Grouping counts, value rendering (decoded or bytes), redrive progress, planning and pacing."""

from __future__ import annotations

import pytest

from connector.config import Settings, TopicSettings
from connector.dlq import DeadLetter, Stage
from connector.dlq.errors import RedriveError
from connector.dlq.inspect import (
    ValueRenderer,
    dlq_source,
    header_json,
    jsonable,
    record_json,
    summarize,
)
from connector.dlq.progress import MAX_METADATA_CHARS, PartitionProgress, ProgressError
from connector.dlq.record import DeadLetterRecord
from connector.dlq.redrive import Pacer, advance_progress, plan
from connector.normalize.command import COMMAND_SCHEMA, Attendance, Command
from connector.serde.catalog import SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.record import SourceRecord
from connector.serde.topic import TopicFormat, build_codec

T0 = 1_767_261_600_000
SETTINGS = Settings(topics=TopicSettings(commands="cmds", commands_dlq="cmds.dlq"))
COMMAND = Command("web-1", "acct", Attendance("ATTENDED", None, "a@example.com", T0))


def encoded_command() -> bytes:
    codec = build_codec(TopicFormat(Framing.SINGLE_OBJECT, COMMAND_SCHEMA), "cmds",
                        SchemaCatalog.from_directory())
    value: bytes = codec.encode(COMMAND.to_avro())
    return value


def letter(*, reason: str = "event-not-found", status: int | None = 404,
           exception: str | None = "NotFound", value: bytes | None = b"v",
           source_topic: str = "cmds", partition: int = 0, offset: int = 0,
           source_partition: int = 1, dlq: str = "cmds.dlq") -> DeadLetterRecord:
    source = SourceRecord(source_topic, source_partition, 100 + offset, b"web-1", value,
                          [("traceparent", b"00-t")])
    args = DeadLetter(source, Stage.SINK, reason, "m", "c", exception, status).produce_args(
        dlq, T0)
    return DeadLetterRecord(dlq, partition, offset, args["key"], args["value"], args["headers"],
                            T0 + offset)


# --------------------------------------------------------------------------- grouping


def test_counts_by_reason_status_and_exception() -> None:
    records = [
        letter(offset=0), letter(offset=1),
        letter(offset=2, reason="hubspot-rejected", status=400, exception="ValidationError"),
        letter(offset=3, reason="undecodable", status=None, exception=None),
    ]
    summary = summarize("cmds.dlq", records, redriven={(0, 0), (0, 3)}).to_json()
    assert summary == {
        "topic": "cmds.dlq", "records": 4, "pending": 2, "redriven": 2,
        "sources": {"cmds": 4},
        "by_reason": {"event-not-found": 2, "hubspot-rejected": 1, "undecodable": 1},
        "by_status": {"404": 2, "(none)": 1, "400": 1},
        "by_exception": {"NotFound": 2, "(none)": 1, "ValidationError": 1},
        "first": "2026-01-01T10:00:00.000Z", "last": "2026-01-01T10:00:00.003Z",
    }


def test_empty_topic_summary() -> None:
    data = summarize("x.dlq", []).to_json()
    assert data["records"] == 0 and data["first"] is None and data["by_reason"] == {}


def test_dlq_source_names() -> None:
    assert dlq_source("cmds.dlq", SETTINGS) == "cmds"
    assert dlq_source("webinar.activity.dlq", SETTINGS) == "webinar.activity"
    assert dlq_source("other", SETTINGS) is None


# --------------------------------------------------------------------------- values


def test_values_decode_with_the_source_topics_format() -> None:
    renderer = ValueRenderer.from_settings(SETTINGS)
    rendered = renderer.render(letter(value=encoded_command()), "cmds")
    assert rendered is not None
    assert rendered["framing"] == "single-object" and rendered["schema"] == COMMAND_SCHEMA
    decoded = rendered["decoded"]
    assert decoded["externalEventId"] == "web-1"
    assert decoded["command"]["connector.v1.Attendance"]["state"] == "ATTENDED"


def test_undecodable_values_are_shown_as_bytes_with_the_reason() -> None:
    renderer = ValueRenderer.from_settings(SETTINGS)
    rendered = renderer.render(letter(value=b"\x00\xff"), "cmds")
    assert rendered == {"framing": "single-object", "schema": COMMAND_SCHEMA,
                        "error": rendered["error"] if rendered else None,
                        "size": 2, "hex": "00ff", "base64": "AP8="}
    assert rendered is not None and rendered["error"].startswith("bad-magic")
    unknown = renderer.render(letter(value=b"\x01"), "elsewhere")
    assert unknown is not None and unknown["error"] == (
        "no schema is configured for topic elsewhere")
    assert renderer.render(letter(value=None), "cmds") is None


def test_confluent_without_registry_is_a_rendering_note_not_a_failure() -> None:
    settings = Settings.model_validate({"serde": {"activity_framing": "confluent"}})
    renderer = ValueRenderer.from_settings(settings)
    rendered = renderer.render(letter(value=b"\x00\x00\x00\x00\x01"), "webinar.activity")
    assert rendered is not None and "no schema registry URL" in rendered["error"]


def test_jsonable() -> None:
    assert jsonable({"a": ("ns.B", {"b": b"\x01"}), "c": [1, None]}) == {
        "a": {"ns.B": {"b": {"base64": "AQ=="}}}, "c": [1, None]}


def test_headers_and_record_json() -> None:
    assert header_json("h", b"\xff") == {"name": "h", "base64": "/w=="}
    assert header_json("h", None) == {"name": "h", "value": None}
    rec = letter(offset=5)
    data = record_json(rec, None, source_topic="cmds", redriven=True)
    assert data["offset"] == 5 and data["key"] == "web-1" and data["status"] == 404
    assert data["source"] == {"topic": "cmds", "partition": 1, "offset": 105}
    assert data["redriven"] is True and data["redrive_attempts"] == 0
    assert data["headers"][0] == {"name": "traceparent", "value": "00-t"}
    assert {h["name"] for h in data["headers"]} >= {"__connect.errors.topic",
                                                    "connector.errors.reason"}


# --------------------------------------------------------------------------- progress


def test_progress_watermark_moves_over_contiguous_redriven_records() -> None:
    start = PartitionProgress()
    # records at 0..5 (plus a transaction marker gap at 3); a filter sent 0, 1, 4
    after = start.advance([0, 1, 4], [0, 1, 2, 4, 5])
    assert after == PartitionProgress(2, frozenset({4}))
    assert after.is_redriven(1) and after.is_redriven(4)
    assert not after.is_redriven(2) and not after.is_redriven(5)
    # the records the filter left out go later: the watermark passes them all
    assert after.advance([2, 5], [2, 4, 5]) == PartitionProgress(6, frozenset())


def test_progress_round_trips_through_commit_metadata() -> None:
    progress = PartitionProgress(10, frozenset({12, 13, 14, 20, 22, 23}))
    assert progress.metadata() == "v1:12-14,20,22-23"
    assert PartitionProgress.from_commit(10, progress.metadata()) == progress
    assert PartitionProgress.from_commit(-1001, None) == PartitionProgress()
    assert PartitionProgress.from_commit(5, "something else") == PartitionProgress(5)
    assert PartitionProgress.from_commit(5, "v1:3,7,x-y") == PartitionProgress(5, frozenset({7}))


def test_progress_that_cannot_be_recorded_is_refused() -> None:
    scattered = PartitionProgress(0, frozenset(range(1, 4 * MAX_METADATA_CHARS, 2)))
    with pytest.raises(ProgressError, match="too many to record"):
        scattered.check()


# --------------------------------------------------------------------------- planning


def test_plan_targets_the_original_topic_and_partition() -> None:
    records = [letter(offset=0, source_partition=2), letter(offset=1, source_partition=5)]
    planned = plan(records, to=None, partitions={"cmds": 3, "other": 1}, now_ms=T0)
    assert [(p.target, p.partition, p.attempt) for p in planned] == [("cmds", 2, 1),
                                                                     ("cmds", None, 1)]
    args = planned[0].produce_args()
    assert args["key"] == b"web-1" and args["value"] == b"v" and args["partition"] == 2
    assert args["headers"][0] == ("traceparent", b"00-t")
    elsewhere = plan(records, to="other", partitions={"cmds": 3, "other": 1}, now_ms=T0)
    assert [(p.target, p.partition) for p in elsewhere] == [("other", None), ("other", None)]
    assert "partition" not in elsewhere[0].produce_args()


def test_plan_refuses_missing_targets() -> None:
    with pytest.raises(RedriveError, match=r"the target topic cmds .* does not exist"):
        plan([letter()], to=None, partitions={}, now_ms=T0)
    bare = DeadLetterRecord("x.dlq", 0, 4, b"k", b"v", [], T0)
    with pytest.raises(RedriveError, match=r"x.dlq\[0\]@4 has no __connect.errors.topic header; "
                                           "pass --to"):
        plan([bare], to=None, partitions={"cmds": 1}, now_ms=T0)


def test_advance_progress_by_partition() -> None:
    records = [letter(partition=0, offset=0), letter(partition=0, offset=1),
               letter(partition=1, offset=0)]
    planned = plan(records[1:], to=None, partitions={"cmds": 3}, now_ms=T0)
    after = advance_progress({}, planned, records)
    assert after == {0: PartitionProgress(0, frozenset({1})), 1: PartitionProgress(1)}


def test_pacer_spaces_sends() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(4, lambda: now[0], sleep)
    for _ in range(5):
        pacer.wait()
    assert slept == [0.25, 0.25, 0.25, 0.25]
    now[0] += 10  # idle: no burst credit beyond the next slot
    pacer.wait()
    assert len(slept) == 4
    unpaced = Pacer(None, lambda: now[0], sleep)
    unpaced.wait()
    unpaced.wait()
    assert len(slept) == 4
