"""Reading dead letters for people and scripts: counts by reason, status and exception, and each
record with its value decoded where the source topic's format allows (raw bytes where not).

Pure apart from reading the schema catalog; the Kafka reading is in connector.dlq.topic.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from connector.config import Settings
from connector.dlq.filters import failure_time_ms, format_ms
from connector.dlq.history import H_REDRIVE_ATTEMPT
from connector.dlq.record import DeadLetterRecord
from connector.errors import ConnectorError
from connector.serde.catalog import SchemaCatalog
from connector.serde.record import Decoded, SourceRecord
from connector.serde.registry import SchemaRegistry
from connector.serde.topic import TopicCodecs, TopicDecoder, TopicFormat, topic_formats

NONE = "(none)"


def dlq_source(dlq_topic: str, settings: Settings) -> str | None:
    """The source topic a dead-letter topic is named after (for records without headers)."""
    if dlq_topic == settings.topics.commands_dlq:
        return settings.topics.commands
    suffix = settings.topics.dlq_suffix
    return dlq_topic[: -len(suffix)] if suffix and dlq_topic.endswith(suffix) else None


# --------------------------------------------------------------------------- grouping


@dataclass
class TopicSummary:
    """Counts of one dead-letter topic's records."""

    topic: str
    records: int = 0
    pending: int = 0
    sources: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    by_exception: Counter[str] = field(default_factory=Counter)
    first_ms: int | None = None
    last_ms: int | None = None
    #: with an --account filter: records skipped because their value does not decode
    undecodable: int | None = None

    def add(self, record: DeadLetterRecord, *, redriven: bool = False) -> None:
        self.records += 1
        self.pending += 0 if redriven else 1
        self.sources[record.source_topic or NONE] += 1
        self.by_reason[record.reason or NONE] += 1
        self.by_status[record.http_status or NONE] += 1
        self.by_exception[record.exception_class or NONE] += 1
        when = failure_time_ms(record)
        if when is not None:
            self.first_ms = when if self.first_ms is None else min(self.first_ms, when)
            self.last_ms = when if self.last_ms is None else max(self.last_ms, when)

    def to_json(self) -> dict[str, Any]:
        filtered = {} if self.undecodable is None else {"skipped_undecodable": self.undecodable}
        return {
            "topic": self.topic,
            "records": self.records,
            "pending": self.pending,
            "redriven": self.records - self.pending,
            "sources": _sorted_counts(self.sources),
            "by_reason": _sorted_counts(self.by_reason),
            "by_status": _sorted_counts(self.by_status),
            "by_exception": _sorted_counts(self.by_exception),
            "first": format_ms(self.first_ms) if self.first_ms is not None else None,
            "last": format_ms(self.last_ms) if self.last_ms is not None else None,
            **filtered,
        }


def summarize(topic: str, records: list[DeadLetterRecord],
              redriven: set[tuple[int, int]] | None = None) -> TopicSummary:
    """Group `records` of one dead-letter topic; `redriven` holds (partition, offset) pairs."""
    summary = TopicSummary(topic)
    for record in records:
        summary.add(record, redriven=(record.partition, record.offset) in (redriven or set()))
    return summary


def _sorted_counts(counter: Counter[str]) -> dict[str, int]:
    """Most frequent first, then by name: stable output."""
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


# --------------------------------------------------------------------------- values


