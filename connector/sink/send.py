"""One HubSpot request under the rate budget, with retries for what can succeed later.

:meth:`RequestSender.send` reserves a slot of the :class:`~connector.sink.budget.RateBudget`
(waiting with the injected ``sleep`` when there is none), sends, and settles the budget from the
answer's rate-limit headers. A daily 429 waits for the reset, uncharged; a 401/403 raises
:class:`~connector.sink.errors.HubSpotAccessError`. :meth:`RequestSender.call` runs that under
the :class:`~connector.sink.retry.RetryPolicy`; time queued behind the budget is not charged to
the retry budget. Every failed attempt counts on the commands it was for.

Requests of several work items go out together from a pool's threads (:mod:`~connector.sink.
flight`): :meth:`RequestSender.carrying` makes a :class:`~connector.sink.flight.Flight` the
calling thread's for the duration, so its first request uses the slot reserved for it and its
waits sleep its way. Each answer's round trip is reported to ``on_latency``.

A sender writes to one HubSpot account: its log lines name the account's key (never its
token), and in app mode (``account`` given) each 429 counts for that account
(``connector.sink.account.throttled``). In private-app mode there is one account:
``connector.hubspot.throttled`` is its count.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from connector.clock import Clock
from connector.hubspot import HubSpotError, HubSpotHTTPError, RateLimitedError, Response
from connector.installs.routing import DEFAULT_ACCOUNT_KEY
from connector.sink.budget import RateBudget
from connector.sink.errors import HubSpotAccessError
from connector.sink.flight import Flight
from connector.sink.retry import Disposition, RetryPolicy, classify
from connector.sink.work import PendingCommand
from connector.telemetry import NOOP_METRICS, Metrics

T = TypeVar("T")
log = logging.getLogger("connector.sink")


class RequestSender:
    """Sends requests through one rate budget and one retry policy."""

    def __init__(self, *, budget: RateBudget, policy: RetryPolicy, clock: Clock,
                 sleep: Callable[[float], None],
                 on_latency: Callable[[float], None] = lambda _seconds: None,
                 access_fatal: bool = True, account: str | None = None,
                 metrics: Metrics = NOOP_METRICS) -> None:
        """``access_fatal``: a 401/403 stops the worker (one token for every account); else it
        fails the request's commands alone (one HubSpot account among many, app mode).
        ``account``: the key of the HubSpot account written to (``Route.account_key``), whose
        429s count in ``metrics`` per account (None: private-app mode's one account, not
        counted apart)."""
        self._budget = budget
        self._account = account
        self._account_name = account or DEFAULT_ACCOUNT_KEY  # what log lines say
        self._metrics = metrics
        self._access_fatal = access_fatal
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._on_latency = on_latency
        self._local = threading.local()
        self._count = threading.Lock()
        self.requests = 0

    @contextmanager
    def carrying(self, flight: Flight | None) -> Iterator[None]:
        """The calling thread sends ``flight``'s requests for the duration."""
        self._local.flight = flight
        try:
            yield
        finally:
            self._local.flight = None

    def _flight(self) -> Flight | None:
        flight: Flight | None = getattr(self._local, "flight", None)
        return flight

    def _wait(self, seconds: float) -> None:
        flight = self._flight()
        sleep = flight.sleep if flight is not None and flight.sleep is not None else self._sleep
        sleep(seconds)

    def _round_trip(self, seconds: float) -> None:
        self._budget.round_trip(seconds)
        self._on_latency(seconds)

    def _reserve(self) -> float:
        """0.0 when this thread may send now (a prepaid slot or a new one); else the wait."""
        flight = self._flight()
        ticket = flight.take_ticket() if flight is not None else None
        if ticket is not None:
            self._budget.adopt(ticket)
            return 0.0
        return self._budget.reserve()

    def now_ms(self) -> int:
        """The clock in epoch milliseconds (failure times of commands)."""
        return int(self._clock() * 1000)

    def send(self, fn: Callable[[], Response[T]], items: Sequence[PendingCommand],
             waited: list[float] | None = None) -> Response[T]:
        """One request under the rate budget; a daily 429 waits for the reset, uncharged.
        ``waited[0]`` accumulates the seconds spent waiting for the budget."""
        waited = waited if waited is not None else [0.0]
        while True:
            delay = self._reserve()
            if delay > 0:
                started = self._clock()
                log.debug("sink.rate_wait account=%s seconds=%.3f", self._account_name, delay)
                self._wait(delay)
                waited[0] += self._clock() - started
                continue
            with self._count:
                self.requests += 1
            sent = self._clock()
            try:
                response = fn()
            except HubSpotHTTPError as exc:
                self._round_trip(self._clock() - sent)
                self._settle_error(exc)
                if isinstance(exc, RateLimitedError) and exc.is_daily:
                    self._daily_exhausted(exc, items)
                    continue
                raise
            except HubSpotError:
                self._budget.settle(None)
                raise
            except BaseException:
                self._budget.settle(None)  # a bug: the slot is settled all the same
                raise
            self._round_trip(self._clock() - sent)
            self._budget.settle(response.rate_limit)
            return response

    def _settle_error(self, error: HubSpotHTTPError) -> None:
        """Settle the budget from an error answer (a 429 counts for the account); 401/403 stop
        the worker (when fatal)."""
        throttled = isinstance(error, RateLimitedError)
        self._budget.settle(error.rate_limit, admitted=not throttled)
        if throttled and self._account is not None:
            self._metrics.account_throttled(self._account)
        if self._access_fatal and classify(error) is Disposition.FATAL:
            raise HubSpotAccessError.from_http_error(error) from error

    def _daily_exhausted(self, error: RateLimitedError, items: Sequence[PendingCommand]) -> None:
        log.warning("sink.daily_limit account=%s correlation_id=%s", self._account_name,
                    error.correlation_id)
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
        flight = self._flight()
        return self._policy.run(
            lambda: self.send(fn, items, waited),
            sleep=flight.sleep if flight is not None else None,  # None: the policy's
            origin=min(failures) / 1000 if failures else None,
            excluded=lambda: waited[0],
            on_failure=lambda _error: self._failed(items),
        )
