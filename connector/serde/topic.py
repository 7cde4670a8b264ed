"""Per-topic serde: the configured framing + reader schema, decoding Kafka records into values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from connector.errors import ConfigError
from connector.serde.catalog import (
    ACTIVITY_SCHEMA,
    COMMAND_SCHEMA,
    WEBINAR_SCHEMA,
    CatalogEntry,
    SchemaCatalog,
)
from connector.serde.codec import (
    ConfluentCodec,
    Framing,
    RawCodec,
    RecordDecodeError,
    SingleObjectCodec,
    ValueDecoder,
)
from connector.serde.record import Decoded, DecodeFailure, DecodeReason, SourceRecord
from connector.serde.registry import SchemaRegistry
from connector.serde.settings import SerdeConfig, SerdeSettings


@dataclass(frozen=True)
class TopicFormat:
    """How one topic is framed, and its reader schema (full name in the catalog)."""

    framing: Framing
    schema: str


def build_codec(fmt: TopicFormat, topic: str, catalog: SchemaCatalog,
                registry: SchemaRegistry | None = None,
                writer: CatalogEntry | None = None) -> Any:
    """The codec for `topic` as configured; a missing registry for `confluent` is a ConfigError.

    `writer` selects another schema version to *write* with (and, for raw, to read with):
    produce-sample and the schema-evolution tests use it.
    """
    reader = catalog.reader(fmt.schema)
    if fmt.framing is Framing.RAW:
        return RawCodec(reader, writer)
    if fmt.framing is Framing.SINGLE_OBJECT:
        return SingleObjectCodec(catalog, reader, writer)
    if registry is None:
        raise ConfigError(f"topic {topic} uses framing 'confluent' but no schema registry URL is "
                          "configured (set CONNECTOR_SERDE__SCHEMA_REGISTRY_URL)")
    subject = f"{topic}-value"  # Confluent's default TopicNameStrategy
    return ConfluentCodec(reader, registry.lookup, partial(registry.register, subject), writer)


class TopicDecoder:
    """Decodes records of one topic; a bad record becomes a DecodeFailure value, never an error."""

    def __init__(self, codec: ValueDecoder):
        self._decode = codec.decode

    def decode(self, record: SourceRecord) -> Decoded | DecodeFailure:
        datum = self.decode_value(record)
        return datum if isinstance(datum, DecodeFailure) else Decoded(datum, record)

    def decode_value(self, record: SourceRecord) -> Any:
        """The datum alone, without the Decoded around it (a hot path's saving), or the
        DecodeFailure."""
        value = record.value
        if value is None:
            return DecodeFailure(DecodeReason.NULL_VALUE, "value is null (a tombstone)", record)
        try:
            return self._decode(value)
        except RecordDecodeError as exc:
            cause = type(exc.cause).__name__ if exc.cause is not None else None
            return DecodeFailure(exc.reason, exc.detail, record, cause)


# --------------------------------------------------------------------------- as configured


def topic_formats(settings: SerdeConfig) -> dict[str, TopicFormat]:
    """The configured format of each topic the connector reads, by topic name."""
    topics, serde = settings.topics, settings.serde
    return {
        topics.activity: TopicFormat(serde.activity_framing, ACTIVITY_SCHEMA),
        topics.webinars: TopicFormat(serde.webinars_framing, WEBINAR_SCHEMA),
        topics.commands: TopicFormat(serde.commands_framing, COMMAND_SCHEMA),
    }


def registry_from(serde: SerdeSettings) -> SchemaRegistry | None:
    """A registry client when a URL is configured (only the `confluent` framing needs one)."""
    url = serde.schema_registry_url
    return SchemaRegistry.from_url(url, serde.registry_config()) if url else None


@dataclass(frozen=True)
class TopicCodecs:
    """The codecs of the connector's topics as configured, sharing one catalog and registry."""

    formats: Mapping[str, TopicFormat]
    catalog: SchemaCatalog
    registry: SchemaRegistry | None = None

    @classmethod
    def from_settings(cls, settings: SerdeConfig) -> TopicCodecs:
        catalog = SchemaCatalog.from_directory(settings.serde.schemas_dir)
        return cls(topic_formats(settings), catalog, registry_from(settings.serde))

    def codec(self, topic: str, framing: Framing | None = None) -> Any:
        """The codec of a configured topic; `framing` overrides the configured one."""
        fmt = self.formats[topic]
        if framing is not None:
            fmt = TopicFormat(framing, fmt.schema)
        return build_codec(fmt, topic, self.catalog, self.registry)

    def decoder(self, topic: str) -> TopicDecoder:
        return TopicDecoder(self.codec(topic))
