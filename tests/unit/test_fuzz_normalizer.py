"""Fuzzing the normalizer's input path: random and mutated Avro bytes, extreme values, hostile
strings. Nothing may raise; every record ends as state, held, or a rejection with a reason; and
every command the normalizer emits must still encode for the commands topic."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.normalize.command import COMMAND_SCHEMA
from connector.normalize.normalizer import AttendanceNormalizer
from connector.serde.catalog import ACTIVITY_SCHEMA, SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.record import Decoded, DecodeFailure, SourceRecord
from connector.serde.topic import TopicDecoder, TopicFormat, build_codec
from tests.serde_helpers import activity

CATALOG = SchemaCatalog.from_directory()
CODEC = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a", CATALOG)
COMMANDS = build_codec(TopicFormat(Framing.SINGLE_OBJECT, COMMAND_SCHEMA), "c", CATALOG)
DECODER = TopicDecoder(CODEC)
LONG = st.integers(-(2**63), 2**63 - 1)
HOSTILE = st.one_of(st.text(max_size=300), st.sampled_from([
    "", " ", "\x00", "a@b.c", "ADA@EXAMPLE.COM ", "x" * 5000 + "@example.com", "@", "a@@b.c",
    "\u202eevil@example.com", "名前@例え.jp", "null", "'; DROP TABLE contacts; --", "\ud7ff@x.io"]))
OPT = st.one_of(st.none(), HOSTILE)
ACTIONS = st.one_of(
    st.tuples(st.just("webinar.platform.v1.Registered"), st.fixed_dictionaries({"source": OPT})),
    st.tuples(st.just("webinar.platform.v1.RegistrationCancelled"),
              st.fixed_dictionaries({"reason": OPT})),
    st.tuples(st.just("webinar.platform.v1.Joined"),
              st.fixed_dictionaries({"sessionId": HOSTILE, "device": OPT})),
    st.tuples(st.just("webinar.platform.v1.Left"),
              st.fixed_dictionaries({"sessionId": HOSTILE, "reason": OPT})),
)
ACTIVITIES = st.fixed_dictionaries({
    "activityId": HOSTILE, "webinarId": st.sampled_from(["w1", "w2", ""]), "accountId": HOSTILE,
    "occurredAt": st.one_of(LONG, st.integers(1_767_000_000_000, 1_768_000_000_000)),
    "participant": st.fixed_dictionaries({
        "participantId": HOSTILE, "email": OPT, "firstName": OPT, "lastName": OPT,
        "company": OPT, "hubspotContactId": st.one_of(st.none(), LONG)}),
    "action": ACTIONS,
})
WEBINARS = st.fixed_dictionaries({
    "webinarId": st.just("w1"), "accountId": HOSTILE, "title": HOSTILE, "organizer": HOSTILE,
    "eventType": OPT, "description": OPT, "url": OPT,
    "scheduledStart": st.one_of(st.none(), LONG), "scheduledEnd": st.one_of(st.none(), LONG),
    "status": st.sampled_from(["SCHEDULED", "LIVE", "ENDED", "CANCELLED"]),
    "actualStart": st.one_of(st.none(), LONG), "actualEnd": st.one_of(st.none(), LONG),
    "updatedAt": LONG, "customProperties": st.dictionaries(HOSTILE, HOSTILE, max_size=3),
})


def _feed(normalizer: AttendanceNormalizer, value: bytes, offset: int) -> None:
    """One record through decode and rules; outputs must be well-formed."""
    source = SourceRecord("webinar.activity", 0, offset, b"w1", value, [])
    result = DECODER.decode(source)
    if isinstance(result, DecodeFailure):
        assert result.reason and result.detail and result.source is source
        return
    assert isinstance(result, Decoded)
    out = normalizer.on_activity(result.value, source)
    for rejection in out.rejections:
        assert rejection.reason and rejection.source is source
    for command in out.commands:
        COMMANDS.encode(command.to_avro())  # must not fail inside the transaction


def _normalizer(webinar: dict[str, Any] | None) -> AttendanceNormalizer:
    table = {"w1": webinar} if webinar else {}
    return AttendanceNormalizer(table.get)


FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(value: bytes) -> None:
    _feed(_normalizer(None), value, 0)


@FUZZ
@given(st.data())
def test_mutated_records_never_raise(data: st.DataObject) -> None:
    value = bytearray(CODEC.encode(activity(action=("webinar.platform.v1.Joined",
                                                    {"sessionId": "s", "device": None}))))
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, max(0, len(value) - 1)))
        if kind == "flip" and value:
            value[at] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del value[at:at + data.draw(st.integers(1, 8))]
        else:
            value[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    webinar = {"webinarId": "w1", "accountId": "a", "title": "t", "organizer": "o",
               "status": "LIVE", "scheduledStart": 1_767_261_600_000, "updatedAt": 1}
    _feed(_normalizer(webinar), bytes(value), 0)


@FUZZ
@given(st.lists(ACTIVITIES, min_size=1, max_size=12), WEBINARS, st.integers(0, 2**62))
def test_extreme_values_and_hostile_strings_never_raise(
        activities: list[dict[str, Any]], webinar: dict[str, Any], punctuate_to: int) -> None:
    table: dict[str, dict[str, Any]] = {}
    normalizer = AttendanceNormalizer(table.get)
    for offset, datum in enumerate(activities):
        _feed(normalizer, CODEC.encode(datum), offset)
    table["w1"] = webinar
    for out in (normalizer.on_webinar("w1"), normalizer.advance(punctuate_to)):
        for command in out.commands:
            COMMANDS.encode(command.to_avro())
        assert all(r.reason for r in out.rejections)
    # Everything is accounted for: merged into state, still held, or rejected.
    list(normalizer.drain_changes())
