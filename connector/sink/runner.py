"""``run_sink``: build the worker from settings (consumer, DLQ producer, HubSpot client) and run it.

The caller (the CLI) owns signals: it sets ``stop`` on SIGTERM/SIGINT; the worker then drains
in-flight work (bounded), commits and returns. Nothing global is installed here.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer

from connector.config import Settings
from connector.errors import ConfigError
from connector.hubspot import HubSpotClient
from connector.normalize.command import COMMAND_SCHEMA
from connector.serde import SchemaCatalog, SchemaRegistry, TopicDecoder, TopicFormat, build_codec
from connector.sink.apply import Applier
from connector.sink.batch import Batcher
from connector.sink.budget import RateBudget
from connector.sink.park import ParkingLot
from connector.sink.retry import RetryPolicy
from connector.sink.worker import SinkWorker


def consumer_config(settings: Settings) -> dict[str, Any]:
    """librdkafka settings of the sink's consumer."""
    return {
        **settings.kafka.client_config(),
        "group.id": settings.sink.group_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "enable.partition.eof": False,
    }


def producer_config(settings: Settings) -> dict[str, Any]:
    """librdkafka settings of the dead-letter producer."""
    return {
        **settings.kafka.client_config(),
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
    }


def build_worker(
    settings: Settings,
    stop: threading.Event,
    *,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    consumer: Any = None,
    producer: Any = None,
) -> tuple[SinkWorker, HubSpotClient]:
    """The worker and its HubSpot client (close the client after the worker stopped)."""
    token = settings.hubspot.access_token
    if token is None or not token.get_secret_value():
        raise ConfigError("CONNECTOR_HUBSPOT__ACCESS_TOKEN ([hubspot] access_token) is required "
                          "to run the sink")
    sink = settings.sink
    catalog = SchemaCatalog.from_directory(settings.serde.schemas_dir)
    registry = (SchemaRegistry.from_url(settings.serde.schema_registry_url,
                                        settings.serde.registry_config())
                if settings.serde.schema_registry_url else None)
    codec = build_codec(TopicFormat(settings.serde.commands_framing, COMMAND_SCHEMA),
                        settings.topics.commands, catalog, registry)
    timeout = httpx.Timeout(settings.hubspot.request_timeout_seconds, connect=5.0)
    client = HubSpotClient(token.get_secret_value(), base_url=settings.hubspot.base_url,
                           transport=transport, timeout=timeout)
    consumer = consumer if consumer is not None else Consumer(consumer_config(settings))
    producer = producer if producer is not None else Producer(producer_config(settings))
    budget = RateBudget(window_limit=sink.window_limit, window_seconds=sink.window_seconds,
                        daily_limit=sink.daily_limit, clock=clock)
    worker: SinkWorker

    def sleep(seconds: float) -> None:
        worker.idle(seconds)

    policy = RetryPolicy(budget_seconds=sink.retry_budget_seconds, clock=clock, sleep=sleep,
                         rng=random.Random())
    applier = Applier(client, budget=budget, policy=policy, clock=clock, sleep=sleep)
    worker = SinkWorker(
        consumer=consumer,
        producer=producer,
        applier=applier,
        decoder=TopicDecoder(codec),
        batcher=Batcher(max_inputs=sink.max_inputs_per_request,
                        linger_seconds=sink.linger_ms / 1000, clock=clock),
        parking=ParkingLot(budget_seconds=sink.retry_budget_seconds, clock=clock),
        topic=settings.topics.commands,
        dlq_topic=settings.topics.commands_dlq,
        stop=stop,
        clock=clock,
    )
    return worker, client


def run_sink(
    settings: Settings,
    stop: threading.Event,
    *,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """Run the sink until ``stop`` is set (then drain and commit) or a fatal error is raised
    (:class:`~connector.sink.errors.HubSpotAccessError` for 401/403)."""
    worker, client = build_worker(settings, stop, transport=transport)
    try:
        worker.run()
    finally:
        client.close()
