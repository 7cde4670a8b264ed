"""Shared helpers for pipeline tests on the real broker: settings, input, reading outputs."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from cryptography.fernet import Fernet

from connector.config import Settings, load_settings
from connector.kafka.reader import read_all
from connector.normalize.command import COMMAND_SCHEMA, Command
from connector.normalize.event import EventProjector
from connector.normalize.normalizer import AttendanceNormalizer
from connector.runtime.assemble import rules_from
from connector.runtime.table import WebinarTable
from connector.sample import Sample
from connector.sample.oracle import person_key
from connector.sample.publish import publish_sample
from connector.serde.catalog import ACTIVITY_SCHEMA, WEBINAR_SCHEMA, SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.record import Decoded, SourceRecord
from connector.serde.topic import TopicDecoder, TopicFormat, build_codec

CATALOG = SchemaCatalog.from_directory()


def pipeline_env(bootstrap: str, **overrides: str) -> dict[str, str]:
    """CONNECTOR_* variables for a pipeline on uniquely named topics and groups."""
    tag = uuid.uuid4().hex[:8]
    env = {
        "CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "CONNECTOR_TOPICS__ACTIVITY": f"activity-{tag}",
        "CONNECTOR_TOPICS__WEBINARS": f"webinars-{tag}",
        "CONNECTOR_TOPICS__COMMANDS": f"commands-{tag}",
        "CONNECTOR_TOPICS__COMMANDS_DLQ": f"commands-{tag}.dlq",
        "CONNECTOR_NORMALIZER__GROUP_ID": f"normalizer-{tag}",
        "CONNECTOR_NORMALIZER__INSTANCE_ID": "i1",
        "CONNECTOR_NORMALIZER__IDLE_PUNCTUATION_SECONDS": "3600",
        "CONNECTOR_SINK__GROUP_ID": f"sink-{tag}",
    }
    env.update(overrides)
    return env


def app_mode_env(bootstrap: str, sandbox_url: str, redirect: str, *, client_id: str,
                 client_secret: str, app_id: int, link_secret: str,
                 **overrides: str) -> dict[str, str]:
    """:func:`pipeline_env` in app mode against a sandbox's OAuth app, with a fresh install
    registry topic and encryption key; ``redirect``: serve's OAuth callback."""
    return pipeline_env(
        bootstrap,
        CONNECTOR_TOPICS__INSTALLS=f"installs-{uuid.uuid4().hex[:8]}",
        CONNECTOR_HUBSPOT__MODE="app",
        CONNECTOR_HUBSPOT__BASE_URL=sandbox_url,
        CONNECTOR_HUBSPOT__AUTHORIZE_URL=f"{sandbox_url}/oauth/authorize",
        CONNECTOR_HUBSPOT__CLIENT_ID=client_id,
        CONNECTOR_HUBSPOT__CLIENT_SECRET=client_secret,
        CONNECTOR_HUBSPOT__APP_ID=str(app_id),
        CONNECTOR_HUBSPOT__REDIRECT_URL=redirect,
        CONNECTOR_INSTALLS__ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        CONNECTOR_INSTALLS__STATE_SECRET="test-state-secret-0123456789",
        CONNECTOR_INSTALLS__INSTALL_LINK_SECRET=link_secret,
        CONNECTOR_SERVE__KAFKA_CHECK_SECONDS="1",
        CONNECTOR_TELEMETRY__METRICS="none",
        **overrides)


def settings_for(env: dict[str, str], **overrides: str) -> Settings:
    return load_settings({**env, **overrides})


def publish(settings: Settings, sample: Sample, create_topics: Callable[..., Any]) -> None:
    """Create the platform topics (3 partitions each) and publish the sample, raw framing."""
    create_topics(settings.topics.activity, 3, {"cleanup.policy": "delete"})
    create_topics(settings.topics.webinars, 3, {"cleanup.policy": "compact"})
    publish_more(settings, sample)


