"""Work in flight: requests to HubSpot sent together, each on a thread of a pool.

HubSpot answers a batch in a quarter of a second or more, so one request at a time caps the
sink at 1 / latency requests per second, whatever its rate limit allows. The sink keeps about
``rate x latency`` requests in the air instead (:class:`Concurrency`), each work item on a
thread of a :class:`~concurrent.futures.ThreadPoolExecutor` around the one synchronous
``httpx.Client``, each thread with a kept-alive connection of its own
(:class:`~connector.hubspot.transport.PerThreadTransport`).

Why threads and not an asyncio core: everything the sink decides (batching, order, offsets,
dead letters, the rate budget) stays on the consumer's thread, as before; a pool thread only
sends one work item's requests and returns its outcome, which the consumer's thread settles.
The blocking parts (librdkafka's poll, tenacity's retries, the synchronous client) stay as they
are, and at most a few dozen requests are in flight, far below where threads cost more than an
event loop. The GIL is released while a thread waits on the network, which is all they do.

A :class:`Flight` is one work item on its way: its rate-budget slot, reserved on the consumer's
thread when it was handed out (so the next decision already counts it), and how its waits
sleep: in short slices, ending with :class:`~connector.sink.errors.SinkInterrupted` as soon as
its work must stop (shutdown past the drain time, its partition revoked, a fatal error).
With a ceiling of one, work runs inline on the consumer's thread (:class:`InlineExecutor`) and
waits by polling Kafka, exactly one request at a time.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, TypeVar

from connector.sink.budget import Ticket
from connector.sink.work import Work

T = TypeVar("T")

#: A wait inside a flight looks at its interrupts at least this often.
SLICE_SECONDS = 0.05


@dataclass(eq=False, slots=True)
class Flight:
    """One work item in flight: its prepaid rate-budget slot and how it waits."""

    work: Work
    #: The slot reserved for its first request (None once used, or when none was free).
    ticket: Ticket | None = None
    #: How its waits sleep (None: the applier's own, which polls Kafka: inline only).
    sleep: Callable[[float], None] | None = None
    #: When it was handed out (the sink's clock).
    launched: float = 0.0

    def take_ticket(self) -> Ticket | None:
        """The prepaid slot, once."""
        ticket, self.ticket = self.ticket, None
        return ticket


def sliced_sleep(check: Callable[[], None]) -> Callable[[float], None]:
    """A sleep for a pool thread: real time, in slices, calling ``check()`` (which raises to
    end the wait) before each."""

    def sleep(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            check()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, SLICE_SECONDS))

    return sleep


class InlineExecutor(Executor):
    """Runs each submitted call at once on the caller's thread (one request at a time)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


class Concurrency:
    """How many work items may be in flight: about ``rate x latency`` (adaptively, from the
    observed latency of HubSpot's answers), never more than ``ceiling``.

    More than the rate needs would only hand out work earlier, in smaller batches; fewer would
    leave the rate budget unused while answers are on their way. The latency used is the
    moving average, but at most twice the quickest recent round trip: answers that slow down
    because the server is overloaded must not call for more requests in flight (which would
    overload it further), only a longer path does."""

    #: The share of latency samples the moving average gives the newest.
    SMOOTHING = 0.2
    #: Round trips the quickest one is taken from.
    KEPT = 256

    def __init__(self, ceiling: int, *, initial: int = 4) -> None:
        if ceiling < 1:
            raise ValueError("max_in_flight must be >= 1")
        self.ceiling = ceiling
        self._initial = min(initial, ceiling)
        self._average: float | None = None
        self._recent: deque[float] = deque(maxlen=self.KEPT)
        self._quickest = 0.0

    @property
    def latency(self) -> float | None:
        """The latency the target is computed from (None until an answer arrived)."""
        if self._average is None:
            return None
        return min(self._average, 2 * self._quickest)

    def observe(self, seconds: float) -> None:
        """One request's round trip (from any thread; a lost update is harmless). The
        quickest is found here, once per answer, not on every look at the target."""
        self._recent.append(seconds)
        self._quickest = min(self._recent)
        self._average = seconds if self._average is None else (
            self._average + self.SMOOTHING * (seconds - self._average))

    def target(self, requests_per_second: float | None) -> int:
        """Work items to keep in flight at this rate (None: no rate limit known)."""
        if self.ceiling == 1:
            return 1
        latency = self.latency
        if latency is None or requests_per_second is None:
            return self._initial if requests_per_second is not None else self.ceiling
        wanted = math.ceil(requests_per_second * latency * 1.25) + 1
        return max(2, min(self.ceiling, wanted))
