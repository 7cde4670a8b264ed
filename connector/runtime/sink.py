"""``run_sink``: build the worker from settings (consumer, DLQ producer, HubSpot client) and run it.

The caller (the CLI) owns signals: it sets ``stop`` on SIGTERM/SIGINT; the worker then drains
in-flight work (bounded), commits and returns. Nothing global is installed here.

At start the dead-letter topic is created; a broker that does not answer is waited for, up to
``startup_wait_seconds`` (:data:`STARTUP_WAIT_SECONDS`), then :class:`KafkaUnavailableError`
says so (a supervisor restarts the process) — a broker restarting for seconds is not an error.

Telemetry: the HubSpot client's transport is wrapped by ``telemetry.http_transport`` (a CLIENT
span and a latency sample per request, 429s counted); retries are counted as the retry policy
sleeps before them; the worker reports the rate budget, batch fill and lag.

:func:`build_worker` assembles the parts in one direction: the offsets (the consumer's
``on_commit`` lands there), the consumer, the :class:`~connector.sink.intake.Intake`, the
applier (which waits through ``intake.idle``, so the consumer keeps polling), the worker.
"""

from __future__ import annotations

import functools
import logging
import random
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import httpx

from connector.clock import Clock
from connector.config import Settings
from connector.errors import ConfigError
from connector.hubspot import (
    DEFAULT_LIMITS,
    HubSpotClient,
    HubSpotHTTPError,
    HubSpotTimeoutError,
    RefreshingBearerAuth,
)
from connector.hubspot.oauth import OAuthClient
from connector.hubspot.transport import PerThreadTransport
from connector.installs import (
    AccessTokens,
    AccountRoutes,
    HubBearer,
    Registry,
    Route,
    oauth_client_from,
    open_registry,
)
from connector.kafka import TopicSpec, clients, ensure_topics
from connector.kafka.lifecycle import until_available
from connector.kafka.protocols import CommittingMember, DeliveryProducer
from connector.serde.topic import TopicCodecs
from connector.sink.accounts import Destination, Destinations
from connector.sink.apply import Applier
from connector.sink.batch import Batcher
from connector.sink.budget import RateBudget
from connector.sink.flight import Concurrency
from connector.sink.intake import Intake
from connector.sink.offsets import AssignedOffsets
from connector.sink.options import SinkOptions
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
    """A :class:`RetryPolicy` that counts each retry in ``metrics.hubspot_retry`` (tenacity
    calls :meth:`before_retry` only when it will try again)."""

    metrics: Metrics | None = None

    def before_retry(self, error: BaseException | None) -> None:
        if self.metrics is not None and error is not None:
            operation, reason = retry_labels(error)
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


def sink_options(settings: Settings) -> SinkOptions:
    """The worker's topics and bounds, from the settings."""
    return SinkOptions(topic=settings.topics.commands, dlq_topic=settings.topics.commands_dlq,
                       group=settings.sink.group_id,
                       max_buffered=settings.sink.max_buffered_commands,
                       max_held_per_account=settings.sink.max_held_per_account,
                       landing_seconds=settings.hubspot.request_timeout_seconds + 5.0)


def sink_consumer(settings: Settings, offsets: AssignedOffsets) -> clients.Consumer:
    """The sink's consumer: read-committed, commits only what ``offsets`` says is finished
    (and hands the broker's answers to ``offsets.on_commit``)."""
    return clients.read_committed_consumer(settings.kafka, settings.sink.group_id, {
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "enable.partition.eof": False,
        "on_commit": offsets.on_commit,
    })


def dead_letter_producer(settings: Settings) -> clients.Producer:
    """The sink's dead-letter producer (idempotent, every replica acknowledges)."""
    return clients.producer(settings.kafka, {"acks": "all", "linger.ms": 5})


def hubspot_client(settings: Settings, transport: httpx.BaseTransport | None,
                   telemetry: Telemetry) -> HubSpotClient:
    """The HubSpot client, its transport traced and measured (ConfigError without a token)."""
    token = settings.hubspot.access_token
    if token is None or not token.get_secret_value():
        raise ConfigError("CONNECTOR_HUBSPOT__ACCESS_TOKEN ([hubspot] access_token) is required "
                          "to run the sink")
    timeout = httpx.Timeout(settings.hubspot.request_timeout_seconds, connect=5.0)
    if transport is None and settings.sink.max_in_flight > 1:
        transport = PerThreadTransport()  # each pool thread its own connection
    return HubSpotClient(token.get_secret_value(), base_url=settings.hubspot.base_url,
                         transport=telemetry.http_transport(
                             transport, limits=connection_limits(settings.sink.max_in_flight)),
                         timeout=timeout)