class ValueRenderer:
    """Decodes dead letters' values with their source topic's configured framing and schema.

    Codecs are built on first use per source topic; a topic that cannot have one (not a
    connector topic, `confluent` without a registry) renders as bytes with the reason.
    """

    def __init__(self, formats: dict[str, TopicFormat], catalog: SchemaCatalog,
                 registry: SchemaRegistry | None = None):
        self._codecs = TopicCodecs(formats, catalog, registry)
        self._decoders: dict[str, TopicDecoder | str] = {}

    @classmethod
    def from_settings(cls, settings: Settings,
                      registry: SchemaRegistry | None = None) -> ValueRenderer:
        return cls(topic_formats(settings), SchemaCatalog.from_directory(
            settings.serde.schemas_dir), registry)

    def _decoder(self, topic: str) -> TopicDecoder | str:
        if topic not in self._decoders:
            if topic not in self._codecs.formats:
                self._decoders[topic] = f"no schema is configured for topic {topic}"
            else:
                try:
                    self._decoders[topic] = self._codecs.decoder(topic)
                except ConnectorError as exc:
                    self._decoders[topic] = f"cannot decode {topic}: {exc}"
        return self._decoders[topic]

    def decode(self, record: DeadLetterRecord, source_topic: str | None) -> Decoded | str:
        """The value decoded, or why it cannot be (text). Raises ConnectorError when decoding
        needs a service that did not answer (the schema registry)."""
        if record.value is None:
            return "value is null (a tombstone)"
        if source_topic is None:
            return "the source topic is unknown (no __connect.errors.topic header)"
        decoder = self._decoder(source_topic)
        if isinstance(decoder, str):
            return decoder
        source = SourceRecord(source_topic, record.partition, record.offset, record.key,
                              record.value)
        result = decoder.decode(source)
        if isinstance(result, Decoded):
            return result
        return f"{result.reason.value}: {result.detail}"

    def render(self, record: DeadLetterRecord, source_topic: str | None) -> dict[str, Any] | None:
        """The value as JSON-able data: decoded, or its bytes with why they did not decode."""
        if record.value is None:
            return None
        fmt = self._codecs.formats.get(source_topic) if source_topic else None
        described: dict[str, Any] = {}
        if fmt is not None:
            described = {"framing": fmt.framing.value, "schema": fmt.schema}
        try:
            result = self.decode(record, source_topic)
        except ConnectorError as exc:  # e.g. the schema registry did not answer
            result = str(exc)
        if isinstance(result, Decoded):
            return {**described, "decoded": jsonable(result.value)}
        return {**described, "error": result, **raw_bytes(record.value)}


def raw_bytes(value: bytes) -> dict[str, Any]:
    return {"size": len(value), "hex": value.hex(),
            "base64": base64.b64encode(value).decode("ascii")}


def jsonable(datum: Any) -> Any:
    """An Avro datum as JSON data: a named union branch `(name, value)` becomes `{name: value}`
    (Avro's JSON encoding), bytes become `{"base64": ...}`."""
    if isinstance(datum, dict):
        return {str(k): jsonable(v) for k, v in datum.items()}
    if isinstance(datum, tuple) and len(datum) == 2 and isinstance(datum[0], str):
        return {datum[0]: jsonable(datum[1])}
    if isinstance(datum, list | tuple):
        return [jsonable(v) for v in datum]
    if isinstance(datum, bytes):
        return {"base64": base64.b64encode(datum).decode("ascii")}
    if isinstance(datum, dt.datetime | dt.date | dt.time):
        return datum.isoformat()
    if isinstance(datum, decimal.Decimal | uuid.UUID):
        return str(datum)
    return datum


# --------------------------------------------------------------------------- records


def header_json(name: str, value: bytes | None) -> dict[str, Any]:
    """One header: text when it is UTF-8, base64 when not."""
    if value is None:
        return {"name": name, "value": None}
    try:
        return {"name": name, "value": value.decode("utf-8")}
    except UnicodeDecodeError:
        return {"name": name, "base64": base64.b64encode(value).decode("ascii")}


def record_json(record: DeadLetterRecord, value: dict[str, Any] | None, *,
                source_topic: str | None, redriven: bool) -> dict[str, Any]:
    """Everything about one dead letter, as one JSON object."""
    headers = record.header_map
    when = failure_time_ms(record)
    position = record.source_position
    out: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "time": format_ms(when) if when is not None else None,
        "time_ms": when,
        "key": record.key_text,
    }
    if record.key is not None and record.key_text is None:
        out["key_base64"] = base64.b64encode(record.key).decode("ascii")
    out.update({
        "reason": record.reason,
        "status": _int_or_none(record.http_status),
        "exception": record.exception_class,
        "source": {"topic": source_topic,
                   "partition": position[0] if position else None,
                   "offset": position[1] if position else None},
        "redrive_attempts": _int_or_none(headers.get(H_REDRIVE_ATTEMPT)) or 0,
        "redriven": redriven,
        "value": value,
        "headers": [header_json(name, raw) for name, raw in record.headers],
    })
    return out


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
