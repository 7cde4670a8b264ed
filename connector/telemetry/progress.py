"""Is each worker making progress? One :class:`ProgressWatch` per worker, read by ``/healthz``.

The rule
--------

A worker is **stalled** when it *has work* and has made *no progress* for
``stall_after_seconds`` (default :data:`STALL_AFTER_SECONDS`):

- **has work**: its consumer lag is above 0, or it holds work taken from Kafka — records
  consumed and not finished, finished offsets not yet committed, dead letters not yet
  delivered, an open transaction.
- **progress**: it finished something — a commit the broker confirmed, a work item applied or
  dead-lettered, a HubSpot request answered — or it is in a deliberate, bounded wait on HubSpot's
  clock (the rate budget, a retry backoff): a worker waiting for HubSpot is busy, not stalled.
- The clock starts when the work appears: a worker that is idle with no lag is healthy however
  long it idles, and one that gets work after an idle hour has the whole ``stall_after_seconds``
  to make progress.

When a worker turns stalled it logs one WARNING
``worker_stalled worker=... seconds=... waiting_on=... lag=... in_hand=...`` (``waiting_on``: the
call it is in, or what its state says it needs, e.g. ``kafka-commit``, ``kafka-fetch``,
``dead-letter-delivery``, ``transaction-commit``), and one INFO ``worker_recovered`` once it
progresses again or runs out of work. Meanwhile ``/healthz`` of ``connector run`` answers 503
naming the worker, what it waits on and for how long (a supervisor then restarts the process),
and the gauges ``connector.worker.stalled`` (0/1) and ``connector.worker.progress.age`` (seconds
with work and without progress; 0 while idle), by ``worker``, show it.

What this does not see: a consumer that never gets partitions (no coordinator) knows no lag, so
it reads as idle; the broker's own health is for the broker's monitoring.

Cost and threads: :meth:`ProgressWatch.progressed` is one clock read and one float store, the
other reports are attribute stores, so workers call them on their hot path.
:meth:`~ProgressWatch.check` runs on whatever thread asks (the HTTP server's, the monitor thread
of :meth:`ProgressBoard.monitor`, the worker's own) and only reads those attributes; the
stalled/recovered transition is decided under a lock so it is logged once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from connector.clock import Clock
from connector.telemetry.lag import cached_lag
from connector.telemetry.metrics import NOOP_METRICS, Metrics

__all__ = ["CHECK_SECONDS", "STALL_AFTER_SECONDS", "ProgressBoard", "ProgressStatus",
           "ProgressWatch", "cached_lag"]

log = logging.getLogger("connector.progress")


#: Seconds with work and without progress after which a worker counts as stalled. Longer than
#: any single bounded wait of a healthy worker (a HubSpot request with its timeout, a commit,
#: a transaction), short enough that a supervisor restarts a stuck process within minutes.
STALL_AFTER_SECONDS = 120.0

#: How often :meth:`ProgressBoard.monitor` checks every watch (logs and gauges follow it).
CHECK_SECONDS = 5.0


@dataclass(frozen=True)
class ProgressStatus:
    """One worker's state as :meth:`ProgressWatch.check` saw it."""

    worker: str
    stalled: bool
    has_work: bool
    #: Seconds with work and without progress (0.0 while idle).
    seconds_without_progress: float
    waiting_on: str
    lag: int | None
    in_hand: int
    stall_after_seconds: float

    def to_json(self) -> dict[str, Any]:
        """The JSON shape ``/healthz`` shows."""
        return {
            "status": "stalled" if self.stalled else ("busy" if self.has_work else "idle"),
            "seconds_without_progress": round(self.seconds_without_progress, 1),
            "waiting_on": self.waiting_on,
            "lag": self.lag,
            "in_hand": self.in_hand,
            "stall_after_seconds": self.stall_after_seconds,
        }


