"""Small Kafka helpers shared by the workers and the CLI (admin, client settings)."""

from connector.kafka.admin import TopicSpec, ensure_topics, ping

__all__ = ["TopicSpec", "ensure_topics", "ping"]
