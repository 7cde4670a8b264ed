"""A real single-node Apache Kafka broker (KRaft, broker+controller in one JVM) for tests and demos.

    with EmbeddedKafka() as kafka:
        producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})

Each instance owns a temporary work directory (server.properties, log4j2 config, broker.log and
the data under data/) and one JVM bound to two free loopback ports. The JVM must never outlive
us: it is killed by the kernel when the thread that started it dies (PR_SET_PDEATHSIG), stopped
by an atexit hook on normal interpreter exit, and runs in its own session so a terminal's Ctrl-C
reaches only Python, which then stops it in order.

Caveat: PR_SET_PDEATHSIG fires when the *thread* that forked the JVM exits, so call start() and
restart() from a thread that lives as long as the broker should (normally the main thread).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from connector.broker.classpath import DEFAULT_CACHE_DIR, DEFAULT_POM, resolve_classpath
from connector.broker.kraft import (
    HOST,
    new_cluster_id,
    render_log4j2_config,
    render_server_properties,
)
from connector.broker.process import (
    die_with_parent,
    free_ports,
    require_executable,
    stop_process,
    tail_file,
)
from connector.errors import BrokerError
from connector.kafka import clients
from connector.kafka.clients import KafkaException

__all__ = ["EmbeddedKafka", "serve_forever"]

log = logging.getLogger(__name__)

_LOG_TAIL_LINES = 40
_PORT_ATTEMPTS = 3

# Fast start for a short-lived, small JVM: serial GC (no GC thread pool), no perf-data mmap file.
_JVM_FLAGS = ("-XX:+UseSerialGC", "-XX:-UsePerfData", "-Djava.awt.headless=true")


class EmbeddedKafka:
    """One real Kafka broker in a child JVM, on free loopback ports, in a temporary directory."""

    def __init__(
        self,
        *,
        heap: str = "512m",
        startup_timeout: float = 120.0,
        stop_timeout: float = 30.0,
        extra_config: Mapping[str, str] | None = None,
        log_level: str = "INFO",
        java: str = "java",
        mvn: str = "mvn",
        pom: Path = DEFAULT_POM,
        cache_dir: Path = DEFAULT_CACHE_DIR,
    ) -> None:
        self._heap = heap
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._extra_config = dict(extra_config or {})
        self._log_level = log_level
        self._java_name = java
        self._mvn = mvn
        self._pom = pom
        self._cache_dir = cache_dir
        self._java = ""
        self._classpath = ""
        self._workdir: Path | None = None
        self._ports: tuple[int, int] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- public surface ------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """The client listener as "127.0.0.1:PORT"; stable across restart()."""
        if self._ports is None:
            raise BrokerError("the embedded broker is not started")
        return f"{HOST}:{self._ports[0]}"

    @property
    def workdir(self) -> Path:
        """Temporary directory holding server.properties, broker.log and data/."""
        if self._workdir is None:
            raise BrokerError("the embedded broker is not started")
        return self._workdir

    @property
    def broker_log(self) -> Path:
        """The JVM's combined log4j/stdout/stderr output."""
        return self.workdir / "broker.log"

    @property
    def pid(self) -> int | None:
        """Process id of the broker JVM, None when it is not running."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines of broker.log, for error messages and failing tests."""
        return tail_file(self.broker_log, lines)

    def is_running(self) -> bool:
        """True while the broker JVM process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> EmbeddedKafka:
        """Resolve jars, format storage, launch the JVM and wait until the broker answers."""
        if self._workdir is not None:
            raise BrokerError("the embedded broker is already started")
        started = time.monotonic()
        self._java = require_executable(self._java_name, "Java")
        self._classpath = resolve_classpath(self._pom, self._cache_dir, mvn=self._mvn)
        self._workdir = Path(tempfile.mkdtemp(prefix="embedded-kafka-"))
        atexit.register(self.stop)
        try:
            (self._workdir / "log4j2.properties").write_text(render_log4j2_config(self._log_level))
            self._start_on_free_ports()
        except BaseException:
            self.stop()
            raise
        log.info(
            "broker_started bootstrap=%s pid=%s elapsed_s=%.1f workdir=%s",
            self.bootstrap_servers,
            self.pid,
            time.monotonic() - started,
            self._workdir,
        )
        return self

    def stop(self) -> None:
        """Stop the JVM (SIGTERM, then SIGKILL after stop_timeout) and delete the work directory."""
        atexit.unregister(self.stop)
        self._terminate(graceful=True)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            log.info("broker_stopped workdir=%s", self._workdir)
        self._workdir = None
        self._ports = None

    def restart(self, *, graceful: bool = True) -> None:
        """Stop the JVM and start it again on the same ports and data, without reformatting.

        graceful=False kills it with SIGKILL first, like a crash; Kafka then recovers its logs.
        """
        if self._workdir is None:
            raise BrokerError("the embedded broker is not started")
        started = time.monotonic()
        self._terminate(graceful=graceful)
        self._launch()
        self._wait_until_ready()
        log.info(
            "broker_restarted bootstrap=%s graceful=%s elapsed_s=%.1f",
            self.bootstrap_servers,
            graceful,
            time.monotonic() - started,
        )

    def __enter__(self) -> EmbeddedKafka:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- lifecycle steps -----------------------------------------------------------------------

    def _start_on_free_ports(self) -> None:
        # A free port can be taken between our probe and the JVM's bind; then try new ports.
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self._ports = free_ports(HOST)
            self.broker_log.unlink(missing_ok=True)  # judge each attempt by its own log
            self._format_storage()
            try:
                self._launch()
                self._wait_until_ready()
                return
            except BrokerError:
                if attempt == _PORT_ATTEMPTS or "Address already in use" not in self.log_tail():
                    raise
                log.warning("broker_port_clash attempt=%d ports=%s", attempt, self._ports)
                self._terminate(graceful=False)

    def _format_storage(self) -> None:
        workdir, (broker_port, controller_port) = self.workdir, self._require_ports()
        data_dir = workdir / "data"
        shutil.rmtree(data_dir, ignore_errors=True)
        properties = workdir / "server.properties"
        properties.write_text(
            render_server_properties(broker_port, controller_port, data_dir, self._extra_config)
        )
        command = [
            *self._jvm_command("-Xmx256m", "-XX:TieredStopAtLevel=1"),
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "--cluster-id",
            new_cluster_id(),
            "--config",
            str(properties),
        ]
        try:
            result = subprocess.run(
                command,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=self._startup_timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"formatting KRaft storage timed out in {workdir}") from exc
        if result.returncode != 0:
            output = result.stdout.decode(errors="replace").strip().splitlines()
            tail = "\n".join(output[-_LOG_TAIL_LINES:])
            raise BrokerError(
                f"formatting KRaft storage failed (exit {result.returncode}):\n{tail}"
            )

    def _launch(self) -> None:
        workdir = self.workdir
        command = [
            *self._jvm_command(f"-Xmx{self._heap}"),
            "kafka.Kafka",
            str(workdir / "server.properties"),
        ]
        # One file gets log4j's console output and anything the JVM itself prints (crashes).
        with self.broker_log.open("ab") as log_file:
            self._proc = subprocess.Popen(
                command,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        log.debug("broker_launched pid=%s bootstrap=%s", self._proc.pid, self.bootstrap_servers)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        admin = clients.admin(
            {"bootstrap.servers": self.bootstrap_servers},
            # Connection refused is expected while the JVM boots; keep librdkafka quiet
            # and retrying quickly instead of backing off towards 10s.
            {"log_level": 0, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 250},
        )
        last_error: Exception | None = None
        while True:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise BrokerError(
                    f"broker JVM exited with code {code} during startup; "
                    f"last lines of {self.broker_log}:\n{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerError(
                    f"broker at {self.bootstrap_servers} did not answer within "
                    f"{self._startup_timeout:.0f}s (last error: {last_error}); "
                    f"last lines of {self.broker_log}:\n{self.log_tail()}"
                )
            try:
                # Brokers are listed only once registered and unfenced, i.e. ready to serve.
                if admin.list_topics(timeout=min(2.0, remaining)).brokers:
                    return
            except KafkaException as exc:
                last_error = exc
            time.sleep(0.1)

    def _terminate(self, *, graceful: bool) -> None:
        # Forgotten only once reaped: a stop interrupted mid-wait (Ctrl-C, a test timeout during
        # restart()) leaves the JVM known to stop(), which then kills it.
        if self._proc is not None:
            stop_process(self._proc, graceful=graceful, timeout=self._stop_timeout)
        self._proc = None

    # -- helpers -------------------------------------------------------------------------------

    def _jvm_command(self, *flags: str) -> list[str]:
        log4j = self.workdir / "log4j2.properties"
        return [
            self._java,
            *flags,
            *_JVM_FLAGS,
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.workdir}",
            "-cp",
            self._classpath,
        ]

    def _require_ports(self) -> tuple[int, int]:
        if self._ports is None:
            raise BrokerError("the embedded broker has no ports assigned")
        return self._ports


def serve_forever(
    stop: threading.Event | None = None,
    *,
    on_ready: Callable[[EmbeddedKafka], None] | None = None,
    **options: Any,
) -> None:
    """Run one EmbeddedKafka until `stop` is set or Ctrl-C; options go to EmbeddedKafka()."""
    stop = stop or threading.Event()
    # Ctrl-C is the normal way out: swallow it inside, so the broker is stopped on the way out.
    with EmbeddedKafka(**options) as kafka, contextlib.suppress(KeyboardInterrupt):
        if on_ready is not None:
            on_ready(kafka)
        while not stop.wait(timeout=1.0):
            if not kafka.is_running():
                raise BrokerError(f"broker JVM died; last lines of its log:\n{kafka.log_tail()}")
