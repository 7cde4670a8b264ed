"""How the normalizer runs Python's cyclic garbage collector around its state.

The state (people, their sessions and stamps: millions of tracked containers) lives long and makes
no reference cycles; refcounting frees whatever it drops. Left to its thresholds, the collector
still walks every new state object in a young collection and each batch's live temporaries
several times a transaction. With Python's default thresholds, (700, 10, 10), that is a large
share of the loop's CPU, and with raised thresholds alone still a noticeable one; once frozen,
young collections all but vanish (docs/performance.md has the measurements;
`bench/normalizer.py --gc-stats` prints a run's collections).

So after each transaction is written everything alive is frozen (`gc.freeze`: moved out of the
collector's generations, in constant time), and the young threshold is above what one transaction
allocates: young collections then only see what the current transaction made, and rarely run at
all. The cycles a frozen object may become part of (an exception's traceback, a telemetry span)
are found by a full collection every `full_every` seconds, which unfreezes first: a pause that
grows with the state (logged at INFO when long), taken before a transaction begins or while the
loop is idle (none is open, no commit is in flight).

Freezing suits a process that runs the normalizer alone (`connector run normalizer`): with
telemetry off it makes no cyclic garbage after start-up. With telemetry on (traces to an
unreachable OTLP endpoint, /metrics scraped) it makes a slow, steady trickle of unreachable
objects, busy or idle: frozen, or below the young threshold, they wait for the next full
collection, so at most `full_every` seconds' worth is held. Beside a sink (`run all`, the demo,
tests) a freeze would hold the sink's cycles (httpx, retry tracebacks: many objects a second at
full rate) the same way, so there the policy only sets `SHARED_THRESHOLDS` and never freezes.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from types import TracebackType

log = logging.getLogger(__name__)

#: Young threshold above what one transaction of the default size allocates; the older
#: generations keep values that make full collections rare.
THRESHOLDS = (1_000_000, 50, 1000)
#: Without freezing (a process shared with other workers): young collections often enough for
#: their cycles, full ones rare (the defaults, (700, 10, 10), walk the state far too often).
SHARED_THRESHOLDS = (100_000, 50, 1000)
#: Seconds between full collections (unfrozen) while the loop runs.
FULL_EVERY_SECONDS = 600.0


class CollectorPolicy:
    """Context manager for the loop: thresholds set on entry, restored and unfrozen on exit."""

    def __init__(self, *, freeze: bool = False, full_every: float = FULL_EVERY_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.freeze = freeze
        self.full_every = full_every
        self._clock = clock
        self._saved = gc.get_threshold()
        self._next_full = 0.0

    def __enter__(self) -> CollectorPolicy:
        self._saved = gc.get_threshold()
        gc.set_threshold(*(THRESHOLDS if self.freeze else SHARED_THRESHOLDS))
        self._next_full = self._clock() + self.full_every
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.freeze:
            gc.unfreeze()
        gc.set_threshold(*self._saved)

    def collect_if_due(self) -> None:
        """Collect fully once `full_every` has passed since the last time (when freezing): call
        it while no transaction is open, under load and when idle alike."""
        if self.freeze and self._clock() >= self._next_full:
            self.collect_fully()

    def after_transaction(self) -> None:
        """Freeze what is alive now (when freezing): call it once a transaction is written."""
        if self.freeze:
            gc.freeze()

    def collect_fully(self) -> int:
        """Run a full collection now (unfrozen first, when freezing); returns the unreachable
        objects found."""
        if self.freeze:
            gc.unfreeze()
        started = time.perf_counter()
        found = gc.collect()
        seconds = time.perf_counter() - started
        log.log(logging.INFO if seconds >= 1.0 else logging.DEBUG,
                "gc_full_collection seconds=%.2f unreachable=%s", seconds, found)
        self._next_full = self._clock() + self.full_every
        return found
