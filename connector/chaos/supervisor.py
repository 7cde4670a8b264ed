"""Keeps one worker process running, kills it on demand (SIGKILL: no goodbye), and records every
exit with its cause, so a run can tell a crash from a kill it ordered.

    killed        the harness sent SIGKILL (a `kill:` event)            expected
    stopped       SIGTERM, then exit 0 (or death by the SIGTERM itself)  expected
    closed        SIGKILL from close(), the harness unwinding             expected
    crashed       it exited while nobody asked it to                     unexpected
    failed-stop   SIGTERM, then a non-zero exit code                     unexpected
    stop-timeout  SIGTERM ignored for `stop_timeout` s, then SIGKILL     unexpected

Whatever happens (an exception, a test timeout, Ctrl-C), `close()` SIGKILLs and reaps the
process: use the supervisor as a context manager, or `stop_all` for several.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from connector.broker.process import die_with_parent

log = logging.getLogger(__name__)

EXPECTED_CAUSES = frozenset({"killed", "stopped", "closed"})
_REAP_SECONDS = 10.0  # a SIGKILLed process is gone by then unless the kernel is stuck
_TAIL_LINES = 15


@dataclass(frozen=True)
class WorkerExit:
    """One exit of a supervised process, with the end of what it wrote."""

    role: str
    pid: int
    returncode: int | None
    cause: str  # see the module docstring
    log_tail: str = ""

    @property
    def is_expected(self) -> bool:
        """True when the harness caused it (a kill, or a clean stop)."""
        return self.cause in EXPECTED_CAUSES

    def describe(self) -> str:
        tail = "\n".join(f"    | {line}" for line in self.log_tail.splitlines())
        return f"{self.role} pid={self.pid} {self.cause} returncode={self.returncode}" + (
            f"\n{tail}" if tail else "")


class Supervisor:
    """Runs `connector run <role>` (or `command`) with an environment; restarts it whenever it is
    not running. The process dies with the thread that started it (Linux)."""

    def __init__(self, role: str, env: dict[str, str], log_dir: Path,
                 command: Sequence[str] | None = None, *, log_level: str = "WARNING",
                 stop_timeout: float = 30.0):
        self.role = role
        self.command = list(command) if command is not None else [
            sys.executable, "-m", "connector", "--log-level", log_level, "run", role]
        self.env = {**os.environ, **env}
        self.log_path = log_dir / f"{role}.log"
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None
        #: where the current process's output starts in log_path (every start appends)
        self.log_offset = 0
        self.started_at = 0.0  # time.monotonic() of the last start
        self.starts = 0
        self.kills = 0
        self.exits: list[WorkerExit] = []

    @property
    def unexpected_exits(self) -> list[WorkerExit]:
        return [e for e in self.exits if not e.is_expected]

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check(self) -> WorkerExit | None:
        """Record an exit nobody asked for (a crash); None while it runs or was never started."""
        if self.process is None or self.process.poll() is None:
            return None
        return self._record("crashed")

    def ensure_running(self) -> WorkerExit | None:
        """Start the process if it is not running; a crash is recorded first (and returned),
        then restarted: the run goes on, what the restart recovers is part of the test."""
        if self.is_running():
            return None
        crash = self.check()
        if crash is not None:
            log.warning("chaos_unexpected_exit role=%s pid=%s returncode=%s", self.role,
                        crash.pid, crash.returncode)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.log_offset = out.tell()
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(self.command, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT,
                                            preexec_fn=die_with_parent())
        self.starts += 1
        log.info("chaos_start role=%s pid=%s", self.role, self.process.pid)
        return crash

    def kill(self) -> None:
        """SIGKILL, as a `kill:` event (expected). A process that already exited is a crash."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(_REAP_SECONDS)
            self.kills += 1
            self._record("killed")
            log.info("chaos_kill role=%s", self.role)
        else:
            self.check()

    def terminate(self) -> None:
        """Send SIGTERM (the first half of `stop`); a process already gone was a crash."""
        if self.process is not None and self.check() is None:
            self.process.send_signal(signal.SIGTERM)

    def finish_stop(self, deadline: float) -> WorkerExit | None:
        """Wait until `deadline` (monotonic) for the SIGTERMed process; SIGKILL it after that."""
        process = self.process
        if process is None:
            return None
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_REAP_SECONDS)
            log.warning("chaos_stop_timeout role=%s pid=%s timeout_s=%s", self.role,
                        process.pid, self.stop_timeout)
            return self._record("stop-timeout")
        code = process.returncode
        return self._record("stopped" if code in (0, -signal.SIGTERM) else "failed-stop")

    def stop(self) -> int | None:
        """SIGTERM and wait (the worker drains and commits), SIGKILL after `stop_timeout`;
        returns the exit code, None if it was not running."""
        self.terminate()
        if self.process is None:
            return None
        try:
            ended = self.finish_stop(time.monotonic() + self.stop_timeout)
        finally:
            self.close()
        return None if ended is None else ended.returncode

    def close(self) -> None:
        """SIGKILL and reap the process if it is still there; never raises for a dead one."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            try:
                process.wait(_REAP_SECONDS)
            except subprocess.TimeoutExpired:
                log.error("chaos_unreaped role=%s pid=%s", self.role, process.pid)
                return
            self._record("closed")
        else:
            self.check()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _record(self, cause: str) -> WorkerExit:
        process = self.process
        assert process is not None and process.returncode is not None
        self.process = None
        ended = WorkerExit(self.role, process.pid, process.returncode, cause,
                           "" if cause in EXPECTED_CAUSES else self.log_tail())
        self.exits.append(ended)
        return ended

    def log_tail(self, lines: int = _TAIL_LINES) -> str:
        """The last lines the current (or last) process wrote (not its predecessors)."""
        try:
            with self.log_path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(self.log_offset, size - 64 * 1024))
                text = handle.read().decode(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return "\n".join(text.splitlines()[-lines:]) or "(it wrote nothing)"


def stop_all(workers: Iterable[Supervisor], timeout: float | None = None) -> None:
    """SIGTERM every worker at once, wait for all within one bound (each one's `stop_timeout`
    unless `timeout`), SIGKILL what is left; every process is killed and reaped even if a step
    raises (KeyboardInterrupt included)."""
    workers = list(workers)
    try:
        for worker in workers:
            worker.terminate()
        started = time.monotonic()
        for worker in workers:
            bound = worker.stop_timeout if timeout is None else timeout
            worker.finish_stop(started + bound)
    finally:
        for worker in workers:
            try:
                worker.close()
            except Exception:  # one failure must not leave the others running
                log.exception("chaos_close_failed role=%s", worker.role)
