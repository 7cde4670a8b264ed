"""A real, Confluent-API-compatible schema registry (Apicurio Registry) for tests and demos.

    with EmbeddedSchemaRegistry() as registry:
        client = SchemaRegistryClient({"url": registry.url})

Apicurio Registry 3.0.x serves the Confluent Schema Registry REST API under /apis/ccompat/v7;
`url` points there, so confluent-kafka's SchemaRegistryClient, AvroSerializer and
AvroDeserializer work against it unchanged. Storage is in-memory H2: every instance starts
empty and forgets everything when stopped.

The distribution comes from registry/pom.xml (a ready-built Quarkus app on Maven Central),
unpacked once under .cache/registry/ and unpacked again only when the pom changes.

Each instance owns a temporary work directory (registry.log, the JVM's tmp dir) and one JVM
bound to a free loopback port. The JVM must never outlive us: the kernel kills it when the
thread that started it dies (PR_SET_PDEATHSIG), an atexit hook stops it on normal interpreter
exit, and it runs in its own session so a terminal's Ctrl-C reaches only Python.

Caveat: PR_SET_PDEATHSIG fires when the *thread* that forked the JVM exits, so call start()
from a thread that lives as long as the registry should (normally the main thread).

Differences from Confluent's registry worth knowing in tests:
- The global compatibility level is enforced as a global rule (`compatibility`, BACKWARD by
  default like Confluent), but GET /config reports NONE; subject-level config reads back fine.
- Schema ids are Apicurio content ids: the same schema text under two subjects shares an id,
  as in Confluent; ids start at 1 in every fresh instance.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from connector.broker import maven
from connector.broker.process import (
    default_java,
    die_with_parent,
    free_port,
    require_executable,
    running_pid,
    stop_process,
    tail_file,
    wait_until_ready,
)
from connector.errors import BrokerError

__all__ = ["DEFAULT_CACHE_DIR", "DEFAULT_POM", "EmbeddedSchemaRegistry", "prepare_distribution"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POM = _REPO_ROOT / "registry" / "pom.xml"
DEFAULT_CACHE_DIR = _REPO_ROOT / ".cache" / "registry"

_HOST = "127.0.0.1"
_API_PATH = "/apis/ccompat/v7"
_DIST_DIR = "dist"
_RUNNER_GLOB = "apicurio-registry-app-*-runner.jar"
_LOG_TAIL_LINES = 40
_KEY_LINES = 5
_PORT_ATTEMPTS = 3
_PORT_CLASH_MARKERS = ("Address already in use", "Port already bound")

# Small and quick to start: serial GC, C1 only, no perf-data file.
_JVM_FLAGS = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Xss512k",
    "-Djava.awt.headless=true",
)

# Quarkus/Apicurio settings on top of the distribution's defaults (in-memory H2 storage).
_BASE_PROPERTIES: Mapping[str, str] = {
    "apicurio.storage.kind": "sql",
    "apicurio.storage.sql.kind": "h2",
    # The default pool keeps 20 idle connections to an in-memory database; a test needs few.
    "apicurio.datasource.jdbc.initial-size": "2",
    "apicurio.datasource.jdbc.min-size": "2",
    "apicurio.datasource.jdbc.max-size": "20",
    "quarkus.log.console.color": "false",
}


# -- the distribution (Maven, cached) ------------------------------------------------------------


def prepare_distribution(
    pom: Path = DEFAULT_POM,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    *,
    mvn: str = "mvn",
    timeout: float = 900.0,
) -> Path:
    """Return the registry's runner jar, unpacking the distribution with Maven when stale."""
    if not pom.is_file():
        raise BrokerError(f"schema registry pom not found at {pom}; it names the distribution")
    digest = maven.pom_digest(pom)
    with maven.cache_lock(cache_dir):
        runner = _cached_runner(cache_dir, digest)
        if runner is not None:
            return runner
        maven.forget_digest(cache_dir)  # Maven unpacks over the old distribution
        _run_maven(pom, cache_dir, mvn=mvn, timeout=timeout)
        runner = _find_runner(cache_dir / _DIST_DIR)
        if runner is None:
            raise BrokerError(f"Maven ran but left no {_RUNNER_GLOB} in {cache_dir / _DIST_DIR}")
        # Hash last: a crash before this leaves no hash, hence a fresh unpack next time.
        maven.store_digest(cache_dir, digest)
        log.info("registry_unpacked pom=%s runner=%s", pom, runner)
        return runner


