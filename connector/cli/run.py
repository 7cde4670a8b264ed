"""`connector run normalizer|sink|all`: the long-running workers.

One :class:`~connector.telemetry.Telemetry` per process, built from ``settings.telemetry``, is
given to every worker and shut down (spans and metrics flushed) when they have stopped.

One :class:`~connector.telemetry.progress.ProgressBoard` per process: each worker reports its
progress to its watch, a monitor thread checks them every few seconds (a stalled worker logs
``worker_stalled`` and its gauge reads 1) and ``/healthz`` answers 503 while one is stalled.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

import click

from connector import stopping
from connector.cli.common import reports_errors, settings_from
from connector.config import Settings
from connector.serve.metrics import create_metrics_app
from connector.serve.server import serve_in_thread
from connector.telemetry import Telemetry
from connector.telemetry.progress import CHECK_SECONDS, ProgressBoard

log = logging.getLogger("connector.run")

Worker = Callable[[Settings, threading.Event], None]


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM / SIGINT ask the workers to finish their transaction or batch and exit."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping signal=%s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    if stopping.STOP.is_set():  # asked to stop while the process was still importing
        stop.set()


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


@click.command("run")
@click.argument("role", type=click.Choice(["normalizer", "sink", "all"]))
@click.pass_context
@reports_errors
def run_command(ctx: click.Context, role: str) -> None:
    """Run a worker until SIGTERM: the normalizer (platform topics -> commands), the sink
    (commands -> HubSpot), or both in one process for small deployments."""
    stop = threading.Event()
    stop_on_signals(stop)  # first: a SIGTERM during start-up still ends in a clean exit
    settings = settings_from(ctx)
    telemetry = Telemetry.from_settings(settings.telemetry)
    try:
        progress = ProgressBoard(stall_after_seconds(settings), metrics=telemetry.metrics)
        workers = role_workers(role, telemetry, progress)
        t = settings.telemetry
        log.info("starting role=%s bootstrap=%s traces=%s metrics=%s sample_ratio=%s", role,
                 settings.kafka.bootstrap_servers, t.traces if t.enabled else "none",
                 t.metrics if t.enabled else "none", t.trace_sample_ratio)
        with contextlib.ExitStack() as stack:
            if t.metrics_port:
                app = create_metrics_app(telemetry, alive=lambda: not stop.is_set(),
                                         progress=progress)
                server = stack.enter_context(serve_in_thread(app, t.metrics_host, t.metrics_port))
                log.info("metrics_serving url=%s/metrics", server.url)
            threading.Thread(target=progress.monitor, args=(stop, CHECK_SECONDS),
                             name="progress-monitor", daemon=True).start()
            run_workers(settings, workers, stop)
    finally:
        telemetry.shutdown()
    log.info("stopped role=%s", role)
    sys.exit(0)


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
