"""HubSpot-like rate limits: a rolling window per key and a daily budget per account.

The key is the app id for private apps (window per app, daily budget of the default account) and
(app id, hub id) for OAuth installs (window per install, no daily budget: `daily_limit=None`).

The clock is injected (epoch seconds) so tests never sleep. Rejected requests do not consume
budget. Headers follow HubSpot's usage guidelines (reference §6).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

TEN_SECONDLY = "TEN_SECONDLY_ROLLING"
DAILY = "DAILY"


@dataclass(frozen=True)
class RateVerdict:
    """Outcome of one admission: `policy` names the exceeded limit, or None when admitted."""

    policy: str | None
    headers: dict[str, str]

    @property
    def is_allowed(self) -> bool:
        """Whether the request may be served."""
        return self.policy is None


class RateLimiter:
    """Rolling-window (per key) and daily (per account) admission with HubSpot headers."""

    def __init__(
        self,
        *,
        window_limit: int | None,
        window_seconds: float,
        daily_limit: int | None,
        clock: Callable[[], float],
        utc_offset_hours: float = 0.0,
    ) -> None:
        self.window_limit = window_limit
        self.window_seconds = window_seconds
        self.daily_limit = daily_limit
        self._clock = clock
        self._offset = utc_offset_hours * 3600.0
        self._windows: dict[Hashable, deque[float]] = {}
        self._day: int | None = None
        self._daily_used = 0

    def _day_of(self, now: float) -> int:
        return math.floor((now + self._offset) / 86400.0)

    def _prune(self, key: Hashable, now: float) -> deque[float]:
        window = self._windows.setdefault(key, deque())
        horizon = now - self.window_seconds
        while window and window[0] <= horizon:
            window.popleft()
        return window

    def _roll_day(self, now: float) -> None:
        day = self._day_of(now)
        if day != self._day:
            self._day = day
            self._daily_used = 0

    def admit(self, key: Hashable) -> RateVerdict:
        """Count one request for `key` (an app id, or (app id, hub id)) if both limits allow
        it."""
        now = self._clock()
        self._roll_day(now)
        window = self._prune(key, now)
        policy: str | None = None
        if self.daily_limit is not None and self._daily_used >= self.daily_limit:
            policy = DAILY
        elif self.window_limit is not None and len(window) >= self.window_limit:
            policy = TEN_SECONDLY
        if policy is None:
            window.append(now)
            self._daily_used += 1
        return RateVerdict(policy, self._headers(window))

    def peek(self, key: Hashable) -> dict[str, str]:
        """Headers describing the current budget without counting a request."""
        now = self._clock()
        self._roll_day(now)
        return self._headers(self._prune(key, now))

    def exhaust(self, key: Hashable) -> dict[str, str]:
        """Headers for an injected 429 storm: the window reads as spent."""
        headers = self.peek(key)
        if "X-HubSpot-RateLimit-Remaining" in headers:
            headers["X-HubSpot-RateLimit-Remaining"] = "0"
        return headers

    def _headers(self, window: deque[float]) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.daily_limit is not None:
            headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                max(0, self.daily_limit - self._daily_used)
            )
        if self.window_limit is not None:
            headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(
                int(self.window_seconds * 1000)
            )
            headers["X-HubSpot-RateLimit-Max"] = str(self.window_limit)
            headers["X-HubSpot-RateLimit-Remaining"] = str(max(0, self.window_limit - len(window)))
        return headers

    def reset(self) -> None:
        """Forget all counted requests."""
        self._windows.clear()
        self._day = None
        self._daily_used = 0
