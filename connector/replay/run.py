"""Running replay against the cluster: the connection opened and closed around an operation, and
a backfill that SIGINT / SIGTERM stop (it then cleans up).

The commands (connector.cli.replay) parse options and print; `connector.replay.reset.reset` and
`run_backfill` here do the rest.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TextIO

from connector.config import Settings
from connector.replay.backfill import Backfill
from connector.replay.backfill_plan import BackfillPlan, BackfillReport
from connector.replay.cluster import Cluster
from connector.replay.progress import Progress


@contextlib.contextmanager
def open_cluster(settings: Settings) -> Iterator[Cluster]:
    """The cluster replay reads and commits through, closed when the block ends."""
    cluster = Cluster(settings.kafka.consumer_config())
    try:
        yield cluster
    finally:
        cluster.close()


def run_backfill(settings: Settings, cluster: Cluster, plan: BackfillPlan, *, timeout: float,
                 tty: bool, out: TextIO | None = None) -> BackfillReport:
    """Run the plan, showing progress (a bar when `tty`, else lines on `out` or stdout), until
    it is through, a step takes longer than `timeout` seconds, or a signal stops it."""
    stop = threading.Event()
    with stop_on_signals(stop):
        return Backfill(settings, cluster, plan, stop=stop, timeout=timeout,
                        progress=lambda label, total: Progress(label, total, tty=tty,
                                                               out=out)).run()


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT / SIGTERM set `stop`; the old handlers come back (off the main thread: nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
