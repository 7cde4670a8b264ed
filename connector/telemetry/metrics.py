"""The connector's metrics: one method per thing a worker reports.

:class:`Metrics` is the API and, as it is, the telemetry-off implementation (every method does
nothing). :class:`ConnectorMetrics` records through an OpenTelemetry meter.

Per-record counters (records in/out, dead letters) are the hot path: an SDK ``Counter.add``
costs about as much as decoding a record. So they are summed in plain dicts (one per thread, no
lock) and reported by observable counters when a reader collects: the same cumulative series
for a small fraction of the cost (docs/performance.md). Gauges keep the last value set and are
reported the same way. Histograms (per HTTP request, per batch) use SDK instruments directly.

Instruments (for Prometheus, dots become underscores, counters get ``_total`` and seconds
``_seconds``):

- ``connector.records.in`` (counter): records consumed, by ``topic``
- ``connector.records.out`` (counter): records produced, by ``topic``
- ``connector.dead_letters`` (counter): dead letters, by ``topic`` and ``reason``
- ``connector.hubspot.request.duration`` (histogram, s): by ``operation`` and ``status``
- ``connector.hubspot.throttled`` (counter): 429 answers, by ``operation``
- ``connector.hubspot.retries`` (counter): retries, by ``operation`` and ``reason``
- ``connector.hubspot.rate_budget.remaining`` (gauge): requests left, by ``window`` (10s, daily)
- ``connector.consumer.lag`` (gauge): records behind, by ``group``, ``topic``, ``partition``
- ``connector.sink.batch.fill_ratio`` (histogram): inputs sent / batch capacity, by ``operation``
- ``connector.normalizer.attendances.open`` (gauge): people currently in a session
- ``connector.normalizer.state.size`` (gauge): entries in the normalizer's state
- ``connector.worker.stalled`` (gauge): 1 while a worker is stalled, else 0, by ``worker``
- ``connector.worker.progress.age`` (gauge, s): seconds a worker has had work without making
  progress (0 while idle), by ``worker`` (the rule: ``connector.telemetry.progress``)

Per account (app mode's sink; the ``account`` label is bounded by
:class:`~connector.telemetry.accounts.AccountLabels`: the first N accounts each have a value,
later ones share ``other``; dead letters are counted in private-app mode too):

- ``connector.sink.account.budget.used`` (gauge): requests counted in the HubSpot account's
  current rate window (ours and others sharing the app), by ``account`` (its key: the hub id,
  or ``private:<hash>`` of a private-app token)
- ``connector.sink.account.budget.limit`` (gauge): that window's limit, by ``account``. Two
  gauges rather than a ratio: the accounts lumped in ``other`` add up (used / limit of their
  sums is their share), where ratios would not
- ``connector.sink.account.throttled`` (counter): 429 answers, by ``account`` (its key)
- ``connector.sink.account.dead_letters`` (counter): sink dead letters whose platform account is
  known, by ``account`` (the ``externalAccountId``) and ``reason``
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from connector.telemetry.accounts import DEFAULT_ACCOUNT_SERIES_LIMIT, AccountLabels

RECORDS_IN = "connector.records.in"
RECORDS_OUT = "connector.records.out"
DEAD_LETTERS = "connector.dead_letters"
HUBSPOT_DURATION = "connector.hubspot.request.duration"
HUBSPOT_THROTTLED = "connector.hubspot.throttled"
HUBSPOT_RETRIES = "connector.hubspot.retries"
RATE_BUDGET = "connector.hubspot.rate_budget.remaining"
CONSUMER_LAG = "connector.consumer.lag"
BATCH_FILL = "connector.sink.batch.fill_ratio"
IN_FLIGHT = "connector.sink.requests.in_flight"
OPEN_ATTENDANCES = "connector.normalizer.attendances.open"
STATE_SIZE = "connector.normalizer.state.size"
WORKER_STALLED = "connector.worker.stalled"
WORKER_PROGRESS_AGE = "connector.worker.progress.age"
ACCOUNT_BUDGET_USED = "connector.sink.account.budget.used"
ACCOUNT_BUDGET_LIMIT = "connector.sink.account.budget.limit"
ACCOUNT_THROTTLED = "connector.sink.account.throttled"
ACCOUNT_DEAD_LETTERS = "connector.sink.account.dead_letters"

#: Seconds; HubSpot answers in tens to hundreds of ms, batches can take seconds, timeout is 30 s.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FILL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


class AccountBudget(Protocol):
    """What the per-account budget gauges read when metrics are collected (the sink's
    ``RateBudget``; telemetry does not import the sink)."""

    @property
    def used(self) -> int:
        """Requests counted in the current window."""
        ...

    @property
    def window_limit(self) -> int:
        """Requests the window allows."""
        ...


class Metrics:
    """The metrics API workers call. This base records nothing: it is what telemetry-off gives."""

    #: True when calls are recorded.
    enabled = False

    def records_in(self, topic: str, count: int = 1) -> None:
        """``count`` records consumed from ``topic``."""

    def records_out(self, topic: str, count: int = 1) -> None:
        """``count`` records produced to ``topic`` (commands, changelog, ...)."""

    def dead_letter(self, topic: str, reason: str, count: int = 1) -> None:
        """``count`` records of ``topic`` dead-lettered for ``reason`` (a DecodeReason value...)."""

    def hubspot_request(self, operation: str, status: str, duration_s: float) -> None:
        """One HubSpot request (the tracing transport reports these; status "429" counts too)."""

    def hubspot_retry(self, operation: str, reason: str) -> None:
        """One retry of ``operation`` because of ``reason`` (e.g. "429", "timeout", "503")."""

    def batch_sent(self, operation: str, size: int, capacity: int) -> None:
        """One batch of ``size`` inputs sent, out of ``capacity`` allowed per request."""

    def set_rate_budget(self, *, window: int | None = None, daily: int | None = None) -> None:
        """Requests left in the rolling 10-second window and in the day (None: unchanged)."""

    def set_in_flight(self, count: int, target: int) -> None:
        """Work items (HubSpot requests) in flight now, and how many the sink aims for
        (about rate x latency)."""

    def set_open_attendances(self, count: int) -> None:
        """People currently in a session (joined and not left) across the worker's partitions."""

    def set_state_size(self, entries: int) -> None:
        """Entries held in the normalizer's state."""

    def set_consumer_lag(self, group: str, lags: Mapping[tuple[str, int], int]) -> None:
        """Lag per (topic, partition) of ``group``; replaces that group's previous values."""

    def set_worker_progress(self, worker: str, *, stalled: bool, seconds: float) -> None:
        """Whether ``worker`` is stalled, and for how many seconds it has had work without
        progress (see ``connector.telemetry.progress``)."""

    def watch_account_budget(self, account: str, budget: AccountBudget) -> None:
        """Report the rate budget of HubSpot account ``account`` (its key, never a token) from
        now on: read when metrics are collected, so the sink does nothing per request."""

    def account_throttled(self, account: str) -> None:
        """HubSpot answered 429 to a request for HubSpot account ``account`` (its key)."""

    def account_dead_letter(self, account: str, reason: str) -> None:
        """The sink dead-lettered a command of platform account ``account`` for ``reason``."""


