"""Kafka clients' life at its edges: waiting for a cluster that is away at start-up, and
closing without waiting forever.

``until_available`` is the one start-up wait of the workers: a broker restarting for seconds is
not an error, one away past the bound is a clear KafkaUnavailableError.

``Consumer.close()`` leaves the group and can wait on a group coordinator that is away (librdkafka
issue #3740: it keeps querying for the coordinator); a producer's ``flush`` waits for deliveries
to a broker that may not answer. A worker restarting a unit, or stopping, must not hang there:
the close runs on a daemon thread, and after ``seconds`` the caller goes on (the process's exit,
or the garbage collector, ends the client; Kafka's session timeout ends the membership).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from connector.kafka.admin import KafkaUnavailableError
from connector.kafka.clients import KafkaError, KafkaException
from connector.kafka.protocols import Closable

log = logging.getLogger(__name__)

T = TypeVar("T")
C = TypeVar("C", bound=Closable)

#: How long closing a client may take before the caller goes on without it.
CLOSE_SECONDS = 10.0


def close_within(close: Callable[[], object], seconds: float, what: str) -> bool:
    """Run ``close()`` for at most ``seconds``; True when it finished in time."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            close()
        except Exception as exc:  # a client that fails to close is closed enough for us
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"close-{what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        log.warning("kafka_close_timed_out client=%s seconds=%s", what, seconds)
        return False
    if failure:
        log.warning("kafka_close_failed client=%s error=%s", what, failure[0])
    return True


@contextlib.contextmanager
def closing(client: C, what: str, seconds: float = CLOSE_SECONDS) -> Iterator[C]:
    """``with closing(client, "what") as client:``, closed with `close_within` on the way out."""
    try:
        yield client
    finally:
        close_within(client.close, seconds, what)


#: Pauses between attempts while the cluster does not answer (the last one repeated).
RETRY_PAUSES_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)

#: Errors of a cluster that is away or busy for now (a broker restarting, a failover).
_TRANSIENT_CODES = frozenset({
    KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN,
    KafkaError._RESOLVE, KafkaError._WAIT_COORD, KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NOT_CONTROLLER, KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.BROKER_NOT_AVAILABLE, KafkaError.NETWORK_EXCEPTION,
})


def pause_before(attempt: int) -> float:
    """The pause before attempt ``attempt + 1`` after ``attempt`` failures (1-based)."""
    return RETRY_PAUSES_SECONDS[min(max(attempt, 1), len(RETRY_PAUSES_SECONDS)) - 1]


def is_transient(exc: BaseException) -> bool:
    """A Kafka error worth waiting out: retriable, or one of a cluster that is away (or whose
    brokers are all still fenced: CreateTopics on a KRaft broker that has just restarted, until
    its first heartbeat to the controller)."""
    if not isinstance(exc, KafkaException) or not exc.args:
        return False
    error = exc.args[0]
    if not isinstance(error, KafkaError):
        return False
    return (error.retriable() or error.code() in _TRANSIENT_CODES
            or (error.code() == KafkaError.INVALID_REPLICATION_FACTOR
                and "fenced" in error.str()))


def until_available(call: Callable[[float], T], *, what: str, servers: str,
                    give_up_seconds: float, stop: threading.Event,
                    retry_on: Callable[[BaseException], bool] = is_transient,
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], object] | None = None) -> T | None:
    """``call(seconds_left)`` at start-up, asked again while the cluster does not answer (errors
    ``retry_on`` accepts), with the pauses above, for up to ``give_up_seconds``; then
    KafkaUnavailableError. Other errors raise at once. None if ``stop`` was set meanwhile."""
    pause = sleep if sleep is not None else stop.wait
    deadline = clock() + give_up_seconds
    attempt = 0
    while True:
        try:
            result = call(max(deadline - clock(), 1.0))
        except Exception as exc:
            if not retry_on(exc):
                raise
            left = deadline - clock()
            if left <= 0:
                raise KafkaUnavailableError(
                    f"Kafka at {servers} did not answer for {give_up_seconds:.0f}s while "
                    f"{what} (last error: {exc}); check CONNECTOR_KAFKA__BOOTSTRAP_SERVERS and "
                    "the brokers") from exc
            attempt += 1
            delay = min(pause_before(attempt), left)
            log.warning("kafka_unavailable waiting_for=%r attempt=%s retry_in=%.1f left=%.0f "
                        "error=%s", what, attempt, delay, left, exc)
            pause(delay)
            if stop.is_set():
                return None
            continue
        if attempt:
            log.info("kafka_available waiting_for=%r attempts=%s", what, attempt + 1)
        return result
