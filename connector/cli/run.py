"""`connector run normalizer|sink|all`: the long-running workers.

One :class:`~connector.telemetry.Telemetry` per process, built from ``settings.telemetry``, is
given to every worker and shut down (spans and metrics flushed) when they have stopped.

One :class:`~connector.telemetry.progress.ProgressBoard` per process: each worker reports its
progress to its watch, a monitor thread checks them every few seconds (a stalled worker logs
``worker_stalled`` and its gauge reads 1) and ``/healthz`` answers 503 while one is stalled.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading

import click

from connector.cli.common import install_stop_handlers, reports_errors, settings_from
from connector.runtime.workers import role_workers, run_workers, stall_after_seconds
from connector.serve.metrics import create_metrics_app
from connector.serve.server import serve_in_thread
from connector.telemetry import Telemetry
from connector.telemetry.progress import CHECK_SECONDS, ProgressBoard

log = logging.getLogger("connector.run")


@click.command("run")
@click.argument("role", type=click.Choice(["normalizer", "sink", "all"]))
@click.pass_context
@reports_errors
def run_command(ctx: click.Context, role: str) -> None:
    """Run a worker until SIGTERM: the normalizer (platform topics -> commands), the sink
    (commands -> HubSpot), or both in one process for small deployments."""
    stop = threading.Event()
    install_stop_handlers(stop)  # first: a SIGTERM during start-up still ends in a clean exit
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

