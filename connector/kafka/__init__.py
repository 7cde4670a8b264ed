"""Everything the connector knows of Kafka, and the one package that imports confluent-kafka.

settings.py     KafkaSettings: how to reach the cluster (the ``[kafka]`` section)
roles.py        which librdkafka properties a consumer, a producer or an AdminClient takes
clients.py      every client built by role (consumer, read-committed consumer, producer,
                transactional producer, admin) and the library's names the rest needs
protocols.py    the typed consumer and producer surface the workers depend on
reader.py       read offset ranges or a whole topic to an end, bounded in time
offsets.py      watermarks and a group's committed offsets
admin.py        topics: create the missing ones, list, delete, delete records, configuration
groups.py       consumer groups from outside: list, describe, read and move offsets, delete
lifecycle.py    waiting for a cluster that is away at start-up; closing without hanging
transaction.py  transactions with every broker call bounded
logs.py         librdkafka's log lines through the connector's logging
schema_registry.py  the Schema Registry client
"""

from connector.kafka.admin import TopicSpec, ensure_topics, ping

__all__ = ["TopicSpec", "ensure_topics", "ping"]
