"""librdkafka properties by client role: which ones only a consumer, or only a producer, takes.

librdkafka marks each property C (consumer), P (producer) or * (both) in its CONFIGURATION.md
(the "C/P" column; `rd_kafka_conf_properties_show()` prints the table of the library actually
loaded). A client given the other role's property ignores it and says so on every start, e.g.
``CONFWARN ... session.timeout.ms is a consumer property and will be ignored by this producer
instance``. So a property the operator sets for every client (``CONNECTOR_KAFKA__EXTRA``) goes only
to the clients that take it:

* :func:`for_consumer`: a Consumer's properties (producer-only ones left out);
* :func:`for_producer`: a Producer's properties (consumer-only ones left out);
* :func:`for_admin`: an AdminClient's, or anything every client may take (both left out).

An AdminClient is a producer-type handle inside librdkafka: producer-only properties would not
warn there, but they mean nothing to it either.

The sets name every string-settable C or P property of librdkafka 2.16 with its aliases (global
and topic-level: a topic-level property set on a client applies to every topic it uses). The
callbacks of the table (``consume_cb``, ``dr_msg_cb``, ...) cannot be set by name and are not
listed. ``allow.auto.create.topics`` is a "*" property (both roles, with different defaults).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Properties only a consumer takes (librdkafka's "C"), aliases included.
CONSUMER_ONLY_PROPERTIES: frozenset[str] = frozenset({
    # global
    "group.id", "group.instance.id", "group.protocol", "group.protocol.type",
    "group.remote.assignor", "partition.assignment.strategy", "session.timeout.ms",
    "heartbeat.interval.ms", "coordinator.query.interval.ms", "max.poll.interval.ms",
    "enable.auto.commit", "auto.commit.interval.ms", "enable.auto.offset.store",
    "queued.min.messages", "queued.max.messages.kbytes", "fetch.wait.max.ms",
    "fetch.queue.backoff.ms", "fetch.message.max.bytes", "max.partition.fetch.bytes",
    "fetch.max.bytes", "fetch.min.bytes", "fetch.error.backoff.ms", "offset.store.method",
    "isolation.level", "enable.partition.eof", "check.crcs",
    "max.poll.records", "share.acknowledgement.mode",  # share consumers (KIP-932)
    # topic-level
    "auto.offset.reset", "auto.commit.enable", "offset.store.path",
    "offset.store.sync.interval.ms", "consume.callback.max.messages",
})

#: Properties only a producer takes (librdkafka's "P"), aliases included.
PRODUCER_ONLY_PROPERTIES: frozenset[str] = frozenset({
    # global
    "transactional.id", "transaction.timeout.ms", "enable.idempotence",
    "enable.gapless.guarantee", "queue.buffering.max.messages", "queue.buffering.max.kbytes",
    "queue.buffering.max.ms", "linger.ms", "message.send.max.retries", "retries",
    "queue.buffering.backpressure.threshold", "compression.codec", "compression.type",
    "batch.num.messages", "batch.size", "delivery.report.only.error",
    "sticky.partitioning.linger.ms",
    # topic-level
    "request.required.acks", "acks", "request.timeout.ms", "message.timeout.ms",
    "delivery.timeout.ms", "queuing.strategy", "produce.offset.report", "partitioner",
    "compression.level",
})


def _without(config: Mapping[str, Any], names: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in config.items() if key not in names}


def for_consumer(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` as a Consumer takes it: producer-only properties left out."""
    return _without(config, PRODUCER_ONLY_PROPERTIES)


def for_producer(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` as a Producer takes it: consumer-only properties left out."""
    return _without(config, CONSUMER_ONLY_PROPERTIES)


def for_admin(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` as an AdminClient (or any client) takes it: role-only properties left out."""
    return _without(config, CONSUMER_ONLY_PROPERTIES | PRODUCER_ONLY_PROPERTIES)
