"""A real single-node Apache Kafka broker (KRaft) for tests, demos and local runs.

`EmbeddedKafka` runs it in a child JVM; `serve_forever` backs `python -m connector.broker`.
The jars come from kafka/pom.xml, resolved once with Maven and cached under .cache/kafka/.
`EmbeddedSchemaRegistry` runs a Confluent-API-compatible schema registry (Apicurio) likewise.
"""

from connector.broker.classpath import resolve_classpath
from connector.broker.embedded import EmbeddedKafka, serve_forever
from connector.broker.kraft import render_server_properties
from connector.broker.registry import EmbeddedSchemaRegistry

__all__ = [
    "EmbeddedKafka",
    "EmbeddedSchemaRegistry",
    "render_server_properties",
    "resolve_classpath",
    "serve_forever",
]
