"""Avro serde: the schema catalog and the raw / single-object / Confluent framings."""

from connector.serde.catalog import (
    ACTIVITY_SCHEMA,
    COMMAND_SCHEMA,
    DEFAULT_SCHEMAS_DIR,
    WEBINAR_SCHEMA,
    CatalogEntry,
    SchemaCatalog,
)
from connector.serde.codec import Framing, RecordDecodeError
from connector.serde.record import Decoded, DecodeFailure, DecodeReason, Headers, SourceRecord
from connector.serde.registry import SchemaRegistry
from connector.serde.topic import (
    TopicCodecs,
    TopicDecoder,
    TopicFormat,
    build_codec,
    registry_from,
    topic_formats,
)

__all__ = [
    "ACTIVITY_SCHEMA",
    "COMMAND_SCHEMA",
    "DEFAULT_SCHEMAS_DIR",
    "WEBINAR_SCHEMA",
    "CatalogEntry",
    "DecodeFailure",
    "DecodeReason",
    "Decoded",
    "Framing",
    "Headers",
    "RecordDecodeError",
    "SchemaCatalog",
    "SchemaRegistry",
    "SourceRecord",
    "TopicCodecs",
    "TopicDecoder",
    "TopicFormat",
    "build_codec",
    "registry_from",
    "topic_formats",
]