def connection_limits(max_in_flight: int) -> httpx.Limits:
    """One kept-alive connection per request in flight (a few more for lookups), so no
    request queues for a connection."""
    if max_in_flight <= 1:
        return DEFAULT_LIMITS
    return httpx.Limits(max_connections=max_in_flight + 2,
                        max_keepalive_connections=max_in_flight + 2, keepalive_expiry=30.0)


def sink_executor(max_in_flight: int) -> Executor | None:
    """The pool requests fly on (None: one at a time, inline)."""
    if max_in_flight <= 1:
        return None
    return ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="sink-hubspot")


def build_applier(settings: Settings, client: HubSpotClient, intake: Intake,
                  budget: RateBudget, metrics: Metrics,
                  concurrency: Concurrency | None = None, *,
                  access_fatal: bool = True, account: str | None = None) -> Applier:
    """The applier: inline, waits for the rate budget and between retries through
    ``intake.idle`` (which keeps polling); its latencies feed ``concurrency``.
    ``access_fatal``, ``account`` (app mode: the HubSpot account's key, its 429s counted
    apart): see :class:`~connector.sink.send.RequestSender`."""
    policy = ObservedRetryPolicy(
        budget_seconds=settings.sink.retry_budget_seconds, clock=intake.clock,
        sleep=functools.partial(intake.idle, waiting_on="hubspot-retry-backoff"),
        rng=random.Random(), metrics=metrics if metrics.enabled else None)
    return Applier(client, budget=budget, policy=policy, clock=intake.clock,
                   sleep=functools.partial(intake.idle, waiting_on="hubspot-rate-budget"),
                   lists=ListTargets.from_settings(settings.hubspot.list_associations),
                   on_latency=concurrency.observe if concurrency is not None else _ignore,
                   access_fatal=access_fatal, account=account, metrics=metrics)


@dataclass
class AccountClients:
    """App mode's HubSpot side: the install registry (followed), the app's OAuth client (token
    refreshes) and a client per HubSpot account the sink wrote to; closed together after the
    worker stopped."""

    registry: Registry
    oauth: OAuthClient
    clients: list[HubSpotClient]

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.oauth.close()
        self.registry.close()


def account_destinations(settings: Settings, intake: Intake, telemetry: Telemetry,
                         transport: httpx.BaseTransport | None,
                         clock: Clock) -> tuple[Destinations, AccountClients]:
    """App mode: every platform account goes to its install's HubSpot account, each with its
    own rate budget (110 / 10 s for an OAuth install), token, applier and concurrency,
    made the first time one of its commands is seen. One connection pool serves them all."""
    sink = settings.sink
    oauth = oauth_client_from(settings, clock=clock)  # first: a ConfigError leaves nothing open
    try:
        registry = open_registry(settings, follow=True)
    except BaseException:
        oauth.close()
        raise
    tokens = AccessTokens.from_settings(settings, registry.table, registry.writer, oauth,
                                        clock=clock)
    routes = AccountRoutes.from_settings(settings, tokens)
    shared = telemetry.http_transport(transport or PerThreadTransport(),
                                      limits=connection_limits(sink.max_in_flight))
    timeout = httpx.Timeout(settings.hubspot.request_timeout_seconds, connect=5.0)
    parts = AccountClients(registry, oauth, [])

    def build(route: Route) -> Destination:
        """The HubSpot account's destination; its budget and 429s reported per account (by
        its key, never its token: connector.telemetry.accounts bounds the series)."""
        accounts: set[str] = set()  # the platform accounts routed here; the destination's
        bearer = HubBearer(route.credentials, route.platform_account, accounts)
        client = HubSpotClient(RefreshingBearerAuth(bearer.bearer, bearer.expired, any_401=True),
                               base_url=settings.hubspot.base_url, transport=shared,
                               timeout=timeout)
        parts.clients.append(client)
        budget = RateBudget(window_limit=route.window_limit, window_seconds=route.window_seconds,
                            daily_limit=sink.daily_limit if route.kind != "oauth" else None,
                            clock=clock, paced=True)
        concurrency = Concurrency(sink.max_in_flight)
        applier = build_applier(settings, client, intake, budget, telemetry.metrics,
                                concurrency, access_fatal=False, account=route.account_key)
        telemetry.metrics.watch_account_budget(route.account_key, budget)
        log.info("sink.account_destination key=%s kind=%s account=%s", route.account_key,
                 route.kind, route.platform_account)
        return Destination(route.account_key, applier, budget, concurrency, accounts=accounts)

    return Destinations(resolve=routes.resolve, build=build), parts


