"""Every framing through real topics on a real broker; bad records never stop a consumer."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from connector.serde.catalog import ACTIVITY_SCHEMA, SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.record import Decoded, DecodeFailure, DecodeReason, SourceRecord
from connector.serde.registry import SchemaRegistry
from connector.serde.topic import TopicDecoder, TopicFormat, build_codec
from tests.serde_helpers import activity, catalog_with_evolved

pytestmark = pytest.mark.integration


def _consume_all(consumer: Any, topic: str, count: int, decoder: TopicDecoder,
                 deadline_polls: int = 200) -> list[Decoded | DecodeFailure]:
    """Poll like a worker does: every message is decoded into a value, none raises."""
    consumer.subscribe([topic])
    results: list[Decoded | DecodeFailure] = []
    polls = 0
    while len(results) < count and polls < deadline_polls:
        polls += 1
        message = consumer.poll(0.25)
        if message is None or message.error():
            continue
        results.append(decoder.decode(SourceRecord.from_message(message)))
    return results


def _codec(framing: Framing, catalog: SchemaCatalog, registry: SchemaRegistry,
           writer: Any = None) -> Any:
    return build_codec(TopicFormat(framing, ACTIVITY_SCHEMA), "webinar.activity", catalog,
                       registry, writer)


@pytest.mark.parametrize("framing", list(Framing))
def test_each_framing_round_trips_through_a_real_topic(
        framing: Framing, topic_factory: Any, producer_factory: Any, consumer_factory: Any,
        schema_registry: SchemaRegistry) -> None:
    topic = topic_factory("activity")
    catalog = SchemaCatalog.from_directory()
    codec = _codec(framing, catalog, schema_registry)
    sent = [activity(activityId=f"a-{i}") for i in range(20)]
    producer = producer_factory()
    for datum in sent:
        producer.produce(topic, key=b"web-1", value=codec.encode(datum),
                         headers=[("traceparent", b"00-abc")])
    assert producer.flush(10) == 0
    results = _consume_all(consumer_factory(), topic, len(sent), TopicDecoder(codec))
    assert [r.value for r in results if isinstance(r, Decoded)] == sent
    assert all(r.source.headers == [("traceparent", b"00-abc")] for r in results)


@pytest.mark.parametrize("framing", [Framing.SINGLE_OBJECT, Framing.CONFLUENT])
def test_evolved_writer_schema_is_read_when_framed(
        framing: Framing, topic_factory: Any, producer_factory: Any, consumer_factory: Any,
        schema_registry: SchemaRegistry) -> None:
    topic = topic_factory("evolved")
    catalog, evolved = catalog_with_evolved()
    writer = _codec(framing, catalog, schema_registry, evolved)
    producer = producer_factory()
    producer.produce(topic, key=b"web-1", value=writer.encode({**activity(), "channel": "ads"}))
    assert producer.flush(10) == 0
    [result] = _consume_all(consumer_factory(), topic, 1,
                            TopicDecoder(_codec(framing, catalog, schema_registry)))
    assert isinstance(result, Decoded) and result.value == activity()


def test_bad_records_get_distinct_reasons_and_the_consumer_keeps_going(
        topic_factory: Any, producer_factory: Any, consumer_factory: Any,
        schema_registry: SchemaRegistry) -> None:
    catalog = SchemaCatalog.from_directory()
    single = _codec(Framing.SINGLE_OBJECT, catalog, schema_registry)
    confluent = _codec(Framing.CONFLUENT, catalog, schema_registry)
    good_so, good_cf = single.encode(activity()), confluent.encode(activity())
    body = _codec(Framing.RAW, catalog, schema_registry).encode(activity())
    cases = {  # framing -> [(value, expected reason or None for a good record)]
        Framing.SINGLE_OBJECT: [
            (b"\x13\x37garbage-bytes", DecodeReason.BAD_MAGIC),
            (good_so, None),
            (good_so[:-4], DecodeReason.TRUNCATED),
            (b"\xc3\x01" + b"\xee" * 8 + body, DecodeReason.UNKNOWN_FINGERPRINT),
            (good_so, None),
        ],
        Framing.CONFLUENT: [
            (b"\x00" + struct.pack(">I", 987_654) + body, DecodeReason.UNKNOWN_SCHEMA_ID),
            (good_cf, None),
            (good_cf[:8], DecodeReason.TRUNCATED),
            (good_cf, None),
        ],
    }
    for framing, rows in cases.items():
        topic = topic_factory("bad")
        producer = producer_factory()
        for value, _ in rows:
            producer.produce(topic, key=b"web-1", value=value)
        assert producer.flush(10) == 0
        codec = single if framing is Framing.SINGLE_OBJECT else confluent
        results = _consume_all(consumer_factory(), topic, len(rows), TopicDecoder(codec))
        got = [r.reason if isinstance(r, DecodeFailure) else None for r in results]
        assert got == [reason for _, reason in rows]
        offsets = [r.source.offset for r in results]
        assert offsets == list(range(len(rows)))


def test_a_raw_record_produced_by_kcat_is_decoded(tmp_path: Path, kafka_bootstrap: str,
                                                   topic_factory: Any,
                                                   consumer_factory: Any) -> None:
    assert shutil.which("kcat"), "kcat is missing: `make setup` installs it (Debian package kcat)"
    topic = topic_factory("kcat")
    catalog = SchemaCatalog.from_directory()
    codec = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), topic, catalog)
    datum = activity(activityId="from-kcat")
    payload = tmp_path / "record.avro"
    payload.write_bytes(codec.encode(datum))
    # With file arguments kcat sends each file as exactly one message (binary-safe).
    subprocess.run(["kcat", "-P", "-b", kafka_bootstrap, "-t", topic, "-k", "web-1",
                    str(payload)], check=True, timeout=60)
    [result] = _consume_all(consumer_factory(), topic, 1, TopicDecoder(codec))
    assert isinstance(result, Decoded)
    assert result.value == datum and result.source.key == b"web-1"
