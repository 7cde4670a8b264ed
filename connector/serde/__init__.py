"""Avro serde: the schema catalog and the raw / single-object / Confluent framings."""

from connector.serde.catalog import DEFAULT_SCHEMAS_DIR, CatalogEntry, SchemaCatalog
from connector.serde.codec import Framing, RecordDecodeError
from connector.serde.record import Decoded, DecodeFailure, DecodeReason, Headers, SourceRecord
from connector.serde.registry import SchemaRegistry
from connector.serde.topic import TopicDecoder, TopicFormat, build_codec

ACTIVITY_SCHEMA = "webinar.platform.v1.WebinarActivity"
WEBINAR_SCHEMA = "webinar.platform.v1.Webinar"

__all__ = [
    "ACTIVITY_SCHEMA",
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
    "TopicDecoder",
    "TopicFormat",
    "build_codec",
]
