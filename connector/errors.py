"""The connector's exception tree.

ConnectorError                      root of everything the connector raises on purpose
├── ConfigError                     a setting is missing or invalid (names the setting)
├── SerdeError                      Avro framing/schema problems that are not per-record
│   └── SchemaNotFoundError         a schema named in configuration is not in the catalog
└── BrokerError                     the embedded Kafka broker could not be prepared or started

Per-record decode failures are *values* (connector.serde.DecodeFailure), not exceptions:
a bad record must never stop a consumer loop.
HubSpot errors live in connector.hubspot.errors and derive from ConnectorError too.
"""


class ConnectorError(Exception):
    """Root of every error the connector raises on purpose."""


class ConfigError(ConnectorError):
    """A setting is missing or invalid; the message names it and what would be valid."""


class SerdeError(ConnectorError):
    """A serialization problem that concerns configuration, not a single record."""


class SchemaNotFoundError(SerdeError):
    """A schema named in configuration is not in the schema catalog."""


class BrokerError(ConnectorError):
    """The embedded Kafka broker could not be prepared, started or reached."""