def publish_more(settings: Settings, sample: Sample) -> None:
    """Publish the sample to the platform topics (made before), raw framing."""
    producer = Producer({**settings.kafka.producer_config(), "enable.idempotence": True,
                         "linger.ms": 20})
    publish_sample(
        producer, sample, activity_topic=settings.topics.activity,
        webinar_topic=settings.topics.webinars,
        activity_encoder=build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a", CATALOG),
        webinar_encoder=build_codec(TopicFormat(Framing.RAW, WEBINAR_SCHEMA), "w", CATALOG))


def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Any]:
    """Every committed message of `topic` (all partitions), read to the end."""
    return read_all({"bootstrap.servers": bootstrap}, topic, timeout)


def sink_caught_up(settings: Settings, expected_commands: int = 1) -> bool:
    """At least ``expected_commands`` commands are written and the sink group committed past
    all of them."""
    topic = settings.topics.commands
    if len(read_topic(settings.kafka.bootstrap_servers, topic, 10)) < expected_commands:
        return False
    consumer = Consumer({**settings.kafka.consumer_config(), "group.id": settings.sink.group_id,
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], 10)
        # 1: the commit marker of the normalizer's last transaction stays after the offset
        return all(consumer.get_watermark_offsets(tp, 10)[1] - max(tp.offset, 0) <= 1
                   for tp in committed)
    finally:
        consumer.close()


def email_registration(activities: list[dict[str, Any]]) -> dict[str, Any]:
    """The first registration of a person known by email only (no HubSpot contact id)."""
    return next(a for a in activities if a["action"][0].endswith(".Registered")
                and not a["participant"]["hubspotContactId"]
                and person_key(a["participant"]) is not None)


def decode_commands(messages: list[Any]) -> list[tuple[int, Command, str]]:
    """(partition, command, commandId) in partition order."""
    codec = TopicDecoder(build_codec(TopicFormat(Framing.SINGLE_OBJECT, COMMAND_SCHEMA), "c",
                                     CATALOG))
    out = []
    for message in messages:
        result = codec.decode(SourceRecord.from_message(message))
        assert isinstance(result, Decoded), result
        out.append((message.partition(), Command.from_avro(result.value),
                    result.value["commandId"]))
    return out


def reference_commands(settings: Settings) -> Counter[str]:
    """The commandIds a crash-free normalizer must emit, from the input as Kafka holds it:
    each input partition in offset order, with the whole webinar table known up front."""
    bootstrap = settings.kafka.bootstrap_servers
    activity = TopicDecoder(build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a", CATALOG))
    webinars = TopicDecoder(build_codec(TopicFormat(Framing.RAW, WEBINAR_SCHEMA), "w", CATALOG))
    table = WebinarTable()
    projectors: dict[int, EventProjector] = {}
    ids: Counter[str] = Counter()
    for message in read_topic(bootstrap, settings.topics.webinars):
        result = webinars.decode(SourceRecord.from_message(message))
        assert isinstance(result, Decoded)
        table.put(result.value)
        projector = projectors.setdefault(message.partition(), EventProjector())
        ids.update(c.to_avro()["commandId"] for c in projector.on_webinar(result.value))
    normalizers: dict[int, AttendanceNormalizer] = {}
    for message in read_topic(bootstrap, settings.topics.activity):
        result = activity.decode(SourceRecord.from_message(message))
        assert isinstance(result, Decoded)
        normalizer = normalizers.setdefault(message.partition(),
                                            AttendanceNormalizer(table.get, rules_from(settings)))
        out = normalizer.on_activity(result.value, result.source)
        ids.update(c.to_avro()["commandId"] for c in out.commands)
    return ids


def wait_for(condition: Callable[[], bool], timeout: float, what: str,
             explain: Callable[[], str] | None = None) -> None:
    """Poll ``condition`` until true; on timeout fail with ``what`` (and ``explain()``: what
    was still missing)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            detail = f" ({explain()})" if explain is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(0.5)


class WorkerThread:
    """A worker function running in a thread until stopped; re-raises its failure."""

    def __init__(self, target: Callable[[Settings, threading.Event], None], settings: Settings):
        self.stop = threading.Event()
        self.error: BaseException | None = None

        def run() -> None:
            try:
                target(settings, self.stop)
            except BaseException as exc:  # surfaced by join()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 60.0) -> None:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"
        if self.error is not None:
            raise self.error
