"""Against a real Confluent-API-compatible schema registry (Apicurio, started on loopback).

Set SCHEMA_REGISTRY_URL to use an already-running registry instead; every test uses its own
subject names, so a shared registry is fine.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

pytestmark = pytest.mark.integration

SCHEMA_V1: dict[str, Any] = {
    "type": "record",
    "name": "WebinarRegistration",
    "namespace": "test.registry",
    "fields": [
        {"name": "event_id", "type": "string"},
        {"name": "email", "type": "string"},
    ],
}
# Backward compatible with v1: the added field has a default.
SCHEMA_V2: dict[str, Any] = {
    **SCHEMA_V1,
    "fields": [*SCHEMA_V1["fields"], {"name": "attended", "type": "boolean", "default": False}],
}
# Not backward compatible with v2: v2 data has no value for a new field without a default.
SCHEMA_V3_BREAKING: dict[str, Any] = {
    **SCHEMA_V2,
    "fields": [*SCHEMA_V2["fields"], {"name": "minutes", "type": "int"}],
}


@pytest.fixture
def client(schema_registry_url: str) -> Iterator[SchemaRegistryClient]:
    registry_client = SchemaRegistryClient({"url": schema_registry_url})
    yield registry_client
    registry_client.close()


@pytest.fixture
def topic() -> str:
    return f"registry-test-{uuid.uuid4().hex[:12]}"


def _avro(schema: dict[str, Any]) -> Schema:
    return Schema(json.dumps(schema), "AVRO")


def _parsed(schema: Schema) -> Any:
    assert schema.schema_str is not None
    return json.loads(schema.schema_str)


def _lookup_only_serializer(client: SchemaRegistryClient, schema: dict[str, Any]) -> AvroSerializer:
    # Only looks the schema up: a schema missing from the subject fails instead of registering.
    return AvroSerializer(client, json.dumps(schema), conf={"auto.register.schemas": False})


def _value_subject(topic: str) -> str:
    return f"{topic}-value"  # TopicNameStrategy, what AvroSerializer uses by default


def test_registers_and_fetches_schema_by_id(client: SchemaRegistryClient, topic: str) -> None:
    subject = _value_subject(topic)

    schema_id = client.register_schema(subject, _avro(SCHEMA_V1))
    fetched = client.get_schema(schema_id)

    assert isinstance(schema_id, int)
    assert schema_id > 0
    assert fetched.schema_type == "AVRO"
    assert _parsed(fetched) == SCHEMA_V1
    # Registering the same schema again is idempotent: same id, no new version.
    assert client.register_schema(subject, _avro(SCHEMA_V1)) == schema_id
    registered = client.lookup_schema(subject, _avro(SCHEMA_V1))
    assert (registered.schema_id, registered.version) == (schema_id, 1)
    assert client.get_versions(subject) == [1]


def test_evolves_subject_with_backward_compatible_version(
    client: SchemaRegistryClient, topic: str
) -> None:
    subject = _value_subject(topic)
    client.set_compatibility(subject_name=subject, level="BACKWARD")
    v1_id = client.register_schema(subject, _avro(SCHEMA_V1))

    assert client.get_compatibility(subject) == "BACKWARD"
    assert client.test_compatibility(subject, _avro(SCHEMA_V2)) is True
    v2_id = client.register_schema(subject, _avro(SCHEMA_V2))

    assert v2_id != v1_id
    assert client.get_versions(subject) == [1, 2]
    latest = client.get_latest_version(subject)
    assert (latest.version, latest.schema_id) == (2, v2_id)
    assert _parsed(latest.schema) == SCHEMA_V2
    assert _parsed(client.get_version(subject, 1).schema) == SCHEMA_V1


def test_rejects_incompatible_version(client: SchemaRegistryClient, topic: str) -> None:
    subject = _value_subject(topic)
    client.set_compatibility(subject_name=subject, level="BACKWARD")
    client.register_schema(subject, _avro(SCHEMA_V1))
    client.register_schema(subject, _avro(SCHEMA_V2))

    assert client.test_compatibility(subject, _avro(SCHEMA_V3_BREAKING)) is False
    with pytest.raises(SchemaRegistryError) as excinfo:
        client.register_schema(subject, _avro(SCHEMA_V3_BREAKING))

    assert excinfo.value.http_status_code == 409
    assert client.get_versions(subject) == [1, 2]


def test_avro_round_trip_in_confluent_wire_format(client: SchemaRegistryClient, topic: str) -> None:
    subject = _value_subject(topic)
    client.set_compatibility(subject_name=subject, level="BACKWARD")
    client.register_schema(subject, _avro(SCHEMA_V1))
    v2_id = client.register_schema(subject, _avro(SCHEMA_V2))
    ctx = SerializationContext(topic, MessageField.VALUE)
    record = {"event_id": "evt-42", "email": "ada@example.com", "attended": True}
    serialize_v2 = _lookup_only_serializer(client, SCHEMA_V2)

    framed = serialize_v2(record, ctx)

    assert framed is not None
    assert framed[0] == 0
    assert int.from_bytes(framed[1:5], "big") == v2_id
    body = fastavro.schemaless_reader(io.BytesIO(framed[5:]), fastavro.parse_schema(SCHEMA_V2))
    assert body == record
    assert AvroDeserializer(client)(framed, ctx) == record


def test_reader_schema_resolves_older_writer_with_defaults(
    client: SchemaRegistryClient, topic: str
) -> None:
    subject = _value_subject(topic)
    client.set_compatibility(subject_name=subject, level="BACKWARD")
    v1_id = client.register_schema(subject, _avro(SCHEMA_V1))
    client.register_schema(subject, _avro(SCHEMA_V2))
    ctx = SerializationContext(topic, MessageField.VALUE)
    serialize_v1 = _lookup_only_serializer(client, SCHEMA_V1)
    old_record = {"event_id": "evt-7", "email": "grace@example.com"}

    framed = serialize_v1(old_record, ctx)
    decoded = AvroDeserializer(client, json.dumps(SCHEMA_V2))(framed, ctx)

    assert framed is not None
    assert int.from_bytes(framed[1:5], "big") == v1_id
    assert decoded == {**old_record, "attended": False}
