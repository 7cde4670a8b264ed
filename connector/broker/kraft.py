"""Configuration files for a single-node KRaft broker: server.properties, log4j2, cluster id."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from pathlib import Path

__all__ = ["HOST", "new_cluster_id", "render_log4j2_config", "render_server_properties"]

HOST = "127.0.0.1"

# Single node: every internal topic must live with replication factor 1 or it is never created
# (transactions and consumer groups would then hang on "coordinator not available").
_BASE_CONFIG: Mapping[str, str] = {
    "num.partitions": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "offsets.topic.replication.factor": "1",
    # One partition per internal topic: created and loaded in milliseconds, not 50 of them.
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    # Tests join groups constantly; the default 3s delay would make each join slow.
    "group.initial.rebalance.delay.ms": "0",
    # Tests create topics explicitly; a typo should fail loudly, not create a stray topic.
    "auto.create.topics.enable": "false",
    # Compacted changelog topics need the cleaner; it is on by default, state it anyway.
    "log.cleaner.enable": "true",
    # Small segments so compaction has closed segments to work on in short runs.
    "log.segment.bytes": str(16 * 1024 * 1024),
    # After a crash (restart(graceful=False)) the new JVM may register only once the old
    # incarnation's session expired: 9s by default, 4s here; heartbeats follow suit.
    "broker.session.timeout.ms": "4000",
    "broker.heartbeat.interval.ms": "500",
    # A test broker needs few threads; fewer threads start faster and use less memory.
    "num.network.threads": "2",
    "num.io.threads": "4",
    "num.recovery.threads.per.data.dir": "1",
    "background.threads": "4",
}

_LOG4J2_CONFIG = """\
status = error
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = out
# Config dumps and per-request lines drown the interesting part of broker.log.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
"""


def render_server_properties(
    broker_port: int, controller_port: int, data_dir: Path, extra: Mapping[str, str] | None = None
) -> str:
    """server.properties for one combined broker+controller node with a dynamic KRaft quorum.

    `extra` entries override the defaults (e.g. {"auto.create.topics.enable": "true"}).
    """
    listeners = f"PLAINTEXT://{HOST}:{broker_port},CONTROLLER://{HOST}:{controller_port}"
    config = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # 4.x dynamic quorum: the voter set lives in the log, seeded by `format --standalone`.
        "controller.quorum.bootstrap.servers": f"{HOST}:{controller_port}",
        "listeners": listeners,
        "advertised.listeners": listeners,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        **_BASE_CONFIG,
        **(extra or {}),
    }
    return "".join(f"{key}={value}\n" for key, value in config.items())


def render_log4j2_config(level: str = "INFO") -> str:
    """log4j2 properties: everything at `level` to stdout, which the caller sends to a file."""
    return _LOG4J2_CONFIG.format(level=level.lower())


def new_cluster_id() -> str:
    """A random KRaft cluster id: a UUID as 22 characters of URL-safe base64."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # a leading "-" would be read as a CLI flag
            return cluster_id
