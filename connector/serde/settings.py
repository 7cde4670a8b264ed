"""The ``[serde]`` settings section (``CONNECTOR_SERDE__*``): the wire format of each topic.

Owned here, beside the codecs built from it; :mod:`connector.config` gathers it with the other
sections. :class:`SerdeConfig` is what :mod:`connector.serde.topic` reads of the whole
configuration (``connector.config.Settings`` is one), so serde never imports config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from connector.serde.catalog import DEFAULT_SCHEMAS_DIR
from connector.serde.codec import Framing


class SerdeSettings(BaseModel):
    """Wire formats per topic; see the platform contract for the three framings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    activity_framing: Framing = Framing.RAW
    webinars_framing: Framing = Framing.RAW
    #: The connector's own commands topic: single-object lets its schema evolve without a registry.
    commands_framing: Framing = Framing.SINGLE_OBJECT
    schema_registry_url: str | None = None
    schema_registry_basic_auth: SecretStr | None = None
    schemas_dir: Path = DEFAULT_SCHEMAS_DIR

    @field_validator("schema_registry_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://", "mock://")):
            raise ValueError("expected an http:// or https:// URL (mock:// for tests)")
        return value

    def registry_config(self) -> dict[str, str]:
        """confluent-kafka SchemaRegistryClient settings (without the URL)."""
        if self.schema_registry_basic_auth is None:
            return {}
        return {"basic.auth.user.info": self.schema_registry_basic_auth.get_secret_value()}


class TopicNames(Protocol):
    """The topics whose format the serde settings name (``connector.config.TopicSettings``)."""

    @property
    def activity(self) -> str: ...

    @property
    def webinars(self) -> str: ...

    @property
    def commands(self) -> str: ...


class SerdeConfig(Protocol):
    """What the serde reads of the configuration: its section and the topic names."""

    @property
    def topics(self) -> TopicNames: ...

    @property
    def serde(self) -> SerdeSettings: ...