class ProgressWatch:
    """Progress of one worker against the stall rule (see the module docstring)."""

    def __init__(self, worker: str, stall_after_seconds: float = STALL_AFTER_SECONDS, *,
                 clock: Clock = time.monotonic, metrics: Metrics = NOOP_METRICS) -> None:
        if stall_after_seconds <= 0:
            raise ValueError("stall_after_seconds must be > 0")
        self.worker = worker
        self.stall_after_seconds = stall_after_seconds
        self._clock = clock
        self._metrics = metrics
        now = clock()
        self._last = now
        self._work_since = now
        self._has_work = False
        self._lag: int | None = None
        self._in_hand = 0
        self._waiting_on = "nothing"
        self._reported = False
        self._lock = threading.Lock()

    # -- what the worker reports (hot path: stores only) ---------------------------------------

    def progressed(self) -> None:
        """Something finished (a confirmed commit, a work item, an answered request), or the
        worker is in a deliberate wait on HubSpot's clock."""
        self._last = self._clock()

    def set_backlog(self, *, lag: int | None = None, in_hand: int = 0) -> None:
        """What the worker has to do: its consumer lag (None: unknown) and the work it holds."""
        has_work = (lag is not None and lag > 0) or in_hand > 0
        if has_work and not self._has_work:
            self._work_since = self._clock()  # before _has_work: a reader never sees it stale
        self._lag = lag
        self._in_hand = in_hand
        self._has_work = has_work

    def waiting_on(self, what: str) -> None:
        """What the worker is blocked on now (``kafka-commit``, ``hubspot-rate-budget``, ...)."""
        self._waiting_on = what

    # -- what the HTTP server, the monitor and the gauges read ---------------------------------

    def check(self) -> ProgressStatus:
        """Apply the rule now; log the transition to stalled (WARNING) or back (INFO) once;
        update the gauges."""
        now = self._clock()
        has_work = self._has_work
        since = max(self._last, self._work_since)
        seconds = max(now - since, 0.0) if has_work else 0.0
        stalled = has_work and seconds >= self.stall_after_seconds
        status = ProgressStatus(self.worker, stalled, has_work, seconds, self._waiting_on,
                                self._lag, self._in_hand, self.stall_after_seconds)
        with self._lock:
            if stalled and not self._reported:
                self._reported = True
                log.warning("worker_stalled worker=%s seconds=%.0f waiting_on=%s lag=%s "
                            "in_hand=%s stall_after=%.0f", self.worker, seconds,
                            status.waiting_on, status.lag, status.in_hand,
                            self.stall_after_seconds)
            elif not stalled and self._reported:
                self._reported = False
                log.info("worker_recovered worker=%s waiting_on=%s lag=%s in_hand=%s",
                         self.worker, status.waiting_on, status.lag, status.in_hand)
        self._metrics.set_worker_progress(self.worker, stalled=stalled, seconds=seconds)
        return status


class ProgressBoard:
    """The watches of one process: ``connector run`` gives one to each worker and to /healthz."""

    def __init__(self, stall_after_seconds: float = STALL_AFTER_SECONDS, *,
                 clock: Clock = time.monotonic, metrics: Metrics = NOOP_METRICS) -> None:
        self.stall_after_seconds = stall_after_seconds
        self._clock = clock
        self._metrics = metrics
        self._watches: dict[str, ProgressWatch] = {}
        self._lock = threading.Lock()

    def watch(self, worker: str) -> ProgressWatch:
        """The watch of ``worker`` (created on first use)."""
        with self._lock:
            watch = self._watches.get(worker)
            if watch is None:
                watch = ProgressWatch(worker, self.stall_after_seconds, clock=self._clock,
                                      metrics=self._metrics)
                self._watches[worker] = watch
            return watch

    def check(self) -> list[ProgressStatus]:
        """Every worker's status, by name."""
        with self._lock:
            watches = sorted(self._watches.values(), key=lambda w: w.worker)
        return [w.check() for w in watches]

    def monitor(self, stop: threading.Event, interval_seconds: float = CHECK_SECONDS) -> None:
        """Check every ``interval_seconds`` until ``stop`` is set (run it in a daemon thread):
        a stall is logged and counted even when nobody asks /healthz and the stuck worker
        cannot check itself."""
        while not stop.wait(interval_seconds):
            self.check()
