"""Maven for the helper JVMs' files, and the cache beside it that spares later runs from Maven.

Both the broker's classpath (classpath.py) and the schema registry's distribution (registry.py)
come from a pom: Maven runs once, the result lands under `.cache/<name>/` with the pom's hash,
and a lock makes parallel test processes resolve once while the others wait and reuse.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from connector.broker.process import require_executable
from connector.errors import BrokerError

__all__ = [
    "cache_lock",
    "forget_digest",
    "output_tail",
    "pom_digest",
    "run_maven",
    "store_digest",
    "stored_digest",
    "write_atomic",
]

_HASH_FILE = "pom.sha256"
_LOCK_FILE = ".lock"
_TAIL_LINES = 30
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # Maven colours even with -B sometimes


# -- running Maven -------------------------------------------------------------------------------


def run_maven(
    pom: Path, goals: Sequence[str], *, mvn: str, timeout: float, doing: str, why: str
) -> str:
    """Run Maven quietly on `pom` with `goals`; return its output, or raise BrokerError.

    `doing` ends the error messages ("resolving <pom>"); `why` says why Maven is needed at all.
    """
    executable = require_executable(mvn, "Maven", why=why)
    command = [executable, "-q", "-B", "-Dstyle.color=never", "-f", str(pom), *goals]
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(
            f"Maven did not finish {doing} within {timeout:.0f}s:\n{output_tail(exc.output)}"
        ) from exc
    if result.returncode != 0:
        raise BrokerError(
            f"Maven failed (exit {result.returncode}) {doing}:\n{output_tail(result.stdout)}"
        )
    return result.stdout


def output_tail(output: str | bytes | None, lines: int = _TAIL_LINES) -> str:
    """The last `lines` lines of Maven's output, without colour codes."""
    if output is None:
        return "(no output)"
    if isinstance(output, bytes):
        output = output.decode(errors="replace")
    text = _ANSI_ESCAPE.sub("", output).strip()
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


# -- the cache -----------------------------------------------------------------------------------


def pom_digest(pom: Path) -> str:
    """The pom's SHA-256: the cache is valid only for the pom it was built from."""
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def stored_digest(cache_dir: Path) -> str | None:
    """The digest of the pom the cache was last built from, None when there is none."""
    try:
        return (cache_dir / _HASH_FILE).read_text().strip()
    except FileNotFoundError:
        return None


def store_digest(cache_dir: Path, digest: str) -> None:
    """Mark the cache as built from the pom with `digest`; callers write it last."""
    write_atomic(cache_dir / _HASH_FILE, digest)


def forget_digest(cache_dir: Path) -> None:
    """Mark the cache as stale before changing it in place."""
    (cache_dir / _HASH_FILE).unlink(missing_ok=True)


@contextlib.contextmanager
def cache_lock(cache_dir: Path) -> Iterator[None]:
    """Create `cache_dir` and hold its lock: parallel processes may race to build the cache."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / _LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_atomic(path: Path, text: str) -> None:
    """Write `text` and a newline so that readers see the old file or the new, never half."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)
