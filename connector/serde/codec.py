"""Avro value codecs for the three framings of the platform contract.

- raw:            schemaless Avro binary of the topic's configured writer schema
- single-object:  0xC3 0x01, 8-byte little-endian CRC-64-AVRO fingerprint, body
- confluent:      0x00, 4-byte big-endian Schema Registry id, body

The framings cannot be told apart from the bytes (a raw record may start with 0x00 or 0xC3), so the
framing is configured per topic. A decoder's `decode` raises `RecordDecodeError` (carrying a
`DecodeReason`); `TopicDecoder` in connector.serde.topic turns that into a value.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from enum import StrEnum
from io import BytesIO
from typing import Any, Protocol

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from connector.errors import SerdeError
from connector.serde.catalog import (
    CatalogEntry,
    SchemaCatalog,
    crc64_fingerprint,
    parse_for_decoding,
)
from connector.serde.compiled import Reader, Writer, compile_reader, compile_writer
from connector.serde.record import DecodeReason

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_FP_END = len(SINGLE_OBJECT_MAGIC) + 8
_ID_END = len(CONFLUENT_MAGIC) + 4


class Framing(StrEnum):
    """How a topic's values are framed on the wire."""

    RAW = "raw"
    SINGLE_OBJECT = "single-object"
    CONFLUENT = "confluent"


class RecordDecodeError(Exception):
    """One value could not be decoded (internal: surfaced to callers as a DecodeFailure)."""

    def __init__(self, reason: DecodeReason, detail: str, cause: BaseException | None = None):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.cause = cause


class ValueDecoder(Protocol):
    """Turns one framed value into an Avro datum or raises RecordDecodeError."""

    def decode(self, value: bytes) -> Any: ...


class ValueEncoder(Protocol):
    """Turns an Avro datum into framed bytes."""

    def encode(self, datum: Any) -> bytes: ...


_MALFORMED = (IndexError, UnicodeDecodeError, ValueError, KeyError, TypeError, OverflowError,
              MemoryError, StopIteration)


def read_body(body: bytes, writer: Any, reader: Any | None, start: int = 0,
              fast: Reader | None = None) -> Any:
    """Decode one Avro body, classifying every way it can be wrong.

    `fast` (connector.serde.compiled) reads well-formed bodies of the writer schema; whatever it
    gives up on is read again by fastavro, whose verdict (value or classified error) stands.
    """
    if fast is not None:
        try:
            datum, end = fast(body, start)
        except Exception:  # anything unusual is for fastavro to judge
            pass
        else:
            if end == len(body):
                return datum
    buffer = BytesIO(body)
    if start:
        buffer.seek(start)
    try:
        datum = schemaless_reader(buffer, writer, reader, True)  # return_record_name
    except (EOFError, SchemaResolutionError, *_MALFORMED) as exc:
        raise _classified(exc, len(body)) from exc
    if buffer.tell() != len(body):
        remaining = len(body) - buffer.tell()
        detail = f"{remaining} bytes left after a complete record of {buffer.tell() - start} bytes"
        raise RecordDecodeError(DecodeReason.TRAILING_BYTES, detail)
    return datum


def _classified(exc: BaseException, size: int) -> RecordDecodeError:
    if isinstance(exc, EOFError):
        # fastavro reports a negative length ("Expected -3 bytes") as EOF: that is malformed.
        if "Expected -" in str(exc):
            return RecordDecodeError(DecodeReason.MALFORMED, f"negative length: {exc}", exc)
        return RecordDecodeError(DecodeReason.TRUNCATED,
                                 f"value ends early ({size} bytes): {exc or 'no more bytes'}", exc)
    if isinstance(exc, SchemaResolutionError):
        return RecordDecodeError(DecodeReason.INCOMPATIBLE_SCHEMA, str(exc), exc)
    return RecordDecodeError(DecodeReason.MALFORMED, f"{type(exc).__name__}: {exc}", exc)


def write_body(datum: Any, writer: Any, fast: Writer | None = None) -> bytes:
    """Encode one Avro body with a fastavro-parsed writer schema.

    `fast` (connector.serde.compiled) writes the values it knows byte for byte as fastavro would;
    anything else goes to fastavro, which also raises its own errors for invalid data.
    """
    if fast is not None:
        try:
            return fast(datum)
        except Exception:  # fastavro writes it, or says why not
            pass
    buffer = BytesIO()
    schemaless_writer(buffer, writer, datum)
    return buffer.getvalue()


def _require_value(value: bytes) -> None:
    if not value:
        raise RecordDecodeError(DecodeReason.EMPTY_VALUE, "value is empty (0 bytes)")


class RawCodec:
    """Schemaless Avro: the writer schema is the one configured for the topic."""

    def __init__(self, reader: CatalogEntry, writer: CatalogEntry | None = None):
        self._writer = (writer or reader).parsed
        self._reader = None if writer is None or writer is reader else reader.parsed
        self._fast_read = compile_reader(self._writer) if self._reader is None else None
        self._fast_write = compile_writer(self._writer)

    def decode(self, value: bytes) -> Any:
        if not value:
            raise RecordDecodeError(DecodeReason.EMPTY_VALUE, "value is empty (0 bytes)")
        return read_body(value, self._writer, self._reader, 0, self._fast_read)

    def encode(self, datum: Any) -> bytes:
        return write_body(datum, self._writer, self._fast_write)


