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

On a topic written with transactions the high watermark counts commit markers, which are never
delivered. The position moves past a marker once the fetch that holds it is processed, so a
caught-up consumer reads 0 (tests/integration/test_telemetry_pipeline.py), though for a moment
after the last record of a transaction it can read 1; a *committed* offset stays before the
marker (1 behind the high watermark).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import TopicPartition

from connector.telemetry.metrics import Metrics

Lags = dict[tuple[str, int], int]

_COMMITTED_TIMEOUT_S = 5.0


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
        """Compute the lag of every assigned partition now, report it and return it."""
        assignment = consumer.assignment()
        lags: Lags = {}
        if assignment:
            positions = consumer.position(assignment)
            unknown = [tp for tp in positions
                       if tp.offset < 0 and (tp.topic, tp.partition) not in self._committed]
            if unknown:
                self._learn_committed(consumer, unknown)
            for tp in positions:
                key = (tp.topic, tp.partition)
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), cached=True)
                position = tp.offset if tp.offset >= 0 else self._committed.get(key, -1)
                if position < 0 and high is not None and high >= 0 and low == high:
                    position = high  # an empty partition: nothing to read, whatever the reset
                if high is None or high < 0 or position < 0:
                    continue  # not known yet: better no point than a wrong one
                lags[key] = max(high - position, 0)
        assigned = {(tp.topic, tp.partition) for tp in assignment or ()}
        self._committed = {k: v for k, v in self._committed.items() if k in assigned}
        self.last = lags
        self._metrics.set_consumer_lag(self.group, lags)
        return lags

    def _learn_committed(self, consumer: Any, partitions: list[Any]) -> None:
        query = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        for tp in consumer.committed(query, timeout=_COMMITTED_TIMEOUT_S):
            if tp.offset >= 0:
                self._committed[(tp.topic, tp.partition)] = tp.offset

    def on_stats(self, stats_json: str) -> None:
        """A ``stats_cb``: take librdkafka's ``consumer_lag`` of every assigned partition."""
        stats = json.loads(stats_json)
        lags: Lags = {}
        for topic, topic_stats in (stats.get("topics") or {}).items():
            for partition, p in (topic_stats.get("partitions") or {}).items():
                lag = p.get("consumer_lag", -1)
                if int(partition) < 0 or not p.get("desired", True) or lag is None or lag < 0:
                    continue
                lags[(topic, int(partition))] = lag
        self.last = lags
        self._metrics.set_consumer_lag(self.group, lags)
