"""librdkafka's built-in mock cluster, for a demo on a machine without Java.

The mock cluster lives inside one client instance (``test.mock.num.brokers``) and listens on a
real loopback port, so every other client — the normalizer's, the sink's — connects to it like to
a broker. It speaks enough of the protocol for the pipeline (idempotent and transactional
producers, consumer groups, read_committed) but it is a test double: it keeps everything in
memory, has no controller (topics are created on first use with its default partition count)
and is never the proof that something works — the real broker is (`EmbeddedKafka`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterator

from connector.kafka import clients

log = logging.getLogger(__name__)


@contextlib.contextmanager
def mock_kafka(brokers: int = 1) -> Iterator[str]:
    """Start a mock cluster; yields its bootstrap servers, stops it on exit."""
    # The holder client owns the cluster; its own log line about it is ours to say.
    holder = clients.producer({"test.mock.num.brokers": brokers, "log_level": 3},
                              {"enable.idempotence": False})  # it never produces
    metadata = holder.list_topics(timeout=10)
    bootstrap = ",".join(f"{b.host}:{b.port}" for b in metadata.brokers.values())
    log.info("mock_cluster_started cluster_id=%s bootstrap=%s", metadata.cluster_id, bootstrap)
    try:
        yield bootstrap
    finally:
        # Clients still connected when the cluster goes would log the lost connection: collect
        # the finished workers' ones first. The cluster stops with the client that owns it.
        gc.collect()
        holder.flush(5)
        del holder

