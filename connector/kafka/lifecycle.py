"""Closing Kafka clients without waiting forever.

``Consumer.close()`` leaves the group and can wait on a group coordinator that is away (librdkafka
issue #3740: it keeps querying for the coordinator); a producer's ``flush`` waits for deliveries
to a broker that may not answer. A worker restarting a unit, or stopping, must not hang there:
the close runs on a daemon thread, and after ``seconds`` the caller goes on (the process's exit,
or the garbage collector, ends the client; Kafka's session timeout ends the membership).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


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
