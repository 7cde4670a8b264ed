"""Confluent Schema Registry access through confluent-kafka's own client (cached, thread-safe,
built by `connector.kafka.schema_registry`)."""

from __future__ import annotations

import logging
from typing import Any

from connector.errors import SerdeError
from connector.kafka.schema_registry import Schema, SchemaRegistryError, registry_client

log = logging.getLogger(__name__)

_NOT_FOUND = 404


class SchemaRegistry:
    """Looks up writer schemas by id and registers the connector's writer schemas.

    An unknown id is a per-record problem (returns None); an unreachable or failing registry is
    an infrastructure problem (raises SerdeError) so the consumer stops instead of dead-lettering
    every record while the registry is down.
    """

    def __init__(self, client: Any):
        self._client = client

    @classmethod
    def from_url(cls, url: str, extra: dict[str, str] | None = None) -> SchemaRegistry:
        """Create a client for `url` (mock://... selects confluent-kafka's in-memory registry)."""
        return cls(registry_client(url, extra))

    def close(self) -> None:
        """Release the client's HTTP connections."""
        close = getattr(self._client, "close", None)
        if close is not None:
            close()

    def lookup(self, schema_id: int) -> str | None:
        """The schema JSON registered under `schema_id`, or None if the registry has no such id."""
        try:
            schema = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == _NOT_FOUND:
                return None
            raise SerdeError(f"schema registry failed to return schema id {schema_id}: "
                             f"{exc.error_message} (HTTP {exc.http_status_code})") from exc
        except Exception as exc:  # connection errors surface as requests/httpx exceptions
            raise SerdeError(f"schema registry unreachable while resolving id {schema_id}: "
                             f"{exc}") from exc
        return str(schema.schema_str)

    def register(self, subject: str, schema_str: str) -> int:
        """Register (or find) `schema_str` under `subject`; returns its id."""
        try:
            schema_id = int(self._client.register_schema(subject, Schema(schema_str, "AVRO")))
        except Exception as exc:
            raise SerdeError(f"cannot register schema under subject {subject}: {exc}") from exc
        log.info("schema_registered subject=%s id=%s", subject, schema_id)
        return schema_id
