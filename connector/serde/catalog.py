"""The schema catalog: every .avsc under `schemas/`, by full name and by CRC-64-AVRO fingerprint.

Layout of the schema folder:

    schemas/platform/*.avsc            the platform's reader schemas (byte-identical copies)
    schemas/platform/writers/*.avsc    other versions the platform may write with (writer-only)
    schemas/connector/*.avsc           the connector's own schemas (commands, ...)

A file directly in an owner folder is the *reader* schema for its full name; files under a
`writers/` sub-folder are only used to decode (single-object fingerprints select them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from connector.errors import SchemaNotFoundError, SerdeError

#: The schema folder shipped in the repository (next to the package).
DEFAULT_SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"

WRITERS_FOLDER = "writers"

#: Reader schemas of the connector's topics: the platform's two and the connector's commands.
ACTIVITY_SCHEMA = "webinar.platform.v1.WebinarActivity"
WEBINAR_SCHEMA = "webinar.platform.v1.Webinar"
COMMAND_SCHEMA = "connector.v1.HubSpotCommand"


@dataclass(frozen=True)
class CatalogEntry:
    """One schema version: its JSON, the fastavro-parsed form used for decoding, and identity."""

    full_name: str
    source: dict[str, Any] | list[Any]
    parsed: Any
    fingerprint: bytes
    path: Path | None
    is_reader: bool


def strip_timestamp_logical_types(schema: Any) -> Any:
    """Return `schema` without timestamp logicalType annotations.

    fastavro would turn timestamp-millis into datetime objects; the connector works on epoch
    milliseconds throughout (cheaper to decode, exact to compare, what HubSpot's API takes).
    Parsing canonical form ignores logicalType, so fingerprints are unaffected.
    """
    if isinstance(schema, dict):
        return {
            key: strip_timestamp_logical_types(value)
            for key, value in schema.items()
            if not (key == "logicalType" and str(value).startswith("timestamp-"))
        }
    if isinstance(schema, list):
        return [strip_timestamp_logical_types(item) for item in schema]
    return schema


def parse_for_decoding(source: Any) -> Any:
    """Parse a schema (JSON object) the way every connector codec uses it."""
    # The write hint marks the result as parsed, so fastavro does not parse it again per record.
    return parse_schema(strip_timestamp_logical_types(source))


def crc64_fingerprint(source: Any) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint of a schema's parsing canonical form (little-endian)."""
    canonical = to_parsing_canonical_form(parse_schema(source, _write_hint=False))
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def _full_name(source: Any) -> str:
    if not isinstance(source, dict) or "name" not in source:
        raise SerdeError("a catalog schema must be a named type (record, enum or fixed)")
    name = str(source["name"])
    namespace = source.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


class SchemaCatalog:
    """Schemas by full name (reader) and by fingerprint (any known writer version)."""

    def __init__(self) -> None:
        self._readers: dict[str, CatalogEntry] = {}
        self._by_fingerprint: dict[bytes, CatalogEntry] = {}

    @classmethod
    def from_directory(cls, root: Path = DEFAULT_SCHEMAS_DIR) -> SchemaCatalog:
        """Load every .avsc below `root` (see the module docstring for the layout)."""
        if not root.is_dir():
            raise SerdeError(f"schema folder {root} does not exist")
        catalog = cls()
        for path in sorted(root.rglob("*.avsc")):
            is_reader = WRITERS_FOLDER not in path.relative_to(root).parts
            try:
                source = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise SerdeError(f"cannot read schema {path}: {exc}") from exc
            catalog.add(source, path=path, is_reader=is_reader)
        return catalog

    def add(self, source: Any, *, path: Path | None = None, is_reader: bool = True) -> CatalogEntry:
        """Register one schema version; a second reader for the same full name is an error."""
        full_name = _full_name(source)
        try:
            entry = CatalogEntry(
                full_name=full_name,
                source=source,
                parsed=parse_for_decoding(source),
                fingerprint=crc64_fingerprint(source),
                path=path,
                is_reader=is_reader,
            )
        except Exception as exc:  # fastavro raises a variety of types for bad schemas
            where = f" in {path}" if path else ""
            raise SerdeError(f"invalid Avro schema {full_name}{where}: {exc}") from exc
        if is_reader:
            if full_name in self._readers:
                raise SerdeError(f"two reader schemas named {full_name}: {path} and "
                                 f"{self._readers[full_name].path}")
            self._readers[full_name] = entry
        self._by_fingerprint.setdefault(entry.fingerprint, entry)
        return entry

    def entries(self) -> list[CatalogEntry]:
        """Every distinct schema version, readers and writers, by full name then fingerprint."""
        return sorted(self._by_fingerprint.values(),
                      key=lambda entry: (entry.full_name, entry.fingerprint))

    def reader(self, full_name: str) -> CatalogEntry:
        """The reader schema for `full_name`; raises SchemaNotFoundError naming what exists."""
        try:
            return self._readers[full_name]
        except KeyError:
            known = ", ".join(sorted(self._readers)) or "none"
            raise SchemaNotFoundError(
                f"no schema named {full_name} in the catalog (known: {known})"
            ) from None

    def by_fingerprint(self, fp: bytes) -> CatalogEntry | None:
        """The schema version with this CRC-64-AVRO fingerprint, or None when unknown."""
        return self._by_fingerprint.get(fp)

    @property
    def reader_names(self) -> list[str]:
        """Full names of every reader schema, sorted."""
        return sorted(self._readers)
