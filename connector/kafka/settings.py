"""How to reach the Kafka cluster: the ``[kafka]`` settings section (``CONNECTOR_KAFKA__*``).

Owned here, beside the clients built from it; :mod:`connector.config` gathers it with the other
sections.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connector.kafka.logs import client_logger
from connector.kafka.roles import (
    CONSUMER_ONLY_PROPERTIES,
    PRODUCER_ONLY_PROPERTIES,
    for_admin,
    for_consumer,
    for_producer,
)


class KafkaSettings(BaseModel):
    """How to reach the Kafka cluster (shared by every consumer and producer).

    Client configs by role: `consumer_config()` for a Consumer, `producer_config()` for a
    Producer, `client_config()` for an AdminClient (or a helper that builds clients of several
    roles and picks per role with `connector.kafka.roles`). Each carries the connection and
    security properties, the `extra` properties its role takes (`CONSUMER_ONLY_PROPERTIES` and
    `PRODUCER_ONLY_PROPERTIES` name the others, left out), and ``"logger"``: librdkafka's log
    lines go through the ``connector.kafka.client`` logger (see `connector.kafka.logs`), not to
    stderr. A config holds that Logger object: never serialize one; print `masked()` instead.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: librdkafka's consumer-only properties ("C" in its CONFIGURATION.md), aliases included.
    CONSUMER_ONLY_PROPERTIES: ClassVar[frozenset[str]] = CONSUMER_ONLY_PROPERTIES
    #: librdkafka's producer-only properties ("P" in its CONFIGURATION.md), aliases included.
    PRODUCER_ONLY_PROPERTIES: ClassVar[frozenset[str]] = PRODUCER_ONLY_PROPERTIES

    bootstrap_servers: str = "localhost:9092"
    client_id: str = "webinar-hubspot-connector"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    #: Extra librdkafka properties, e.g. {"ssl.ca.location": "/ca.pem"}, each applied to every
    #: client that takes it: consumer-only ones (session.timeout.ms, ...) to consumers,
    #: producer-only ones (linger.ms, ...) to producers, the others to every client.
    extra: dict[str, str] = Field(default_factory=dict)

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_port_list(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError("expected host:port[,host:port...], e.g. localhost:9092")
        return value

    def client_config(self) -> dict[str, Any]:
        """librdkafka properties every client takes (AdminClient): no role-only `extra`."""
        return for_admin(self.properties())

    def consumer_config(self) -> dict[str, Any]:
        """librdkafka properties of a Consumer: `client_config()` + consumer-only `extra`."""
        return for_consumer(self.properties())

    def producer_config(self) -> dict[str, Any]:
        """librdkafka properties of a Producer: `client_config()` + producer-only `extra`."""
        return for_producer(self.properties())

    def properties(self) -> dict[str, Any]:
        """Every property, of every role (`connector.kafka.clients` picks per client)."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        return {**config, **self.extra, "logger": client_logger()}
