"""Retry policy (pure parts plus the tenacity wiring): what to retry, how long to wait, until when.

| failure                                              | disposition                       |
|------------------------------------------------------|-----------------------------------|
| 429 burst (TEN_SECONDLY_ROLLING), 423, 477, 5xx      | RETRY (backoff, Retry-After)      |
| timeout, connection refused/reset/dropped            | RETRY                             |
| 429 DAILY                                            | WAIT for the daily reset (budget) |
| 401, 403                                             | FATAL: stop the worker            |
| 404 on an event's external IDs or objectId           | event missing: park, retry later  |
| 400, 409, other 4xx, unexpected 2xx body             | DEAD_LETTER, never retried        |

Backoff: exponential with "equal jitter" (half fixed, half random) from ``base_seconds``,
capped at ``cap_seconds``, but never less than ``Retry-After`` when HubSpot sends one, nor less
than 2 s after a 423 (HubSpot's locks last 2 s). The total budget counts time spent failing:
time queued behind the rate budget or waiting out a daily limit is not charged (see
:class:`RetryPolicy`). ``sleep`` is injected, per policy or per call: requests in flight
together wait on their own threads, each with a sleep that ends early when its work must stop.
One policy serves every thread: a run keeps its state in its own tenacity ``Retrying``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception

from connector.clock import Clock
from connector.hubspot import (
    AuthenticationError,
    HubSpotError,
    HubSpotHTTPError,
    LockedError,
    MissingScopesError,
    NotFoundError,
    RateLimitedError,
    is_retriable,
)

T = TypeVar("T")
Sleep = Callable[[float], None]

LOCK_SECONDS = 2.0


class Disposition(Enum):
    """What to do with a failed request."""

    RETRY = "retry"
    WAIT_DAILY = "wait-daily"
    FATAL = "fatal"
    EVENT_MISSING = "event-missing"
    DEAD_LETTER = "dead-letter"


def classify(error: BaseException) -> Disposition:
    """The disposition of one failure (see the module table)."""
    if isinstance(error, AuthenticationError | MissingScopesError):
        return Disposition.FATAL
    if isinstance(error, RateLimitedError) and error.is_daily:
        return Disposition.WAIT_DAILY
    if is_retriable(error):
        return Disposition.RETRY
    if isinstance(error, NotFoundError):
        return Disposition.EVENT_MISSING
    return Disposition.DEAD_LETTER


def retry_after(error: BaseException) -> float | None:
    """The server's minimum wait for this failure, if it named one."""
    if isinstance(error, LockedError):
        return max(error.retry_after or 0.0, LOCK_SECONDS)
    if isinstance(error, HubSpotHTTPError):
        return error.retry_after
    return None


def backoff(
    attempt: int,
    *,
    base_seconds: float,
    cap_seconds: float,
    server_minimum: float | None,
    rng: random.Random,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    ceiling = min(cap_seconds, base_seconds * 2 ** max(0, attempt - 1))
    wait = ceiling / 2 + rng.uniform(0, ceiling / 2)
    return max(wait, server_minimum or 0.0)


class _Budget:
    """tenacity ``stop``: the next wait would end past the retry deadline."""

    def __init__(self, clock: Clock, deadline: Callable[[], float]) -> None:
        self._clock = clock
        self._deadline = deadline

    def __call__(self, state: RetryCallState) -> bool:
        return self._clock() + state.upcoming_sleep > self._deadline()


@dataclass
class RetryPolicy:
    """Runs one HubSpot call with retries for what can succeed later, within a total budget."""

    budget_seconds: float
    clock: Clock
    sleep: Sleep
    base_seconds: float = 0.5
    cap_seconds: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def wait_for(self, state: RetryCallState) -> float:
        """tenacity ``wait``: jittered exponential, at least Retry-After."""
        assert state.outcome is not None
        error = state.outcome.exception()
        return backoff(
            state.attempt_number,
            base_seconds=self.base_seconds,
            cap_seconds=self.cap_seconds,
            server_minimum=retry_after(error) if error else None,
            rng=self.rng,
        )

    def before_retry(self, error: BaseException | None) -> None:
        """Called right before waiting for a retry of ``error`` (a hook: counts nothing)."""

    def _before_sleep(self, state: RetryCallState) -> None:
        self.before_retry(state.outcome.exception() if state.outcome is not None else None)

    def run(
        self,
        call: Callable[[], T],
        *,
        sleep: Sleep | None = None,
        origin: float | None = None,
        excluded: Callable[[], float] = lambda: 0.0,
        on_failure: Callable[[HubSpotError], None] = lambda _e: None,
    ) -> T:
        """``call()`` until it succeeds, fails for good, or the budget is spent (then the last
        error is raised). ``sleep``: how this call waits (default: the policy's).
        ``origin``: when these commands first failed (epoch s; default: at
        the first failure now); ``excluded()``: seconds not to charge (rate-budget waits)."""
        first: list[float] = [origin] if origin is not None else []

        def attempt() -> T:
            try:
                return call()
            except HubSpotError as exc:
                if not first:
                    first.append(self.clock())
                on_failure(exc)
                raise

        def deadline() -> float:
            start = first[0] if first else self.clock()
            return start + self.budget_seconds + excluded()

        retrying = Retrying(
            sleep=sleep if sleep is not None else self.sleep,
            before_sleep=self._before_sleep,
            stop=_Budget(self.clock, deadline),
            wait=self.wait_for,
            retry=retry_if_exception(lambda e: classify(e) is Disposition.RETRY),
            reraise=True,
        )
        return retrying(attempt)
