"""Consumer lag per partition, fed to the ``connector.consumer.lag`` gauge.

Lag of a partition = its high watermark - the consumer's position (the next offset the
application will read). Both are local reads in librdkafka: ``get_watermark_offsets(cached=True)``
returns the high watermark of the last fetch response (fetches run in the background, so it
stays fresh while the consumer polls), and ``position()`` what the application consumed. Before
the first message of a partition is consumed the position is unknown; the committed offset is
asked once (a broker round trip) and used instead; with none, an empty partition (low == high
watermark) reads 0 and any other is left out until its first record is consumed.

Call :meth:`LagMonitor.maybe_refresh` from the poll loop (the consumer is not thread-safe to share
with the metric reader's thread, so the gauge only reads values computed here). Alternatively pass
:meth:`LagMonitor.on_stats` as the consumer's ``stats_cb`` with ``statistics.interval.ms`` set:
librdkafka's own ``consumer_lag`` is measured from the *committed* offset, so it runs a little
behind the position-based value between commits.

Telemetry never ends a worker: an exception from any consumer call (a broker away for a restart
makes ``committed()`` time out with ``_TIMED_OUT``) is caught and logged as one
``telemetry.lag_refresh_failed`` WARNING at most once per ``max(interval_s, 30 s)`` (``failures=``
counts the failed calls it stands for), and the refresh is tried again at the next interval; the
first complete refresh after that logs ``telemetry.lag_refresh_recovered`` (INFO). A failed
``committed()`` leaves out only the partitions it was asked for (the others are still reported);
any other failed call keeps the last good values. ``committed()`` runs on the poll loop's thread,
so its bound is short (2 s).

On a topic written with transactions the high watermark counts commit markers, which are never
delivered. The position moves past a marker once the fetch that holds it is processed, so a
caught-up consumer reads 0 (tests/integration/test_telemetry_pipeline.py), though for a moment
after the last record of a transaction it can read 1; a *committed* offset stays before the
marker (1 behind the high watermark).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from connector.kafka.clients import KafkaException, TopicPartition
from connector.telemetry.metrics import Metrics

log = logging.getLogger(__name__)

Lags = dict[tuple[str, int], int]

_COMMITTED_TIMEOUT_S = 2.0  # on the poll loop's thread: a broker away must not hold it long
_MIN_WARNING_INTERVAL_S = 30.0  # a long outage logs a line per this, not one per refresh


def partition_lag(consumer: Any, topic: str, partition: int, position: int) -> int | None:
    """The high watermark of the last fetch (cached: no broker round trip) minus ``position``;
    None while either is unknown. An empty partition lags 0 whatever the position."""
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
    if position < 0 and high is not None and high >= 0 and low == high:
        position = high  # an empty partition: nothing to read, whatever the reset
    if high is None or high < 0 or position < 0:
        return None
    return max(high - position, 0)


def cached_lag(consumer: Any, partitions: Iterable[tuple[str, int]] | None = None) -> int | None:
    """Records between the consumer's position and the end of ``partitions`` (default: its
    assignment), from what the consumer knows locally (`partition_lag`): it answers at once
    while the broker is away, with the last known end. None when no partition's lag is known
    yet, or the consumer fails."""
    try:
        if partitions is None:
            tps = [TopicPartition(tp.topic, tp.partition) for tp in consumer.assignment()]
        else:
            tps = [TopicPartition(topic, partition) for topic, partition in partitions]
        if not tps:
            return 0
        lags = [partition_lag(consumer, tp.topic, tp.partition, tp.offset)
                for tp in consumer.position(tps)]
    except (KafkaException, RuntimeError):  # e.g. a closed or failed consumer
        return None
    known = [lag for lag in lags if lag is not None]
    return sum(known) if known else None


class LagMonitor:
    """Computes one consumer group's lag per assigned partition and reports it as a gauge."""

    def __init__(self, metrics: Metrics, group: str, *, interval_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self.group = group
        self._interval_s = interval_s
        self._clock = clock
        self._next = 0.0
        self._committed: dict[tuple[str, int], int] = {}
        self._next_warning = float("-inf")
        self._unreported = 0  # failures since the last warning line
        self._failing = False
        self.last: Lags = {}

    def maybe_refresh(self, consumer: Any) -> None:
        """:meth:`refresh` at most once per ``interval_s`` (cheap to call on every poll)."""
        if not self._metrics.enabled:
            return
        now = self._clock()
        if now >= self._next:
            self._next = now + self._interval_s
            self.refresh(consumer)

    def refresh(self, consumer: Any) -> Lags:
        """Compute the lag of every assigned partition now, report it and return it.

        Never raises for a failing consumer call: see the module docstring."""
        try:
            lags, complete = self._compute(consumer)
        except Exception as exc:  # telemetry must not end the worker
            self._failed("refresh", exc)
            return self.last
        if complete:
            self._recovered()
        self._report(lags)
        return lags

    def _compute(self, consumer: Any) -> tuple[Lags, bool]:
        """The lags, and False if the committed offsets could not be asked (those left out)."""
        assignment = consumer.assignment()
        lags: Lags = {}
        complete = True
        if assignment:
            positions = consumer.position(assignment)
            unknown = [tp for tp in positions
                       if tp.offset < 0 and (tp.topic, tp.partition) not in self._committed]
            if unknown:
                complete = self._learn_committed(consumer, unknown)
            for tp in positions:
                key = (tp.topic, tp.partition)
                position = tp.offset if tp.offset >= 0 else self._committed.get(key, -1)
                lag = partition_lag(consumer, tp.topic, tp.partition, position)
                if lag is not None:  # not known yet: better no point than a wrong one
                    lags[key] = lag
        assigned = {(tp.topic, tp.partition) for tp in assignment or ()}
        self._committed = {k: v for k, v in self._committed.items() if k in assigned}
        return lags, complete

    def _report(self, lags: Lags) -> None:
        self.last = lags
        self._metrics.set_consumer_lag(self.group, lags)

    def _learn_committed(self, consumer: Any, partitions: list[Any]) -> bool:
        """Ask the broker for the committed offsets of ``partitions``; False if it failed."""
        query = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        try:
            committed = consumer.committed(query, timeout=_COMMITTED_TIMEOUT_S)
        except Exception as exc:  # KafkaException (_TIMED_OUT...) or any
            self._failed("committed", exc)
            return False
        for tp in committed:
            if tp.offset >= 0:
                self._committed[(tp.topic, tp.partition)] = tp.offset
        return True

    def _failed(self, call: str, exc: Exception) -> None:
        """One WARNING per warning interval, however many refreshes fail in it."""
        self._failing = True
        self._unreported += 1
        now = self._clock()
        if now < self._next_warning:
            return
        self._next_warning = now + max(self._interval_s, _MIN_WARNING_INTERVAL_S)
        log.warning("telemetry.lag_refresh_failed group=%s call=%s failures=%d error=%s",
                    self.group, call, self._unreported, exc)
        self._unreported = 0

    def _recovered(self) -> None:
        if self._failing:
            log.info("telemetry.lag_refresh_recovered group=%s unreported_failures=%d",
                     self.group, self._unreported)
            self._failing = False
            self._unreported = 0

    def on_stats(self, stats_json: str) -> None:
        """A ``stats_cb``: take librdkafka's ``consumer_lag`` of every assigned partition.

        Never raises (a callback's exception would surface from the worker's poll)."""
        try:
            lags = self._from_stats(json.loads(stats_json))
        except Exception as exc:  # telemetry must not end the worker
            self._failed("stats", exc)
            return
        self._recovered()
        self._report(lags)

    @staticmethod
    def _from_stats(stats: Any) -> Lags:
        lags: Lags = {}
        for topic, topic_stats in (stats.get("topics") or {}).items():
            for partition, p in (topic_stats.get("partitions") or {}).items():
                lag = p.get("consumer_lag", -1)
                if int(partition) < 0 or not p.get("desired", True) or lag is None or lag < 0:
                    continue
                lags[(topic, int(partition))] = lag
        return lags
