"""Confluent Schema Registry's client, as confluent-kafka ships it (cached, thread-safe).

`connector.serde.registry` wraps it with the connector's error handling; only the client and the
names it needs come from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

__all__ = ["Schema", "SchemaRegistryClient", "SchemaRegistryError", "registry_client"]


def registry_client(url: str, properties: Mapping[str, Any] | None = None) -> Any:
    """A client for ``url`` (``mock://...`` selects confluent-kafka's in-memory registry)."""
    return SchemaRegistryClient.new_client({"url": url, **(properties or {})})
