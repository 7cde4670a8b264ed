"""Decoding and encoding in the three framings, and every distinct way a value can be bad."""

from __future__ import annotations

import json
import struct
import uuid

import pytest

from connector.errors import ConfigError, SchemaNotFoundError, SerdeError
from connector.serde.catalog import (
    ACTIVITY_SCHEMA,
    WEBINAR_SCHEMA,
    SchemaCatalog,
    crc64_fingerprint,
)
from connector.serde.codec import Framing
from connector.serde.record import Decoded, DecodeFailure, DecodeReason, SourceRecord
from connector.serde.registry import SchemaRegistry
from connector.serde.topic import TopicDecoder, TopicFormat, build_codec
from tests.serde_helpers import activity, catalog_with_evolved

CATALOG = SchemaCatalog.from_directory()


def _registry() -> SchemaRegistry:
    # confluent-kafka's own in-memory registry: fine for unit checks; integration tests use a
    # real registry process.
    return SchemaRegistry.from_url(f"mock://{uuid.uuid4().hex}")


def _codec(framing: Framing, registry: SchemaRegistry | None = None, writer=None):
    return build_codec(TopicFormat(framing, ACTIVITY_SCHEMA), "webinar.activity", CATALOG,
                       registry, writer)


def _record(value: bytes | None) -> SourceRecord:
    return SourceRecord("webinar.activity", 2, 41, b"web-1", value, [("trace", b"x")])


@pytest.mark.parametrize("framing", list(Framing))
def test_round_trip_keeps_union_record_names(framing: Framing) -> None:
    codec = _codec(framing, _registry())
    datum = activity()
    assert codec.decode(codec.encode(datum)) == datum


@pytest.mark.parametrize("name", ["Registered", "RegistrationCancelled", "Joined", "Left"])
def test_look_alike_union_branches_are_told_apart_by_name(name: str) -> None:
    bodies = {"Registered": {"source": None}, "RegistrationCancelled": {"reason": None},
              "Joined": {"sessionId": "s", "device": None}, "Left": {"sessionId": "s",
                                                                      "reason": None}}
    codec = _codec(Framing.RAW)
    decoded = codec.decode(codec.encode(activity(action=(f"webinar.platform.v1.{name}",
                                                         bodies[name]))))
    assert decoded["action"][0] == f"webinar.platform.v1.{name}"


def test_timestamps_stay_epoch_milliseconds() -> None:
    codec = _codec(Framing.RAW)
    assert codec.decode(codec.encode(activity()))["occurredAt"] == 1_767_261_600_000


def test_single_object_header_is_the_crc64_fingerprint() -> None:
    value = _codec(Framing.SINGLE_OBJECT).encode(activity())
    source = json.loads((CATALOG.reader(ACTIVITY_SCHEMA).path).read_text())  # type: ignore[union-attr]
    assert value[:2] == b"\xc3\x01"
    assert value[2:10] == crc64_fingerprint(source)


def test_crc64_fingerprint_matches_the_avro_spec_test_vector() -> None:
    # From the Avro specification's test suite: "int" has CRC-64-AVRO 0x7275d51a3f395c8f (LE).
    assert crc64_fingerprint("int").hex() == "8f5c393f1ad57572"


@pytest.mark.parametrize("framing", [Framing.SINGLE_OBJECT, Framing.CONFLUENT])
def test_newer_compatible_writer_schema_is_resolved(framing: Framing) -> None:
    catalog, evolved = catalog_with_evolved()
    registry = _registry()
    fmt = TopicFormat(framing, ACTIVITY_SCHEMA)
    writer = build_codec(fmt, "webinar.activity", catalog, registry, evolved)
    reader = build_codec(fmt, "webinar.activity", catalog, registry)
    value = writer.encode({**activity(), "channel": "linkedin"})
    assert reader.decode(value) == activity()  # the added field is dropped by resolution


def test_confluent_header_carries_the_registered_id() -> None:
    registry = _registry()
    value = _codec(Framing.CONFLUENT, registry).encode(activity())
    (schema_id,) = struct.unpack(">I", value[1:5])
    assert value[0] == 0 and registry.lookup(schema_id) is not None


def _failure(framing: Framing, value: bytes | None,
             registry: SchemaRegistry | None = None) -> DecodeFailure:
    result = TopicDecoder(_codec(framing, registry or _registry())).decode(_record(value))
    assert isinstance(result, DecodeFailure), result
    return result


def test_truncated_raw_record() -> None:
    good = _codec(Framing.RAW).encode(activity())
    assert _failure(Framing.RAW, good[:-3]).reason is DecodeReason.TRUNCATED


def test_trailing_bytes_after_a_complete_record() -> None:
    good = _codec(Framing.RAW).encode(activity())
    failure = _failure(Framing.RAW, good + b"\x00\x01")
    assert failure.reason is DecodeReason.TRAILING_BYTES and "2 bytes left" in failure.detail


