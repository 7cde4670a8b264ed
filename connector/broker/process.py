"""Child-process plumbing for helper JVMs: die with the parent, free ports, log tails, stopping."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from connector.errors import BrokerError

__all__ = [
    "default_java",
    "die_with_parent",
    "free_port",
    "free_ports",
    "require_executable",
    "running_pid",
    "stop_process",
    "tail_file",
    "wait_until_ready",
]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_SIGKILL = int(signal.SIGKILL)


def _load_prctl() -> Callable[..., int] | None:
    # Loaded once in the parent: dlopen() in a forked child of a threaded process can deadlock.
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()


def die_with_parent() -> Callable[[], None]:
    """A preexec_fn asking the kernel to SIGKILL the child when the calling thread dies.

    Linux only (a no-op elsewhere). The kernel tracks the *thread* that forked, not the process.
    """
    parent_pid = os.getpid()

    def preexec() -> None:
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def free_ports(host: str) -> tuple[int, int]:
    """Two distinct free ports on `host`; the caller must bind them soon (they can be taken)."""
    # Both sockets are held open together so the kernel cannot hand out the same port twice.
    with socket.socket() as first, socket.socket() as second:
        first.bind((host, 0))
        second.bind((host, 0))
        return first.getsockname()[1], second.getsockname()[1]


def free_port(host: str) -> int:
    """One free port on `host`; the caller must bind it soon (it can be taken)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def default_java() -> str:
    """$JAVA_HOME/bin/java when that exists, else plain "java" (looked up on PATH)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    return "java"


def require_executable(name: str, what: str, *, why: str = "the embedded broker needs it") -> str:
    """Absolute path of `name` on PATH, or BrokerError naming what is missing and why."""
    path = shutil.which(name)
    if path is None:
        raise BrokerError(f"{what} ({name!r}) not found on PATH; {why}")
    return path


def tail_file(path: Path, lines: int) -> str:
    """The last `lines` lines of a (possibly large or missing) text file."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"(empty log at {path})"


def running_pid(proc: subprocess.Popen[bytes] | None) -> int | None:
    """The process id of `proc` while it runs, else None."""
    return proc.pid if proc is not None and proc.poll() is None else None


def stop_process(proc: subprocess.Popen[bytes], *, graceful: bool, timeout: float) -> None:
    """SIGTERM and wait up to `timeout` (if graceful), then SIGKILL; always reap the child."""
    if proc.poll() is None and graceful:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    if proc.poll() is None:
        if graceful:
            log.warning(
                "process_kill pid=%s reason=sigterm_timeout timeout_s=%s", proc.pid, timeout
            )
        proc.kill()
    proc.wait()


def wait_until_ready(
    proc: subprocess.Popen[bytes],
    probe: Callable[[float], str | None],
    *,
    timeout: float,
    name: str,
    address: str,
    log_excerpt: Callable[[], str],
) -> None:
    """Call probe(max_seconds) until it returns None, meaning ready (else it says why not).

    Raises BrokerError, ending with log_excerpt(), if `proc` exits or `timeout` passes first.
    """
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while (code := proc.poll()) is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrokerError(
                f"{name} at {address} did not answer within {timeout:.0f}s "
                f"(last error: {last_error}); {log_excerpt()}"
            )
        error = probe(min(2.0, remaining))
        if error is None:
            return
        last_error = error
        time.sleep(0.1)
    raise BrokerError(f"{name} JVM exited with code {code} during startup; {log_excerpt()}")
