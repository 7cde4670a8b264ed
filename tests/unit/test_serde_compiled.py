"""The compiled Avro fast path agrees with fastavro: same bytes, same values, same failures."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.normalize.command import Attendance, Command, EventCancel, EventComplete, EventUpsert
from connector.serde.catalog import ACTIVITY_SCHEMA, COMMAND_SCHEMA, WEBINAR_SCHEMA, SchemaCatalog
from connector.serde.codec import Framing, RecordDecodeError, read_body
from connector.serde.compiled import compile_reader, compile_writer
from connector.serde.record import DecodeFailure, SourceRecord
from connector.serde.topic import TopicDecoder, TopicFormat, build_codec

CATALOG = SchemaCatalog.from_directory()
NS = "webinar.platform.v1"
LONGS = st.integers(-(1 << 63), (1 << 63) - 1)
TEXT = st.text(max_size=80)
OPT_TEXT = st.none() | TEXT


def _fastavro_bytes(parsed: Any, datum: Any) -> bytes:
    buffer = BytesIO()
    schemaless_writer(buffer, parsed, datum)
    return buffer.getvalue()


def _fastavro_value(parsed: Any, body: bytes) -> Any:
    return schemaless_reader(BytesIO(body), parsed, None, True)


ACTIONS = st.one_of(
    st.builds(lambda s: (f"{NS}.Registered", {"source": s}), OPT_TEXT),
    st.builds(lambda r: (f"{NS}.RegistrationCancelled", {"reason": r}), OPT_TEXT),
    st.builds(lambda s, d: (f"{NS}.Joined", {"sessionId": s, "device": d}), TEXT, OPT_TEXT),
    st.builds(lambda s, r: (f"{NS}.Left", {"sessionId": s, "reason": r}), TEXT, OPT_TEXT),
)
ACTIVITIES = st.fixed_dictionaries({
    "activityId": TEXT, "webinarId": TEXT, "accountId": TEXT, "occurredAt": LONGS,
    "participant": st.fixed_dictionaries({
        "participantId": TEXT, "email": OPT_TEXT, "firstName": OPT_TEXT, "lastName": OPT_TEXT,
        "company": OPT_TEXT, "hubspotContactId": st.none() | LONGS}),
    "action": ACTIONS,
})
MAPS = st.dictionaries(TEXT, TEXT, max_size=4)
OPT_LONGS = st.none() | LONGS
BODIES = st.one_of(
    st.builds(Attendance, st.sampled_from(["REGISTERED", "CANCELLED", "ATTENDED"]), OPT_LONGS,
              OPT_TEXT, LONGS, MAPS, OPT_LONGS, OPT_LONGS, OPT_LONGS),
    st.builds(EventUpsert, TEXT, TEXT, TEXT, OPT_TEXT, OPT_TEXT, OPT_LONGS, OPT_LONGS,
              st.booleans(), MAPS),
    st.builds(EventComplete, LONGS, LONGS),
    st.just(EventCancel()),
)
COMMANDS = st.builds(Command, TEXT, TEXT, BODIES)


def test_the_connectors_schemas_compile() -> None:
    for name in (ACTIVITY_SCHEMA, WEBINAR_SCHEMA, COMMAND_SCHEMA):
        parsed = CATALOG.reader(name).parsed
        assert compile_reader(parsed) is not None
        assert compile_writer(parsed) is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ACTIVITIES)
def test_activities_read_and_write_as_fastavro_does(datum: dict[str, Any]) -> None:
    parsed = CATALOG.reader(ACTIVITY_SCHEMA).parsed
    expected = _fastavro_bytes(parsed, datum)
    writer, reader = compile_writer(parsed), compile_reader(parsed)
    assert writer is not None and reader is not None
    assert writer(datum) == expected
    assert reader(expected, 0) == (_fastavro_value(parsed, expected), len(expected))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(COMMANDS)
def test_commands_read_and_write_as_fastavro_does(command: Command) -> None:
    parsed = CATALOG.reader(COMMAND_SCHEMA).parsed
    datum = command.to_avro()
    expected = _fastavro_bytes(parsed, datum)
    writer, reader = compile_writer(parsed), compile_reader(parsed)
    assert writer is not None and reader is not None
    assert writer(datum) == expected
    value, end = reader(expected, 0)
    assert (value, end) == (_fastavro_value(parsed, expected), len(expected))
    assert Command.from_avro(value) == command


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.data())
def test_any_bytes_decode_to_the_same_value_or_failure(garbage: bytes, data: st.DataObject) -> None:
    """Truncated, corrupted or random values: the fast path changes no verdict."""
    parsed = CATALOG.reader(ACTIVITY_SCHEMA).parsed
    valid = _fastavro_bytes(parsed, data.draw(ACTIVITIES))
    cut = data.draw(st.integers(0, len(valid)))
    for body in (garbage, valid[:cut], valid[:cut] + garbage, valid + garbage[:3]):
        assert _outcome(body, parsed, compile_reader(parsed)) == _outcome(body, parsed, None)


def _outcome(body: bytes, parsed: Any, fast: Any) -> Any:
    try:
        return ("ok", read_body(body, parsed, None, 0, fast))
    except RecordDecodeError as exc:
        return ("failed", exc.reason, exc.detail)


@pytest.mark.parametrize("framing", list(Framing))
def test_codecs_reject_bad_records_with_the_same_reasons(framing: Framing) -> None:
    from connector.serde.registry import SchemaRegistry

    registry = SchemaRegistry.from_url("mock://compiled-test")
    codec = build_codec(TopicFormat(framing, ACTIVITY_SCHEMA), "a", CATALOG, registry)
    datum = {"activityId": "a1", "webinarId": "w1", "accountId": "acct", "occurredAt": 1,
             "participant": {"participantId": "p", "email": "a@b.c", "firstName": None,
                             "lastName": None, "company": None, "hubspotContactId": None},
             "action": (f"{NS}.Joined", {"sessionId": "s", "device": None})}
    value = codec.encode(datum)
    decoder = TopicDecoder(codec)
    ok = decoder.decode(SourceRecord("a", 0, 0, None, value))
    assert not isinstance(ok, DecodeFailure) and ok.value == datum
    truncated = decoder.decode(SourceRecord("a", 0, 1, None, value[:-3]))
    trailing = decoder.decode(SourceRecord("a", 0, 2, None, value + b"\x00"))
    assert isinstance(truncated, DecodeFailure) and truncated.reason.value == "truncated"
    assert isinstance(trailing, DecodeFailure) and trailing.reason.value == "trailing-bytes"


def test_values_of_other_types_are_left_to_fastavro() -> None:
    """bool for a long, a dict branch without tuple notation, a missing field: fastavro's
    bytes, or fastavro's error."""
    parsed = CATALOG.reader(COMMAND_SCHEMA).parsed
    codec = build_codec(TopicFormat(Framing.RAW, COMMAND_SCHEMA), "c", CATALOG)
    datum = Command("w", "a", Attendance("ATTENDED", None, "e@x.io", 5, {}, 1, 2, 1)).to_avro()
    branch, body = datum["command"]
    for variant in ({**datum, "command": (branch, {**body, "vid": True})},
                    {**datum, "command": (branch, {**body, "interactionDateTime": 5.0})},
                    {**datum, "command": (branch, {**body, "state": "UNKNOWN"})},
                    {**datum, "command": body},
                    {k: v for k, v in datum.items() if k != "commandId"}):
        assert _written(lambda d: codec.encode(d), variant) == \
            _written(lambda d: _fastavro_bytes(parsed, d), variant)