class SingleObjectCodec:
    """Avro single-object encoding; the fingerprint selects the writer schema from the catalog."""

    def __init__(self, catalog: SchemaCatalog, reader: CatalogEntry,
                 writer: CatalogEntry | None = None):
        self._catalog = catalog
        self._reader = reader
        self._writer = writer or reader
        self._prefix = SINGLE_OBJECT_MAGIC + self._writer.fingerprint
        self._fast_write = compile_writer(self._writer.parsed)
        #: fingerprint -> (writer schema, reader schema or None, compiled reader or None)
        self._resolved: dict[bytes, tuple[Any, Any | None, Reader | None]] = {}

    def decode(self, value: bytes) -> Any:
        _require_value(value)
        if value[:2] != SINGLE_OBJECT_MAGIC:
            raise RecordDecodeError(
                DecodeReason.BAD_MAGIC,
                f"expected single-object marker c301, found {value[:2].hex() or 'nothing'}",
            )
        if len(value) < _FP_END:
            raise RecordDecodeError(DecodeReason.TRUNCATED,
                                    f"single-object header needs 10 bytes, value has {len(value)}")
        fp = value[2:_FP_END]
        schemas = self._resolved.get(fp) or self._resolve(fp)
        return read_body(value, schemas[0], schemas[1], _FP_END, schemas[2])

    def _resolve(self, fp: bytes) -> tuple[Any, Any | None, Reader | None]:
        entry = self._catalog.by_fingerprint(fp)
        if entry is None:
            raise RecordDecodeError(
                DecodeReason.UNKNOWN_FINGERPRINT,
                f"no schema with CRC-64-AVRO fingerprint {fp.hex()} in the schema catalog",
            )
        same = entry is self._reader
        resolved = (entry.parsed, None if same else self._reader.parsed,
                    compile_reader(entry.parsed) if same else None)
        self._resolved[fp] = resolved
        return resolved

    def encode(self, datum: Any) -> bytes:
        return self._prefix + write_body(datum, self._writer.parsed, self._fast_write)


SchemaLookup = Callable[[int], str | None]
"""Returns the writer schema JSON for a registry id, or None when the registry has no such id."""


class ConfluentCodec:
    """Confluent Schema Registry framing; ids are resolved through the registry (cached)."""

    def __init__(self, reader: CatalogEntry, lookup: SchemaLookup,
                 register: Callable[[str], int] | None = None,
                 writer: CatalogEntry | None = None):
        self._reader = reader
        self._lookup = lookup
        self._register = register
        self._writer = writer or reader
        self._writer_id: int | None = None
        self._fast_write = compile_writer(self._writer.parsed)
        #: schema id -> (writer schema, reader schema or None, compiled reader or None)
        self._resolved: dict[int, tuple[Any, Any | None, Reader | None]] = {}

    def decode(self, value: bytes) -> Any:
        _require_value(value)
        if value[:1] != CONFLUENT_MAGIC:
            raise RecordDecodeError(DecodeReason.BAD_MAGIC,
                                    f"expected Confluent magic byte 00, found {value[:1].hex()}")
        if len(value) < _ID_END:
            raise RecordDecodeError(DecodeReason.TRUNCATED,
                                    f"Confluent header needs 5 bytes, value has {len(value)}")
        (schema_id,) = struct.unpack_from(">I", value, 1)
        schemas = self._resolved.get(schema_id) or self._resolve(schema_id)
        return read_body(value, schemas[0], schemas[1], _ID_END, schemas[2])

    def _resolve(self, schema_id: int) -> tuple[Any, Any | None, Reader | None]:
        schema_str = self._lookup(schema_id)
        if schema_str is None:
            raise RecordDecodeError(DecodeReason.UNKNOWN_SCHEMA_ID,
                                    f"schema id {schema_id} is not known to the schema registry")
        try:
            source = json.loads(schema_str)
            same = crc64_fingerprint(source) == self._reader.fingerprint
            writer = self._reader.parsed if same else parse_for_decoding(source)
        except Exception as exc:  # a registry may hold schemas fastavro rejects
            raise RecordDecodeError(DecodeReason.INCOMPATIBLE_SCHEMA,
                                    f"schema id {schema_id} is not a usable Avro schema: {exc}",
                                    exc) from exc
        # Resolution is only paid for when the writer really is another version.
        resolved = (writer, None if same else self._reader.parsed,
                    compile_reader(writer) if same else None)
        self._resolved[schema_id] = resolved
        return resolved

    def encode(self, datum: Any) -> bytes:
        if self._writer_id is None:
            if self._register is None:
                raise SerdeError("this Confluent codec cannot write: no registry to register with")
            self._writer_id = self._register(json.dumps(self._writer.source))
        return CONFLUENT_MAGIC + struct.pack(">I", self._writer_id) + write_body(
            datum, self._writer.parsed, self._fast_write
        )
