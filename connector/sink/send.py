"""One HubSpot request under the rate budget, with retries for what can succeed later.

:meth:`RequestSender.send` reserves a slot of the :class:`~connector.sink.budget.RateBudget`
(waiting with the injected ``sleep`` when there is none), sends, and settles the budget from the
answer's rate-limit headers. A daily 429 waits for the reset, uncharged; a 401/403 raises
:class:`~connector.sink.errors.HubSpotAccessError`. :meth:`RequestSender.call` runs that under
the :class:`~connector.sink.retry.RetryPolicy`; time queued behind the budget is not charged to
the retry budget. Every failed attempt counts on the commands it was for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from connector.clock import Clock
from connector.hubspot import HubSpotError, HubSpotHTTPError, RateLimitedError, Response
from connector.sink.budget import RateBudget
from connector.sink.errors import HubSpotAccessError
from connector.sink.retry import Disposition, RetryPolicy, classify
from connector.sink.work import PendingCommand

T = TypeVar("T")
log = logging.getLogger("connector.sink")


class RequestSender:
    """Sends requests through one rate budget and one retry policy."""

    def __init__(self, *, budget: RateBudget, policy: RetryPolicy, clock: Clock,
                 sleep: Callable[[float], None]) -> None:
        self._budget = budget
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self.requests = 0

    def now_ms(self) -> int:
        """The clock in epoch milliseconds (failure times of commands)."""
        return int(self._clock() * 1000)

    def send(self, fn: Callable[[], Response[T]], items: Sequence[PendingCommand],
             waited: list[float] | None = None) -> Response[T]:
        """One request under the rate budget; a daily 429 waits for the reset, uncharged.
        ``waited[0]`` accumulates the seconds spent waiting for the budget."""
        waited = waited if waited is not None else [0.0]
        while True:
            delay = self._budget.reserve()
            if delay > 0:
                started = self._clock()
                log.debug("sink.rate_wait seconds=%.3f", delay)
                self._sleep(delay)
                waited[0] += self._clock() - started
                continue
            self.requests += 1
            try:
                response = fn()
            except HubSpotHTTPError as exc:
                self._settle_error(exc)
                if isinstance(exc, RateLimitedError) and exc.is_daily:
                    self._daily_exhausted(exc, items)
                    continue
                raise
            except HubSpotError:
                self._budget.settle(None)
                raise
            self._budget.settle(response.rate_limit)
            return response

    def _settle_error(self, error: HubSpotHTTPError) -> None:
        """Settle the budget from an error answer; 401/403 stop the worker."""
        self._budget.settle(error.rate_limit, admitted=not isinstance(error, RateLimitedError))
        if classify(error) is Disposition.FATAL:
            raise HubSpotAccessError.from_http_error(error) from error

    def _daily_exhausted(self, error: RateLimitedError, items: Sequence[PendingCommand]) -> None:
        log.warning("sink.daily_limit correlation_id=%s", error.correlation_id)
        self._budget.daily_exhausted()
        self._failed(items)

    def _failed(self, items: Sequence[PendingCommand]) -> None:
        now_ms = self.now_ms()
        for p in items:
            p.failed(now_ms)

    def call(self, fn: Callable[[], Response[T]], items: Sequence[PendingCommand]) -> Response[T]:
        """One request with retries for what can succeed later (the last error is raised)."""
        waited = [0.0]
        failures = [p.first_failure_ms for p in items if p.first_failure_ms is not None]
        return self._policy.run(
            lambda: self.send(fn, items, waited),
            origin=min(failures) / 1000 if failures else None,
            excluded=lambda: waited[0],
            on_failure=lambda _error: self._failed(items),
        )