def _cached_runner(cache_dir: Path, digest: str) -> Path | None:
    if maven.stored_digest(cache_dir) != digest:
        return None
    return _find_runner(cache_dir / _DIST_DIR)


def _find_runner(dist: Path) -> Path | None:
    runners = sorted(dist.glob(_RUNNER_GLOB))
    return runners[0] if runners and (dist / "lib").is_dir() else None


def _run_maven(pom: Path, cache_dir: Path, *, mvn: str, timeout: float) -> None:
    log.info("registry_unpacking pom=%s cache_dir=%s", pom, cache_dir)
    maven.run_maven(
        pom,
        ["generate-resources", f"-Dregistry.outputDirectory={cache_dir}"],
        mvn=mvn,
        timeout=timeout,
        doing=f"fetching the schema registry from {pom}",
        why=f"it is needed once to fetch {pom}'s files",
    )


# -- the registry process ------------------------------------------------------------------------


class EmbeddedSchemaRegistry:
    """One real schema registry in a child JVM, on a free loopback port, with in-memory storage."""

    def __init__(
        self,
        *,
        compatibility: str | None = "BACKWARD",
        heap: str = "256m",
        startup_timeout: float = 120.0,
        stop_timeout: float = 20.0,
        extra_properties: Mapping[str, str] | None = None,
        java: str | None = None,
        mvn: str = "mvn",
        pom: Path = DEFAULT_POM,
        cache_dir: Path = DEFAULT_CACHE_DIR,
    ) -> None:
        self._distribution = functools.partial(prepare_distribution, pom, cache_dir, mvn=mvn)
        self._java_name = java
        self._compatibility = compatibility
        self._heap = heap
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._extra_properties = dict(extra_properties or {})
        self._workdir: Path | None = None
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- public surface ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL for SchemaRegistryClient({"url": ...}): http://127.0.0.1:PORT/apis/ccompat/v7."""
        return f"http://{_HOST}:{self.port}{_API_PATH}"

    @property
    def port(self) -> int:
        """The loopback HTTP port the registry listens on."""
        return _started(self._port)

    @property
    def workdir(self) -> Path:
        """Temporary directory holding registry.log and the JVM's tmp dir."""
        return _started(self._workdir)

    @property
    def log_path(self) -> Path:
        """The JVM's combined log/stdout/stderr output."""
        return self.workdir / "registry.log"

    @property
    def pid(self) -> int | None:
        """Process id of the registry JVM, None when it is not running."""
        return running_pid(self._proc)

    def is_running(self) -> bool:
        """True while the registry JVM process is alive."""
        return self.pid is not None

    def start(self) -> EmbeddedSchemaRegistry:
        """Unpack the distribution if needed, launch the JVM and wait until the API answers."""
        if self._workdir is not None:
            raise BrokerError("the embedded schema registry is already started")
        started = time.monotonic()
        java = require_executable(
            self._java_name or default_java(),
            "Java 17+",
            why="the embedded schema registry needs it",
        )
        runner = self._distribution()
        self._workdir = workdir = Path(tempfile.mkdtemp(prefix="embedded-schema-registry-"))
        atexit.register(self.stop)
        try:
            (workdir / "tmp").mkdir()
            self._start_on_free_port(java, runner)
        except BaseException:
            self.stop()
            raise
        log.info(
            "registry_started url=%s pid=%s elapsed_s=%.1f workdir=%s",
            self.url,
            self.pid,
            time.monotonic() - started,
            workdir,
        )
        return self

    def stop(self) -> None:
        """Stop the JVM (SIGTERM, then SIGKILL after stop_timeout) and delete the work directory."""
        atexit.unregister(self.stop)
        self._terminate()
        workdir, self._workdir, self._port = self._workdir, None, None
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
            log.info("registry_stopped workdir=%s", workdir)

    def __enter__(self) -> EmbeddedSchemaRegistry:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- lifecycle steps ---------------------------------------------------------------------------

    def _start_on_free_port(self, java: str, runner: Path) -> None:
        # A free port can be taken between our probe and the JVM's bind; then try another.
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self._port = free_port(_HOST)
            try:
                self._wait_until_ready(self._launch(java, runner))
                return
            except BrokerError:
                tail = self._log_tail()
                if attempt == _PORT_ATTEMPTS or not any(m in tail for m in _PORT_CLASH_MARKERS):
                    raise
                log.warning("registry_port_clash attempt=%d port=%s", attempt, self._port)
                self._terminate()

    def _launch(self, java: str, runner: Path) -> subprocess.Popen[bytes]:
        command = [java, *self._jvm_flags(), "-jar", str(runner)]
        # One file gets Quarkus' console log and anything the JVM itself prints (crashes).
        with self.log_path.open("ab") as log_file:
            self._proc = proc = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        log.debug("registry_launched pid=%s url=%s", proc.pid, self.url)
        return proc

    def _jvm_flags(self) -> list[str]:
        return [
            *_JVM_FLAGS,
            f"-Xmx{self._heap}",
            f"-Djava.io.tmpdir={self.workdir / 'tmp'}",
            *(f"-D{key}={value}" for key, value in self._properties().items()),
        ]

    def _properties(self) -> dict[str, str]:
        tmp = str(self.workdir / "tmp")
        properties = {
            **_BASE_PROPERTIES,
            "quarkus.http.host": _HOST,
            "quarkus.http.port": str(self.port),
            "apicurio.storage.snapshot.location": tmp,
            "apicurio.import.work-dir": tmp,
        }
        if self._compatibility is not None:
            properties["apicurio.rules.global.compatibility"] = self._compatibility.upper()
        return {**properties, **self._extra_properties}

    def _wait_until_ready(self, proc: subprocess.Popen[bytes]) -> None:
        wait_until_ready(
            proc,
            lambda seconds: _probe(f"{self.url}/subjects", timeout=seconds),
            timeout=self._startup_timeout,
            name="schema registry",
            address=self.url,
            log_excerpt=lambda: f"registry.log excerpt:\n{self._log_tail()}",
        )

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, graceful=True, timeout=self._stop_timeout)

    def _log_tail(self) -> str:
        """The log's last errors and root causes, then its tail (a Java stack hides the cause)."""
        tail = tail_file(self.log_path, _LOG_TAIL_LINES)
        key_lines = _key_lines(self.log_path)
        if not key_lines:
            return tail
        return "errors and causes:\n" + "\n".join(key_lines) + "\n--- log tail ---\n" + tail


# -- helpers -------------------------------------------------------------------------------------

# Loopback only: never route the readiness probe through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _probe(url: str, *, timeout: float) -> str | None:
    """None when GET url answers 200 with a JSON list, else a short reason."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if isinstance(body, list) else f"unexpected body {body!r:.200}"


def _started(value: _T | None) -> _T:
    if value is None:
        raise BrokerError("the embedded schema registry is not started")
    return value


def _key_lines(log_path: Path) -> list[str]:
    """The log's last few errors and root causes."""
    try:
        text = log_path.read_bytes().decode(errors="replace")
    except OSError:
        return []
    return [
        line
        for line in text.splitlines()
        if line.startswith("Caused by:") or " ERROR " in line or "Exception in thread" in line
    ][-_KEY_LINES:]