NOOP_METRICS = Metrics()


class _Sums:
    """Monotonic sums by key, updated without a lock (one dict per thread), summed on read.

    A key is an attribute value, or a tuple of them when the metric has several attributes.
    """

    def __init__(self) -> None:
        self.local = threading.local()
        self._shards: list[dict[Any, int]] = []
        self._lock = threading.Lock()

    def shard(self) -> dict[Any, int]:
        """This thread's dict (created on first use)."""
        try:
            shard: dict[Any, int] = self.local.shard
        except AttributeError:
            shard = {}
            with self._lock:
                self._shards.append(shard)
            self.local.shard = shard
        return shard

    def totals(self) -> dict[Any, int]:
        """The sum over threads of every key."""
        with self._lock:
            shards = list(self._shards)
        total: dict[Any, int] = {}
        for shard in shards:
            for key, value in list(shard.items()):  # list() is atomic under the GIL
                total[key] = total.get(key, 0) + value
        return total


class ConnectorMetrics(Metrics):
    """Metrics recorded through an OpenTelemetry ``Meter`` (see the module docstring)."""

    enabled = True

    def __init__(self, meter: Meter, *,
                 account_series_limit: int = DEFAULT_ACCOUNT_SERIES_LIMIT) -> None:
        """``account_series_limit``: accounts with a series of their own (see
        :class:`~connector.telemetry.accounts.AccountLabels`), HubSpot accounts and platform
        accounts each."""
        self._in = _Sums()
        self._out = _Sums()
        self._dead = _Sums()
        self._throttled = _Sums()
        self._retries = _Sums()
        self._rate_budget: dict[str, int] = {}
        self._state: dict[str, int] = {}
        self._lag: dict[str, dict[tuple[str, int], int]] = {}
        self._progress: dict[str, tuple[int, float]] = {}
        self._in_flight: dict[str, int] = {}
        self._hubspot_accounts = AccountLabels(account_series_limit, kind="hubspot-account")
        self._platform_accounts = AccountLabels(account_series_limit, kind="platform-account")
        self._budgets: dict[str, tuple[str, AccountBudget]] = {}
        self._account_throttled = _Sums()
        self._account_dead = _Sums()

        meter.create_observable_counter(
            RECORDS_IN, [self._observe(self._in, ("topic",))], unit="{record}",
            description="Records consumed, by topic")
        meter.create_observable_counter(
            RECORDS_OUT, [self._observe(self._out, ("topic",))], unit="{record}",
            description="Records produced, by topic")
        meter.create_observable_counter(
            DEAD_LETTERS, [self._observe(self._dead, ("topic", "reason"))], unit="{record}",
            description="Records sent to a dead-letter topic, by source topic and reason")
        meter.create_observable_counter(
            HUBSPOT_THROTTLED, [self._observe(self._throttled, ("operation",))],
            unit="{request}", description="HubSpot answers with status 429, by operation")
        meter.create_observable_counter(
            HUBSPOT_RETRIES, [self._observe(self._retries, ("operation", "reason"))],
            unit="{request}", description="HubSpot requests retried, by operation and reason")
        self._duration = meter.create_histogram(
            HUBSPOT_DURATION, unit="s", description="HubSpot request duration",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS))
        self._fill = meter.create_histogram(
            BATCH_FILL, unit="1", description="Inputs per HubSpot batch request / maximum",
            explicit_bucket_boundaries_advisory=list(FILL_BUCKETS))
        meter.create_observable_gauge(
            RATE_BUDGET, [self._observe_rate_budget], unit="{request}",
            description="HubSpot requests left, by window (10s rolling, daily)")
        meter.create_observable_gauge(
            IN_FLIGHT, [self._observe_in_flight], unit="{request}",
            description="Sink work items in flight (kind=now) and the target (kind=target)")
        meter.create_observable_gauge(
            OPEN_ATTENDANCES, [self._observe_state("open_attendances")], unit="{attendance}",
            description="People currently in a session")
        meter.create_observable_gauge(
            STATE_SIZE, [self._observe_state("state_size")], unit="{entry}",
            description="Entries in the normalizer's state")
        meter.create_observable_gauge(
            CONSUMER_LAG, [self._observe_lag], unit="{record}",
            description="Records between the consumer's position and the high watermark")
        meter.create_observable_gauge(
            WORKER_STALLED, [self._observe_progress(0)], unit="1",
            description="1 while the worker has work and made no progress for its stall time")
        meter.create_observable_gauge(
            WORKER_PROGRESS_AGE, [self._observe_progress(1)], unit="s",
            description="Seconds the worker has had work without making progress (0 if idle)")
        self._account_instruments(meter)

    def _account_instruments(self, meter: Meter) -> None:
        """The per-account series (the module docstring), ``account`` bounded."""
        meter.create_observable_gauge(
            ACCOUNT_BUDGET_USED, [self._observe_budgets(lambda b: b.used)], unit="{request}",
            description="Requests counted in the HubSpot account's current rate window")
        meter.create_observable_gauge(
            ACCOUNT_BUDGET_LIMIT, [self._observe_budgets(lambda b: b.window_limit)],
            unit="{request}", description="Requests the HubSpot account's rate window allows")
        meter.create_observable_counter(
            ACCOUNT_THROTTLED, [self._observe(self._account_throttled, ("account",))],
            unit="{request}", description="HubSpot answers with status 429, by HubSpot account")
        meter.create_observable_counter(
            ACCOUNT_DEAD_LETTERS,
            [self._observe(self._account_dead, ("account", "reason"))], unit="{record}",
            description="Sink dead letters, by platform account and reason")

    # -- hot path ------------------------------------------------------------------------------

    # Inlined on purpose: a method call is a large share of so small a cost.

    def records_in(self, topic: str, count: int = 1) -> None:
        try:
            shard = self._in.local.shard
        except AttributeError:
            shard = self._in.shard()
        shard[topic] = shard.get(topic, 0) + count

    def records_out(self, topic: str, count: int = 1) -> None:
        try:
            shard = self._out.local.shard
        except AttributeError:
            shard = self._out.shard()
        shard[topic] = shard.get(topic, 0) + count

    def dead_letter(self, topic: str, reason: str, count: int = 1) -> None:
        shard = self._dead.shard()
        key = (topic, reason)
        shard[key] = shard.get(key, 0) + count

    # -- per request / batch -------------------------------------------------------------------

    def hubspot_request(self, operation: str, status: str, duration_s: float) -> None:
        self._duration.record(duration_s, {"operation": operation, "status": status})
        if status == "429":
            shard = self._throttled.shard()
            shard[(operation,)] = shard.get((operation,), 0) + 1

    def hubspot_retry(self, operation: str, reason: str) -> None:
        shard = self._retries.shard()
        key = (operation, reason)
        shard[key] = shard.get(key, 0) + 1

    def batch_sent(self, operation: str, size: int, capacity: int) -> None:
        if capacity > 0:
            self._fill.record(min(size / capacity, 1.0), {"operation": operation})

    # -- gauges --------------------------------------------------------------------------------

    def set_rate_budget(self, *, window: int | None = None, daily: int | None = None) -> None:
        if window is not None:
            self._rate_budget["10s"] = window
        if daily is not None:
            self._rate_budget["daily"] = daily

    def set_in_flight(self, count: int, target: int) -> None:
        self._in_flight["now"] = count
        self._in_flight["target"] = target

    def set_open_attendances(self, count: int) -> None:
        self._state["open_attendances"] = count

    def set_state_size(self, entries: int) -> None:
        self._state["state_size"] = entries

    def set_consumer_lag(self, group: str, lags: Mapping[tuple[str, int], int]) -> None:
        self._lag[group] = dict(lags)

    def set_worker_progress(self, worker: str, *, stalled: bool, seconds: float) -> None:
        self._progress[worker] = (int(stalled), seconds)

    # -- per account ---------------------------------------------------------------------------

    def watch_account_budget(self, account: str, budget: AccountBudget) -> None:
        self._budgets[account] = (self._hubspot_accounts.label(account), budget)

    def account_throttled(self, account: str) -> None:
        shard = self._account_throttled.shard()
        key = (self._hubspot_accounts.label(account),)
        shard[key] = shard.get(key, 0) + 1

    def account_dead_letter(self, account: str, reason: str) -> None:
        shard = self._account_dead.shard()
        key = (self._platform_accounts.label(account), reason)
        shard[key] = shard.get(key, 0) + 1

    # -- callbacks (run by the metric reader, on its thread) -----------------------------------

    @staticmethod
    def _observe(sums: _Sums, names: tuple[str, ...]) -> Any:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(value, dict(zip(names, key if isinstance(key, tuple) else (key,),
                                                 strict=True)))
                    for key, value in sums.totals().items()]
        return callback

    def _observe_budgets(self, read: Callable[[AccountBudget], int]) -> Any:
        """A callback reporting ``read(budget)`` by account label; the accounts lumped in
        ``other`` are summed (used and limit alike, so their ratio stays meaningful)."""
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            totals: dict[str, int] = {}
            for label, budget in list(self._budgets.values()):
                totals[label] = totals.get(label, 0) + read(budget)
            return [Observation(value, {"account": label}) for label, value in totals.items()]
        return callback

    def _observe_rate_budget(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(v, {"window": w}) for w, v in list(self._rate_budget.items())]

    def _observe_in_flight(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(v, {"kind": k}) for k, v in list(self._in_flight.items())]

    def _observe_state(self, name: str) -> Any:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            value = self._state.get(name)
            return [] if value is None else [Observation(value)]
        return callback

    def _observe_lag(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(lag, {"group": group, "topic": topic, "partition": str(partition)})
                for group, lags in list(self._lag.items())
                for (topic, partition), lag in list(lags.items())]

    def _observe_progress(self, index: int) -> Any:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(values[index], {"worker": worker})
                    for worker, values in list(self._progress.items())]
        return callback