def _ignore(_seconds: float) -> None:
    return None


class Closeable(Protocol):
    """What build_worker hands back to be closed after the worker stopped."""

    def close(self) -> None: ...


def build_worker(
    settings: Settings,
    stop: threading.Event,
    *,
    transport: httpx.BaseTransport | None = None,
    clock: Clock = time.time,
    consumer: CommittingMember | None = None,
    producer: DeliveryProducer | None = None,
    telemetry: Telemetry | None = None,
    progress: ProgressWatch | None = None,
) -> tuple[SinkWorker, Closeable]:
    """The worker and its HubSpot side: the client, or in app mode the clients and the
    install registry (close it after the worker stopped).

    ``telemetry``: where spans and metrics go (None: nowhere). ``progress``: the watch the
    worker reports to (None: one of its own). A ``consumer`` given here must have the worker's
    :meth:`~SinkWorker.on_commit` as its ``on_commit`` (only confirmed commits count); the one
    built here has."""
    sink = settings.sink
    telemetry = telemetry if telemetry is not None else Telemetry.disabled()
    app_mode = settings.hubspot.mode == "app"
    client = None if app_mode else hubspot_client(settings, transport, telemetry)
    progress = progress if progress is not None else ProgressWatch(
        "sink", clock=clock, metrics=telemetry.metrics)
    offsets = AssignedOffsets(progress)
    intake = Intake(consumer if consumer is not None else sink_consumer(settings, offsets),
                    sink_options(settings), stop=stop, clock=clock, progress=progress,
                    offsets=offsets)
    concurrency = Concurrency(sink.max_in_flight)
    budget: RateBudget | None = None
    applier: Applier | None = None
    destinations: Destinations | None = None
    closeable: Closeable
    if client is None:
        destinations, closeable = account_destinations(settings, intake, telemetry, transport,
                                                       clock)
    else:
        budget = RateBudget(window_limit=sink.window_limit, window_seconds=sink.window_seconds,
                            daily_limit=sink.daily_limit, clock=clock, paced=True)
        applier = build_applier(settings, client, intake, budget, telemetry.metrics,
                                concurrency)
        closeable = client
    worker = SinkWorker(
        intake,
        producer=producer if producer is not None else dead_letter_producer(settings),
        producer_factory=functools.partial(dead_letter_producer, settings)
        if producer is None else None,
        applier=applier,
        decoder=TopicCodecs.from_settings(settings).decoder(settings.topics.commands),
        # A small group waiting a whole rate window outranks a full one that just formed.
        batcher=Batcher(max_inputs=sink.max_inputs_per_request,
                        linger_seconds=sink.linger_ms / 1000, clock=clock,
                        max_wait_seconds=float(sink.window_seconds)),
        parking=ParkingLot(budget_seconds=sink.retry_budget_seconds, clock=clock),
        budget=budget,
        telemetry=telemetry,
        executor=sink_executor(sink.max_in_flight),
        concurrency=concurrency,
        destinations=destinations,
    )
    return worker, closeable


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
    if settings.sink.max_in_flight > 1:
        quicker_thread_switches()
    if telemetry is None:
        with Telemetry.from_settings(settings.telemetry) as owned:
            _run(settings, stop, transport, owned, progress)
    else:
        _run(settings, stop, transport, telemetry, progress)


#: The interpreter's thread switch interval with requests in flight (its default is 5 ms).
SWITCH_INTERVAL_SECONDS = 0.001


def quicker_thread_switches() -> None:
    """Hand the GIL over every millisecond instead of every 5. Each request in flight wakes
    its thread a dozen times (socket writes and reads, locks); behind a consumer thread busy
    decoding, each wake-up may wait the whole interval. At 1,000 requests / 10 s with 0.25 s
    latency (bench/sink_efficiency.py, a noisy figure on 2 shared cores) it measured 0.68-0.75
    efficiency in three runs at 5 ms and 0.71-0.81 in five at 1 ms. Process-wide, and only
    ever lowered."""
    if sys.getswitchinterval() > SWITCH_INTERVAL_SECONDS:
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)


def ensure_dead_letter_topic(
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    wait_seconds: float = STARTUP_WAIT_SECONDS,
    clock: Clock = time.monotonic,
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
    metadata = clients.admin(client).list_topics(timeout=timeout)
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