@pytest.mark.parametrize("garbage", [b"\xff" * 30, b"\x01\x00\x00\x00", bytes(range(200, 256))])
def test_garbage_is_malformed_or_truncated_never_an_exception(garbage: bytes) -> None:
    failure = _failure(Framing.RAW, garbage)
    assert failure.reason in {DecodeReason.MALFORMED, DecodeReason.TRUNCATED,
                              DecodeReason.TRAILING_BYTES}
    assert failure.detail


def test_invalid_union_index_is_malformed() -> None:
    good = bytearray(_codec(Framing.RAW).encode(activity()))
    # the action union index is the last varint before the Left body (sessionId "s-1", null)
    body = _codec(Framing.RAW).encode(activity())
    left_body_len = len(b"\x06s-1\x00")
    good[len(body) - left_body_len - 1] = 0x7E  # zig-zag 63: no such branch
    assert _failure(Framing.RAW, bytes(good)).reason is DecodeReason.MALFORMED


def test_empty_and_null_values_are_distinct() -> None:
    assert _failure(Framing.RAW, b"").reason is DecodeReason.EMPTY_VALUE
    assert _failure(Framing.RAW, None).reason is DecodeReason.NULL_VALUE


def test_unknown_fingerprint() -> None:
    value = b"\xc3\x01" + b"\x00" * 8 + _codec(Framing.RAW).encode(activity())
    failure = _failure(Framing.SINGLE_OBJECT, value)
    assert failure.reason is DecodeReason.UNKNOWN_FINGERPRINT
    assert "0000000000000000" in failure.detail


def test_single_object_without_marker_is_bad_magic() -> None:
    assert _failure(Framing.SINGLE_OBJECT, b"\x00\x01abc").reason is DecodeReason.BAD_MAGIC


def test_unknown_schema_id() -> None:
    value = b"\x00" + struct.pack(">I", 424242) + _codec(Framing.RAW).encode(activity())
    failure = _failure(Framing.CONFLUENT, value)
    assert failure.reason is DecodeReason.UNKNOWN_SCHEMA_ID and "424242" in failure.detail


def test_confluent_without_magic_byte_is_bad_magic() -> None:
    assert _failure(Framing.CONFLUENT, b"\xc3\x01" + b"x" * 20).reason is DecodeReason.BAD_MAGIC


def test_short_headers_are_truncated() -> None:
    assert _failure(Framing.CONFLUENT, b"\x00\x00\x01").reason is DecodeReason.TRUNCATED
    assert _failure(Framing.SINGLE_OBJECT, b"\xc3\x01\x00").reason is DecodeReason.TRUNCATED


def test_incompatible_writer_is_reported() -> None:
    # A Webinar written where a WebinarActivity is expected: another record name entirely.
    registry = _registry()
    webinar_writer = CATALOG.reader(WEBINAR_SCHEMA)
    value = build_codec(TopicFormat(Framing.CONFLUENT, ACTIVITY_SCHEMA), "webinar.activity",
                        CATALOG, registry, webinar_writer).encode({
        "webinarId": "w", "accountId": "a", "title": "t", "organizer": "o", "status": "LIVE",
        "updatedAt": 1, "customProperties": {}})
    failure = _failure(Framing.CONFLUENT, value, registry)
    assert failure.reason is DecodeReason.INCOMPATIBLE_SCHEMA


def test_failure_keeps_the_raw_record_and_its_coordinates() -> None:
    failure = _failure(Framing.RAW, b"\xff\xff")
    assert failure.source.value == b"\xff\xff"
    assert failure.source.key == b"web-1"
    assert failure.source.headers == [("trace", b"x")]
    assert (failure.source.topic, failure.source.partition, failure.source.offset) == \
        ("webinar.activity", 2, 41)
    assert "webinar.activity[2]@41" in failure.describe()


def test_decoded_value_is_returned_as_a_value() -> None:
    value = _codec(Framing.RAW).encode(activity())
    result = TopicDecoder(_codec(Framing.RAW)).decode(_record(value))
    assert isinstance(result, Decoded) and result.value["activityId"] == "act-1"


def test_confluent_without_registry_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="schema registry"):
        build_codec(TopicFormat(Framing.CONFLUENT, ACTIVITY_SCHEMA), "t", CATALOG, None)


def test_unknown_reader_schema_names_what_exists() -> None:
    with pytest.raises(SchemaNotFoundError, match="WebinarActivity"):
        CATALOG.reader("webinar.platform.v1.Nope")


def test_two_readers_with_one_name_are_rejected() -> None:
    catalog = SchemaCatalog()
    catalog.add({"type": "record", "name": "X", "fields": []})
    with pytest.raises(SerdeError, match="two reader schemas"):
        catalog.add({"type": "record", "name": "X", "fields": [
            {"name": "a", "type": "int", "default": 0}]})


def test_registry_outage_raises_instead_of_dead_lettering() -> None:
    registry = SchemaRegistry.from_url("http://127.0.0.1:9")  # discard port: nothing listens
    value = b"\x00" + struct.pack(">I", 1) + b"\x00"
    decoder = TopicDecoder(_codec(Framing.CONFLUENT, registry))
    with pytest.raises(SerdeError, match=r"unreachable|failed"):
        decoder.decode(_record(value))
