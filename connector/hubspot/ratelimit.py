"""HubSpot rate-limit headers (reference §6) and ``Retry-After``, parsed into values.

Headers, all optional (OAuth calls omit the Daily pair; any may be missing when HubSpot fails to
compute them)::

    X-HubSpot-RateLimit-Daily                 daily allowance
    X-HubSpot-RateLimit-Daily-Remaining       calls left today
    X-HubSpot-RateLimit-Interval-Milliseconds burst window length, e.g. 10000
    X-HubSpot-RateLimit-Max                   calls allowed per burst window
    X-HubSpot-RateLimit-Remaining             calls left in the current burst window
    X-HubSpot-RateLimit-Secondly              legacy per-second allowance
    X-HubSpot-RateLimit-Secondly-Remaining    legacy per-second calls left
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

_PREFIX = "x-hubspot-ratelimit-"
_FIELDS = {
    "daily": "daily",
    "daily-remaining": "daily_remaining",
    "interval-milliseconds": "interval_ms",
    "max": "max",
    "remaining": "remaining",
    "secondly": "secondly",
    "secondly-remaining": "secondly_remaining",
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _to_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """What HubSpot said about our remaining budget on one response; every field may be None."""

    interval_ms: int | None = None
    max: int | None = None
    remaining: int | None = None
    daily: int | None = None
    daily_remaining: int | None = None
    secondly: int | None = None
    secondly_remaining: int | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitStatus | None:
        """Parse the ``X-HubSpot-RateLimit-*`` headers; None when none is present (or parseable)."""
        values: dict[str, int] = {}
        for name, value in headers.items():
            lowered = name.lower()
            if not lowered.startswith(_PREFIX):
                continue
            field = _FIELDS.get(lowered[len(_PREFIX) :])
            number = _to_int(value)
            if field is not None and number is not None:
                values[field] = number
        return cls(**values) if values else None

    @property
    def is_interval_exhausted(self) -> bool:
        """True when the burst window has no calls left (wait ``interval_ms`` before the next)."""
        return self.remaining is not None and self.remaining <= 0

    @property
    def is_daily_exhausted(self) -> bool:
        """True when the account's daily allowance is used up (resets at the portal's midnight)."""
        return self.daily_remaining is not None and self.daily_remaining <= 0

    @property
    def interval_fraction_remaining(self) -> float | None:
        """``remaining / max`` for the burst window, for budget-based pacing; None if unknown."""
        if self.remaining is None or not self.max:
            return None
        return max(0.0, self.remaining / self.max)


def parse_retry_after(value: str | None, *, now: Callable[[], datetime] = _utcnow) -> float | None:
    """``Retry-After`` as seconds to wait (>= 0), from delta-seconds or an HTTP-date.

    None when absent or unparseable.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())
