"""The platform's two topics, and a synthetic sample published to them with the configured
codecs (`connector produce-sample` and the demo)."""

from __future__ import annotations

from collections import Counter

from connector.config import Settings
from connector.kafka import TopicSpec, clients, ensure_topics
from connector.sample import Sample
from connector.sample.publish import publish_sample
from connector.serde.codec import Framing
from connector.serde.topic import TopicCodecs

WEEK_MS = 7 * 24 * 3600 * 1000


def platform_topics(settings: Settings, partitions: int) -> list[TopicSpec]:
    """The platform's two topics with the cleanup policies its contract names."""
    return [
        TopicSpec(settings.topics.activity, partitions,
                  config={"cleanup.policy": "delete", "retention.ms": str(WEEK_MS)}),
        TopicSpec(settings.topics.webinars, partitions, config={"cleanup.policy": "compact"}),
    ]


def publish_to_platform(settings: Settings, sample: Sample, *, partitions: int = 3,
                        create_topics: bool = True, activity_framing: Framing | None = None,
                        webinar_framing: Framing | None = None) -> Counter[str]:
    """Publish ``sample`` to the platform's topics (created first, with ``partitions``, unless
    ``create_topics`` is false); a framing given overrides the topic's configured one. Returns
    the records published per kind and action; a failed delivery raises RuntimeError."""
    if create_topics:
        ensure_topics(settings.kafka, platform_topics(settings, partitions))
    codecs = TopicCodecs.from_settings(settings)
    activity_codec = codecs.codec(settings.topics.activity, activity_framing)
    webinar_codec = codecs.codec(settings.topics.webinars, webinar_framing)
    producer = clients.producer(settings.kafka, {"linger.ms": 20})
    return publish_sample(producer, sample, activity_topic=settings.topics.activity,
                          webinar_topic=settings.topics.webinars,
                          activity_encoder=activity_codec, webinar_encoder=webinar_codec)
