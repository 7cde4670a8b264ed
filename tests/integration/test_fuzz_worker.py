"""Hostile input through the real normalizer worker: it keeps running, and the dead-letter topic
holds exactly the records the rules reject, each with its reason."""

from __future__ import annotations

import random
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from connector.dlq.envelope import H_OFFSET, H_REASON, header_map
from connector.kafka.reader import read_all
from connector.normalize.normalizer import AttendanceNormalizer
from connector.runtime.assemble import rules_from, run_normalizer
from connector.serde.catalog import WEBINAR_SCHEMA
from connector.serde.codec import Framing
from connector.serde.record import DecodeFailure, SourceRecord
from connector.serde.topic import TopicFormat, build_codec
from tests.pipeline_helpers import CATALOG, WorkerThread, pipeline_env, settings_for, wait_for
from tests.serde_helpers import activity
from tests.unit.test_fuzz_normalizer import CODEC, DECODER

pytestmark = pytest.mark.integration

HOSTILE = ["", "\x00", "not-an-email", "a@@b.c", "ADA@EXAMPLE.COM ", "名前@例え.jp",
           "\u202eevil@example.com", "x" * 3000 + "@example.com", None]
WEBINAR = {"webinarId": "w1", "accountId": "acct", "title": "T", "organizer": "O",
           "eventType": None, "description": None, "url": None,
           "scheduledStart": 1_767_261_600_000, "scheduledEnd": 1_767_265_200_000,
           "status": "LIVE", "actualStart": None, "actualEnd": None, "updatedAt": 1,
           "customProperties": {}}


def _values(rng: random.Random, count: int) -> list[bytes]:
    values = []
    for n in range(count):
        kind = rng.choice(["random", "mutated", "hostile", "good"])
        if kind == "random":
            values.append(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80))))
            continue
        participant = {"participantId": "p", "email": rng.choice(HOSTILE), "firstName": None,
                       "lastName": None, "company": None,
                       "hubspotContactId": rng.choice([None, None, 0, -1, 2**63 - 1, 7])}
        at = rng.choice([1_767_261_600_000 + n, 2**63 - 1, -(2**63), 0])
        datum = activity(activityId=f"f{n}", webinarId="w1", participant=participant,
                         occurredAt=at if kind == "hostile" else 1_767_261_600_000 + n)
        value = bytearray(CODEC.encode(datum))
        if kind == "mutated":
            for _ in range(rng.randint(1, 3)):
                value[rng.randrange(len(value))] ^= rng.randint(1, 255)
        values.append(bytes(value))
    return values


def _expected_dead_letters(values: list[bytes], settings: Any) -> set[int]:
    """Offsets the pure path rejects (decode failures and rule rejections)."""
    normalizer = AttendanceNormalizer({"w1": WEBINAR}.get, rules_from(settings))
    rejected = set()
    for offset, value in enumerate(values):
        source = SourceRecord("t", 0, offset, b"w1", value, [])
        result = DECODER.decode(source)
        if isinstance(result, DecodeFailure) or normalizer.on_activity(result.value,
                                                                       source).rejections:
            rejected.add(offset)
    return rejected


def test_hostile_records_are_dead_lettered_and_the_worker_keeps_going(
        kafka_bootstrap: str, kafka_admin: AdminClient) -> None:
    settings = settings_for(pipeline_env(kafka_bootstrap))
    for topic, config in ((settings.topics.activity, {}),
                          (settings.topics.webinars, {"cleanup.policy": "compact"})):
        kafka_admin.create_topics([NewTopic(topic, 1, 1, config=config)])[topic].result(30)
    values = _values(random.Random(99), 400)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    encoded = build_codec(TopicFormat(Framing.RAW, WEBINAR_SCHEMA), "w", CATALOG).encode(WEBINAR)
    producer.produce(settings.topics.webinars, encoded, b"w1")
    for value in values:
        producer.produce(settings.topics.activity, value, b"w1")
    assert producer.flush(30) == 0
    expected = _expected_dead_letters(values, settings)
    assert 0 < len(expected) < len(values)
    dlq = settings.topics.dlq_for(settings.topics.activity)
    worker = WorkerThread(run_normalizer, settings)
    try:
        wait_for(lambda: len(read_all({"bootstrap.servers": kafka_bootstrap}, dlq, 10))
                 >= len(expected), 90, "the dead letters")
    finally:
        worker.join()  # raises if the worker died on any record
    letters = read_all({"bootstrap.servers": kafka_bootstrap}, dlq, 10)
    offsets = sorted(int(header_map(m.headers())[H_OFFSET]) for m in letters)
    assert offsets == sorted(expected)
    assert all(header_map(m.headers())[H_REASON] for m in letters)
    assert all(m.value() == values[int(header_map(m.headers())[H_OFFSET])] for m in letters)
