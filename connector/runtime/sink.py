"""``run_sink``: build the worker from settings (consumer, DLQ producer, HubSpot client) and run it.

The caller (the CLI) owns signals: it sets ``stop`` on SIGTERM/SIGINT; the worker then drains
in-flight work (bounded), commits and returns. Nothing global is installed here.

At start the dead-letter topic is created; a broker that does not answer is waited for, up to
``startup_wait_seconds`` (:data:`STARTUP_WAIT_SECONDS`), then :class:`KafkaUnavailableError`
says so (a supervisor restarts the process) — a broker restarting for seconds is not an error.

Telemetry: the HubSpot client's transport is wrapped by ``telemetry.http_transport`` (a CLIENT
span and a latency sample per request, 429s counted); retries are counted as the retry policy
sleeps before them; the worker reports the rate budget, batch fill and lag.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from tenacity import RetryCallState

from connector.config import Settings
from connector.errors import ConfigError
from connector.hubspot import HubSpotClient, HubSpotHTTPError, HubSpotTimeoutError
from connector.kafka import TopicSpec, ensure_topics
from connector.kafka.lifecycle import until_available
from connector.serde import TopicCodecs
from connector.sink.apply import Applier
from connector.sink.batch import Batcher
from connector.sink.budget import RateBudget
from connector.sink.park import ParkingLot
from connector.sink.request import ListTargets
from connector.sink.retry import RetryPolicy
from connector.sink.worker import SinkWorker
from connector.telemetry import Metrics, Telemetry, route_of
from connector.telemetry.progress import ProgressWatch

log = logging.getLogger("connector.sink")

#: How long the sink waits at start for a broker that does not answer (a restart, a failover).
STARTUP_WAIT_SECONDS = 120.0
_ATTEMPT_TIMEOUT_S = 10.0  # one metadata / create-topics attempt


@dataclass
class ObservedRetryPolicy(RetryPolicy):
    """A :class:`RetryPolicy` that counts each retry in ``metrics.hubspot_retry``.

    tenacity asks :meth:`wait_for` (seeing the failure) and then sleeps only when it will try
    again, so the failure noted by the one is what the other counts.
    """

    metrics: Metrics | None = None
    _failure: BaseException | None = field(default=None, init=False, repr=False)

    def wait_for(self, state: RetryCallState) -> float:
        self._failure = state.outcome.exception() if state.outcome is not None else None
        return super().wait_for(state)

    def retried(self) -> None:
        """Called by the policy's ``sleep`` right before it waits for a retry."""
        failure, self._failure = self._failure, None
        if self.metrics is not None and failure is not None:
            operation, reason = retry_labels(failure)
            self.metrics.hubspot_retry(operation, reason)


def retry_labels(error: BaseException) -> tuple[str, str]:
    """(operation, reason) of a failed HubSpot request: the client method, and the status
    ("429", "503", ...), "timeout", or the error's class for other transport failures."""
    method, path = getattr(error, "method", None), getattr(error, "path", None)
    operation = (route_of(method, path.partition("?")[0])[0]
                 if isinstance(method, str) and isinstance(path, str) else "other")
    if isinstance(error, HubSpotHTTPError):
        return operation, str(error.status)
    if isinstance(error, HubSpotTimeoutError):
        return operation, "timeout"
    return operation, type(error).__name__


