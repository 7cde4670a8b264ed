"""Keeps one worker process running, and kills it on demand (SIGKILL: no goodbye)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel SIGKILL the child when this process dies (Linux;
    strictly, when the thread that started the child ends: the chaos driver's loop thread).

    A chaos run that is itself killed (a test timeout, Ctrl-C twice) would otherwise leave its
    workers spinning on a broker that is gone. libc is resolved here, in the parent: the child
    between fork and exec only makes one call.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the call: nobody will signal
            os._exit(1)

    return preexec


class Supervisor:
    """Runs `connector run <role>` (or `command`) with an environment; restarts it whenever it is
    not running. The process dies with this one (Linux)."""

    def __init__(self, role: str, env: dict[str, str], log_dir: Path,
                 command: Sequence[str] | None = None):
        self.role = role
        self.command = list(command) if command is not None else [
            sys.executable, "-m", "connector", "--log-level", "WARNING", "run", role]
        self._preexec = _die_with_parent()
        self.env = {**os.environ, **env}
        self.log_path = log_dir / f"{role}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.exits: list[int] = []

    def ensure_running(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        if self.process is not None:
            self.exits.append(self.process.returncode)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, preexec_fn=self._preexec)
        self.starts += 1
        log.info("chaos_start role=%s pid=%s", self.role, self.process.pid)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.kills += 1
            log.info("chaos_kill role=%s", self.role)

    def stop(self) -> int | None:
        """SIGTERM and wait: the worker drains and commits; returns its exit code."""
        if self.process is None or self.process.poll() is not None:
            return None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)
