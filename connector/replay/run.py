"""Running replay against the cluster: the connection opened and closed around an operation, and
a backfill that SIGINT / SIGTERM stop (it then cleans up).

The commands (connector.cli.replay) parse options and print; `connector.replay.reset.reset` and
`run_backfill` here do the rest.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import uuid
from collections.abc import Iterator
from types import FrameType
from typing import TextIO

import click

from connector.config import Settings
from connector.replay.backfill import Backfill
from connector.replay.backfill_plan import BackfillPlan, BackfillReport, Names
from connector.replay.cluster import Cluster
from connector.replay.errors import ReplayError
from connector.replay.journal import PLAN, SENDING, read_journal
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
                 tty: bool, out: TextIO | None = None,
                 count_only: bool = False) -> BackfillReport:
    """Run the plan, showing progress (a bar when `tty`, else lines on `out` or stdout), until
    it is through, a step takes longer than `timeout` seconds, or a signal stops it.
    ``count_only``: only count the requests it would send (Backfill.count_requests)."""
    stop = threading.Event()
    with stop_on_signals(stop):
        backfill = Backfill(settings, cluster, plan, stop=stop, timeout=timeout,
                            progress=lambda label, total: Progress(label, total, tty=tty,
                                                                   out=out),
                            say=lambda line: click.echo(line, file=out))
        return backfill.count_requests() if count_only else backfill.run()


def resume_backfill(settings: Settings, cluster: Cluster, backfill_id: str, *, timeout: float,
                    tty: bool, out: TextIO | None = None) -> tuple[BackfillPlan, BackfillReport]:
    """Go on with a backfill that was killed (connector.replay.journal): its sending from the
    temporary sink group's committed offsets; or, when it had not started sending, the same
    plan again from the start under a new id (its leftovers deleted)."""
    journal = read_journal(settings.kafka, cluster, Names.for_id(settings, backfill_id).journal)
    if PLAN not in journal:
        raise ReplayError(f"no backfill {backfill_id} to resume: its journal topic is missing "
                          "or empty (it finished and was cleaned up, or never started)")
    plan = BackfillPlan.from_journal(settings, journal[PLAN], backfill_id)
    stop = threading.Event()

    def backfill(of: BackfillPlan) -> Backfill:
        return Backfill(settings, cluster, of, stop=stop, timeout=timeout,
                        progress=lambda label, total: Progress(label, total, tty=tty, out=out),
                        say=lambda line: click.echo(line, file=out))

    with stop_on_signals(stop):
        if SENDING in journal:
            return plan, backfill(plan).resume_sending(journal)
        backfill(plan).cleanup()  # nothing reached HubSpot: start again, afresh
        again = BackfillPlan.from_journal(settings, journal[PLAN], uuid.uuid4().hex[:8])
        click.echo(f"backfill {backfill_id} had not started sending: its plan runs again as "
                   f"backfill {again.names.backfill_id} (resume that id if this one is killed)",
                   file=out)
        return again, backfill(again).run()


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