def _written(write: Any, datum: Any) -> Any:
    try:
        return write(datum)
    except Exception as exc:
        return type(exc), str(exc)


def test_schemas_the_compiler_leaves_alone() -> None:
    recursive = parse_schema({"type": "record", "name": "Node", "fields": [
        {"name": "next", "type": ["null", "Node"]}]})
    ambiguous = parse_schema({"type": "record", "name": "R", "fields": [
        {"name": "x", "type": ["null", "double", "long"]}]})
    decimal = parse_schema({"type": "record", "name": "D", "fields": [
        {"name": "x", "type": {"type": "bytes", "logicalType": "decimal", "precision": 4}}]})
    assert compile_reader(recursive) is None and compile_writer(recursive) is None
    assert compile_writer(ambiguous) is None and compile_reader(ambiguous) is not None
    assert compile_reader(decimal) is None and compile_writer(decimal) is None


def test_every_primitive_round_trips_like_fastavro() -> None:
    parsed = parse_schema({"type": "record", "name": "P", "fields": [
        {"name": "b", "type": "boolean"}, {"name": "i", "type": "int"},
        {"name": "f", "type": "float"}, {"name": "d", "type": "double"},
        {"name": "y", "type": "bytes"}, {"name": "x", "type": {"type": "fixed", "name": "F",
                                                                "size": 3}},
        {"name": "a", "type": {"type": "array", "items": "long"}},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}}]})
    datum = {"b": True, "i": -(1 << 31), "f": 1.5, "d": -2.25, "y": b"\x00\xff", "x": b"abc",
             "a": [1, -1, 1 << 40], "e": "B"}
    writer, reader = compile_writer(parsed), compile_reader(parsed)
    assert writer is not None and reader is not None
    body = writer(datum)
    assert body == _fastavro_bytes(parsed, datum)
    assert reader(body, 0) == (_fastavro_value(parsed, body), len(body))
