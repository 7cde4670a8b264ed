"""Keeps one worker process running, and kills it on demand (SIGKILL: no goodbye)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


class Supervisor:
    """Runs `connector run <role>` with an environment; restarts it whenever it is not running."""

    def __init__(self, role: str, env: dict[str, str], log_dir: Path):
        self.role = role
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
            self.process = subprocess.Popen(
                [sys.executable, "-m", "connector", "--log-level", "WARNING", "run", self.role],
                env=self.env, stdout=out, stderr=subprocess.STDOUT)
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
