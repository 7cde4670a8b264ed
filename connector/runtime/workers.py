"""Workers by role, run side by side: what `connector run`, the demo, replay and the tests start.

A :data:`Worker` is a function of the settings and a stop event that runs until the event is set
(then finishes its transaction or batch) or fails. :func:`run_workers` runs each in a thread of
its own, and the first to fail stops the others; :func:`role_workers` names the workers of a
role (normalizer, sink or all), each given the process's telemetry and its stall watch.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable

from connector.config import Settings
from connector.telemetry import Telemetry
from connector.telemetry.progress import ProgressBoard

log = logging.getLogger("connector.run")

#: Runs until the event is set (or raises); `connector run` starts one per role.
Worker = Callable[[Settings, threading.Event], None]


def run_workers(settings: Settings, workers: dict[str, Worker], stop: threading.Event) -> None:
    """Run each worker in its own thread; the first to fail stops the others."""
    failures: list[BaseException] = []

    def guarded(name: str, worker: Worker) -> None:
        try:
            worker(settings, stop)
        except BaseException as exc:
            log.error("worker_failed worker=%s error=%s", name, exc)
            failures.append(exc)
            stop.set()

    threads = [threading.Thread(target=guarded, args=item, name=item[0], daemon=True)
               for item in workers.items()]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(0.2)
    if failures:
        raise failures[0]


def stall_after_seconds(settings: Settings) -> float:
    """``[telemetry] stall_after_seconds``: no progress for this long with work = stalled."""
    return settings.telemetry.stall_after_seconds


def role_workers(role: str, telemetry: Telemetry,
                 progress: ProgressBoard | None = None) -> dict[str, Worker]:
    """The worker functions of a role (normalizer, sink or all), each given ``telemetry`` and
    its watch of ``progress``."""
    from connector.runtime.assemble import run_normalizer
    from connector.runtime.sink import run_sink

    workers: dict[str, Worker] = {}
    if role in ("normalizer", "all"):
        # Frozen state only in a process of its own: beside the sink it would freeze the sink's
        # short-lived cycles too (connector.normalize.collector).
        workers["normalizer"] = functools.partial(
            run_normalizer, telemetry=telemetry, freeze_state=role == "normalizer",
            progress=progress.watch("normalizer") if progress is not None else None)
    if role in ("sink", "all"):
        workers["sink"] = functools.partial(
            run_sink, telemetry=telemetry,
            progress=progress.watch("sink") if progress is not None else None)
    return workers


def pipeline_workers() -> dict[str, Worker]:
    """The normalizer and the sink, each building its own telemetry from the settings."""
    from connector.runtime.assemble import run_normalizer
    from connector.runtime.sink import run_sink

    return {"normalizer": run_normalizer, "sink": run_sink}
