"""The embedded broker's Java classpath: resolved once with Maven, then cached.

`kafka/pom.xml` names the Kafka version and a log4j2 binding. Maven downloads the jars into the
local repository (~/.m2) and prints the classpath; we keep that string under `.cache/kafka/`
beside a hash of the pom, so later runs start the broker without calling Maven at all. The
cache is rebuilt when the pom changes or a cached jar has disappeared (e.g. ~/.m2 was wiped).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from connector.errors import BrokerError

__all__ = ["DEFAULT_CACHE_DIR", "DEFAULT_POM", "resolve_classpath"]

log = logging.getLogger(__name__)

_REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POM = _REPO_ROOT / "kafka" / "pom.xml"
DEFAULT_CACHE_DIR = _REPO_ROOT / ".cache" / "kafka"

_CLASSPATH_FILE = "classpath.txt"
_HASH_FILE = "pom.sha256"
_LOCK_FILE = ".lock"
_MAVEN_TAIL_LINES = 30
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # Maven colours even with -B sometimes


def resolve_classpath(
    pom: Path = DEFAULT_POM,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    *,
    mvn: str = "mvn",
    timeout: float = 900.0,
) -> str:
    """Return the broker's classpath, resolving it with Maven only when the cache is stale."""
    if not pom.is_file():
        raise BrokerError(f"Kafka pom not found at {pom}; it lists the broker's jars")
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Parallel test processes may race to resolve; the lock makes one resolve, the rest reuse.
    with _locked(cache_dir / _LOCK_FILE):
        cached = _read_cache(cache_dir, digest)
        if cached is not None:
            log.debug("classpath_cached cache_dir=%s", cache_dir)
            return cached
        classpath = _run_maven(pom, cache_dir, mvn=mvn, timeout=timeout)
        # Classpath first, hash last: a crash in between leaves a mismatch, hence a re-resolve.
        _write_atomic(cache_dir / _CLASSPATH_FILE, classpath)
        _write_atomic(cache_dir / _HASH_FILE, digest)
        log.info("classpath_resolved pom=%s jars=%d", pom, len(classpath.split(os.pathsep)))
        return classpath


def _read_cache(cache_dir: Path, digest: str) -> str | None:
    """The cached classpath if it belongs to this pom and every jar still exists."""
    try:
        stored_digest = (cache_dir / _HASH_FILE).read_text().strip()
        classpath = (cache_dir / _CLASSPATH_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    if stored_digest != digest or not classpath:
        return None
    if not all(Path(entry).exists() for entry in classpath.split(os.pathsep)):
        log.info("classpath_stale reason=missing_jar cache_dir=%s", cache_dir)
        return None
    return classpath


def _run_maven(pom: Path, cache_dir: Path, *, mvn: str, timeout: float) -> str:
    executable = shutil.which(mvn)
    if executable is None:
        raise BrokerError(
            f"Maven ({mvn!r}) not found on PATH; it is needed once to download the Kafka "
            f"broker's jars listed in {pom}"
        )
    output_file = cache_dir / f"{_CLASSPATH_FILE}.maven-{os.getpid()}"
    command = [
        executable,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        "dependency:build-classpath",
        f"-Dmdep.outputFile={output_file}",
        "-Dmdep.includeScope=runtime",
    ]
    log.info("classpath_resolving pom=%s", pom)
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
            f"Maven did not resolve {pom} within {timeout:.0f}s:\n{_tail(exc.output)}"
        ) from exc
    try:
        if result.returncode != 0:
            raise BrokerError(
                f"Maven failed (exit {result.returncode}) resolving {pom}:\n{_tail(result.stdout)}"
            )
        try:
            classpath = output_file.read_text().strip()
        except FileNotFoundError:
            classpath = ""
        if "kafka_2.13" not in classpath:
            raise BrokerError(
                f"Maven produced no usable classpath for {pom}:\n{_tail(result.stdout)}"
            )
        return classpath
    finally:
        output_file.unlink(missing_ok=True)


def _tail(output: str | bytes | None, lines: int = _MAVEN_TAIL_LINES) -> str:
    if output is None:
        return "(no output)"
    if isinstance(output, bytes):
        output = output.decode(errors="replace")
    text = _ANSI_ESCAPE.sub("", output).strip()
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
