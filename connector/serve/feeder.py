"""``TableFeeder``: keeps serve's webinar table up to date from the webinars topic, in a thread.

It owns a :class:`~connector.runtime.table.WebinarTableReader` (every partition of the compacted
webinars topic, no consumer group) and polls it until ``stop`` is set. Readiness, for ``/readyz``:

* ``webinar_table`` — every partition was read to its end once (latched: later records only
  refresh the table; a lagging reader still answers from the newest rows it has);
* ``kafka`` — the cluster answered the last metadata probe (every ``probe_seconds``);
* ``reader`` — the feeding thread is running.

A reader that cannot be built (cluster down, topic missing) is retried every ``retry_seconds``;
nothing here raises into the caller's thread. The clock, the probe and the reader factory are
injected so tests drive it without a broker or a timer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from connector.runtime.table import WebinarTable

log = logging.getLogger("connector.serve")


class TableReader(Protocol):
    """What the feeder needs of a :class:`WebinarTableReader`."""

    table: WebinarTable

    def poll(self, timeout: float = 0.0, max_records: int = 1000) -> list[str]: ...

    def close(self) -> None: ...


def is_caught_up(reader: Any) -> bool:
    """Every partition of the reader's topic reached its end at least once since it started.

    ``WebinarTableReader.caught_up`` says it; readers without that property are judged by
    ``_at_end``/``_partitions``. A topic without partitions (missing) never counts as caught up.
    """
    caught_up = getattr(reader, "caught_up", None)
    if isinstance(caught_up, bool):
        return caught_up
    partitions = getattr(reader, "_partitions", None)
    at_end = getattr(reader, "_at_end", None)
    return bool(partitions) and at_end == partitions


class TableFeeder:
    """Polls a webinar-table reader in a daemon thread until ``stop`` is set."""

    def __init__(
        self,
        reader_factory: Callable[[], TableReader],
        stop: threading.Event,
        *,
        probe: Callable[[], object] | None = None,
        probe_seconds: float = 15.0,
        retry_seconds: float = 5.0,
        poll_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = reader_factory
        self._stop = stop
        self._probe = probe
        self._probe_seconds = probe_seconds
        self._retry_seconds = retry_seconds
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._reader: TableReader | None = None
        self._thread: threading.Thread | None = None
        self._next_probe = 0.0
        self.caught_up = False
        self.kafka_ok = probe is None
        self.last_error: str | None = None

    # ----------------------------------------------------------------- readiness

    def checks(self) -> dict[str, bool]:
        """Named readiness checks (cheap: flags only, safe from any thread)."""
        return {
            "webinar_table": self.caught_up,
            "kafka": self.kafka_ok,
            "reader": self._thread is not None and self._thread.is_alive(),
        }

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Run :meth:`run` in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="webinar-table-feeder",
                                        daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread (after ``stop`` was set)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """Step until ``stop`` is set, then close the reader."""
        try:
            while not self._stop.is_set():
                self.step()
        finally:
            self._close()

    def step(self) -> None:
        """One turn: probe Kafka when due, build the reader if needed, poll it."""
        now = self._clock()
        if self._probe is not None and now >= self._next_probe:
            self._next_probe = now + self._probe_seconds
            self._check_kafka()
        if self._reader is None and not self._build():
            self._stop.wait(self._retry_seconds)
            return
        assert self._reader is not None
        try:
            changed = self._reader.poll(self._poll_seconds)
        except Exception as exc:  # a broken consumer: rebuild it
            self._fail("poll", exc)
            self._close()
            return
        if changed:
            log.debug("serve.table_changed webinars=%s", len(changed))
        if not self.caught_up and is_caught_up(self._reader):
            self.caught_up = True
            log.info("serve.table_caught_up webinars=%s", len(self._reader.table))

    def _build(self) -> bool:
        try:
            reader = self._factory()
        except Exception as exc:  # foreign (librdkafka) failures: retried, reported in readyz
            self._fail("build", exc)
            return False
        if getattr(reader, "_partitions", None) == set():  # the topic does not exist (yet)
            self._fail("build", LookupError("the webinars topic has no partitions"))
            reader.close()
            return False
        self._reader = reader
        return True

    def _check_kafka(self) -> None:
        assert self._probe is not None
        try:
            self._probe()
        except Exception as exc:
            if self.kafka_ok:
                self._fail("probe", exc)
            self.kafka_ok = False
            return
        if not self.kafka_ok:
            log.info("serve.kafka_reachable")
        self.kafka_ok = True

    def _fail(self, stage: str, exc: BaseException) -> None:
        self.last_error = f"{stage}: {type(exc).__name__}: {exc}"
        log.warning("serve.table_reader_failed stage=%s error=%s", stage, exc)

    def _close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.close()
            except Exception as exc:  # closing a broken consumer must not hide the stop
                log.debug("serve.table_reader_close_failed error=%s", exc)