def consumer_config(settings: Settings) -> dict[str, Any]:
    """librdkafka settings of the sink's consumer."""
    return {
        **settings.kafka.consumer_config(),
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
        **settings.kafka.producer_config(),
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
    telemetry: Telemetry | None = None,
    progress: ProgressWatch | None = None,
) -> tuple[SinkWorker, HubSpotClient]:
    """The worker and its HubSpot client (close the client after the worker stopped).

    ``telemetry``: where spans and metrics go (None: nowhere). ``progress``: the watch the
    worker reports to (None: one of its own). A ``consumer`` given here must have the worker's
    :meth:`~SinkWorker.on_commit` as its ``on_commit`` (only confirmed commits count); the one
    built here has."""
    token = settings.hubspot.access_token
    if token is None or not token.get_secret_value():
        raise ConfigError("CONNECTOR_HUBSPOT__ACCESS_TOKEN ([hubspot] access_token) is required "
                          "to run the sink")
    sink = settings.sink
    decoder = TopicCodecs.from_settings(settings).decoder(settings.topics.commands)
    telemetry = telemetry if telemetry is not None else Telemetry.disabled()
    timeout = httpx.Timeout(settings.hubspot.request_timeout_seconds, connect=5.0)
    client = HubSpotClient(token.get_secret_value(), base_url=settings.hubspot.base_url,
                           transport=telemetry.http_transport(transport), timeout=timeout)
    worker: SinkWorker

    def on_commit(error: Any, partitions: Any) -> None:
        worker.on_commit(error, partitions)

    def new_producer() -> Producer:
        return Producer(producer_config(settings))

    if consumer is None:
        consumer = Consumer({**consumer_config(settings), "on_commit": on_commit})
    budget = RateBudget(window_limit=sink.window_limit, window_seconds=sink.window_seconds,
                        daily_limit=sink.daily_limit, clock=clock)

    def sleep(seconds: float) -> None:
        worker.idle(seconds, "hubspot-rate-budget")

    def retry_sleep(seconds: float) -> None:
        policy.retried()
        worker.idle(seconds, "hubspot-retry-backoff")

    policy = ObservedRetryPolicy(budget_seconds=sink.retry_budget_seconds, clock=clock,
                                 sleep=retry_sleep, rng=random.Random(),
                                 metrics=telemetry.metrics if telemetry.metrics.enabled else None)
    applier = Applier(client, budget=budget, policy=policy, clock=clock, sleep=sleep,
                      lists=ListTargets.from_settings(settings.hubspot.list_associations))
    worker = SinkWorker(
        consumer=consumer,
        producer=producer if producer is not None else new_producer(),
        producer_factory=new_producer if producer is None else None,
        applier=applier,
        decoder=decoder,
        # A small group waiting a whole rate window outranks a full one that just formed.
        batcher=Batcher(max_inputs=sink.max_inputs_per_request,
                        linger_seconds=sink.linger_ms / 1000, clock=clock,
                        max_wait_seconds=float(sink.window_seconds)),
        max_buffered=sink.max_buffered_commands,
        parking=ParkingLot(budget_seconds=sink.retry_budget_seconds, clock=clock),
        topic=settings.topics.commands,
        dlq_topic=settings.topics.commands_dlq,
        stop=stop,
        clock=clock,
        telemetry=telemetry,
        budget=budget,
        group=sink.group_id,
        progress=progress,
    )
    return worker, client


def run_sink(
    settings: Settings,
    stop: threading.Event,
    *,
    transport: httpx.BaseTransport | None = None,
    telemetry: Telemetry | None = None,
    progress: ProgressWatch | None = None,
) -> None:
    """Run the sink until ``stop`` is set (then drain and commit) or a fatal error is raised
    (:class:`~connector.sink.errors.HubSpotAccessError` for 401/403, a fatal consumer error,
    :class:`~connector.sink.errors.KafkaUnavailableError` when no broker answers at start).

    ``telemetry``: the process's (the CLI builds one); None builds one from
    ``settings.telemetry`` for this worker alone and shuts it down on return. ``progress``: the
    watch ``/healthz`` reads (``connector run`` gives one); None: one of the worker's own."""
    if telemetry is None:
        with Telemetry.from_settings(settings.telemetry) as owned:
            _run(settings, stop, transport, owned, progress)
    else:
        _run(settings, stop, transport, telemetry, progress)


def ensure_dead_letter_topic(
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    wait_seconds: float = STARTUP_WAIT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] | None = None,
) -> bool:
    """The sink must be able to dead-letter from its first record: create its DLQ topic with as
    many partitions as the commands topic (clusters often disable auto-creation).

    A broker that is away (transport errors, timeouts) is asked again, with short pauses, for
    up to ``wait_seconds``; then :class:`KafkaUnavailableError`. Other errors raise at once.
    Returns False if ``stop`` was set while waiting (nothing to run), else True."""
    def attempt(seconds_left: float) -> bool:
        _create_dead_letter_topic(settings, min(_ATTEMPT_TIMEOUT_S, seconds_left))
        return True

    created = until_available(
        attempt, what=f"the sink created its dead-letter topic {settings.topics.commands_dlq}",
        servers=settings.kafka.bootstrap_servers, give_up_seconds=wait_seconds,
        stop=stop if stop is not None else threading.Event(), clock=clock, sleep=sleep)
    return created is not None


def _create_dead_letter_topic(settings: Settings, timeout: float) -> None:
    client = settings.kafka.client_config()
    metadata = AdminClient(client).list_topics(timeout=timeout)
    commands = metadata.topics.get(settings.topics.commands)
    partitions = len(commands.partitions) if commands is not None and commands.partitions else 1
    ensure_topics(client, [TopicSpec(settings.topics.commands_dlq, partitions)], timeout=timeout)


def _run(settings: Settings, stop: threading.Event, transport: httpx.BaseTransport | None,
         telemetry: Telemetry, progress: ProgressWatch | None) -> None:
    if not ensure_dead_letter_topic(settings, stop=stop):
        return
    worker, client = build_worker(settings, stop, transport=transport, telemetry=telemetry,
                                  progress=progress)
    try:
        worker.run()
    finally:
        client.close()
