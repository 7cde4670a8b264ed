"""The embedded broker's Java classpath: resolved once with Maven, then cached.

`kafka/pom.xml` names the Kafka version and a log4j2 binding. Maven downloads the jars into the
local repository (~/.m2) and prints the classpath; we keep that string under `.cache/kafka/`
beside a hash of the pom, so later runs start the broker without calling Maven at all. The
cache is rebuilt when the pom changes or a cached jar has disappeared (e.g. ~/.m2 was wiped).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from connector.broker import maven
from connector.errors import BrokerError

__all__ = ["DEFAULT_CACHE_DIR", "DEFAULT_POM", "resolve_classpath"]

log = logging.getLogger(__name__)

_REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POM = _REPO_ROOT / "kafka" / "pom.xml"
DEFAULT_CACHE_DIR = _REPO_ROOT / ".cache" / "kafka"

_CLASSPATH_FILE = "classpath.txt"


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
    digest = maven.pom_digest(pom)
    with maven.cache_lock(cache_dir):
        cached = _read_cache(cache_dir, digest)
        if cached is not None:
            log.debug("classpath_cached cache_dir=%s", cache_dir)
            return cached
        classpath = _run_maven(pom, cache_dir, mvn=mvn, timeout=timeout)
        # Classpath first, hash last: a crash in between leaves a mismatch, hence a re-resolve.
        maven.write_atomic(cache_dir / _CLASSPATH_FILE, classpath)
        maven.store_digest(cache_dir, digest)
        log.info("classpath_resolved pom=%s jars=%d", pom, len(classpath.split(os.pathsep)))
        return classpath


def _read_cache(cache_dir: Path, digest: str) -> str | None:
    """The cached classpath if it belongs to this pom and every jar still exists."""
    if maven.stored_digest(cache_dir) != digest:
        return None
    try:
        classpath = (cache_dir / _CLASSPATH_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    if not classpath:
        return None
    if not all(Path(entry).exists() for entry in classpath.split(os.pathsep)):
        log.info("classpath_stale reason=missing_jar cache_dir=%s", cache_dir)
        return None
    return classpath


def _run_maven(pom: Path, cache_dir: Path, *, mvn: str, timeout: float) -> str:
    # Maven writes the classpath to a file; a per-process name keeps racing writers apart.
    output_file = cache_dir / f"{_CLASSPATH_FILE}.maven-{os.getpid()}"
    goals = [
        "dependency:build-classpath",
        f"-Dmdep.outputFile={output_file}",
        "-Dmdep.includeScope=runtime",
    ]
    log.info("classpath_resolving pom=%s", pom)
    try:
        output = maven.run_maven(
            pom,
            goals,
            mvn=mvn,
            timeout=timeout,
            doing=f"resolving {pom}",
            why=f"it is needed once to download the Kafka broker's jars listed in {pom}",
        )
        classpath = _read_output(output_file)
    finally:
        output_file.unlink(missing_ok=True)
    if "kafka_2.13" not in classpath:
        raise BrokerError(
            f"Maven produced no usable classpath for {pom}:\n{maven.output_tail(output)}"
        )
    return classpath


def _read_output(output_file: Path) -> str:
    try:
        return output_file.read_text().strip()
    except FileNotFoundError:
        return ""
