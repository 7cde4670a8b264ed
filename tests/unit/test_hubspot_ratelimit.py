"""Rate-limit header parsing (reference §6) and Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from connector.hubspot.ratelimit import RateLimitStatus, parse_retry_after

ALL_HEADERS = {
    "X-HubSpot-RateLimit-Daily": "250000",
    "X-HubSpot-RateLimit-Daily-Remaining": "249990",
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    "X-HubSpot-RateLimit-Max": "100",
    "X-HubSpot-RateLimit-Remaining": "97",
    "X-HubSpot-RateLimit-Secondly": "10",
    "X-HubSpot-RateLimit-Secondly-Remaining": "9",
}


def test_parses_every_header() -> None:
    status = RateLimitStatus.from_headers(httpx.Headers(ALL_HEADERS))
    assert status == RateLimitStatus(
        interval_ms=10000,
        max=100,
        remaining=97,
        daily=250000,
        daily_remaining=249990,
        secondly=10,
        secondly_remaining=9,
    )
    assert status is not None
    assert not status.is_interval_exhausted
    assert not status.is_daily_exhausted
    assert status.interval_fraction_remaining == pytest.approx(0.97)


def test_header_names_are_case_insensitive_even_in_plain_dicts() -> None:
    status = RateLimitStatus.from_headers({"x-hubspot-ratelimit-remaining": "0"})
    assert status == RateLimitStatus(remaining=0)
    assert status.is_interval_exhausted


def test_oauth_calls_without_daily_pair() -> None:
    headers = {k: v for k, v in ALL_HEADERS.items() if "Daily" not in k}
    status = RateLimitStatus.from_headers(headers)
    assert status is not None
    assert status.daily is None and status.daily_remaining is None
    assert status.max == 100


def test_none_when_absent_or_garbage() -> None:
    assert RateLimitStatus.from_headers({"Content-Type": "application/json"}) is None
    assert RateLimitStatus.from_headers({"X-HubSpot-RateLimit-Max": "lots"}) is None


def test_status_is_frozen() -> None:
    status = RateLimitStatus(remaining=1)
    with pytest.raises(AttributeError):
        status.remaining = 2  # type: ignore[misc]


def test_daily_exhausted() -> None:
    assert RateLimitStatus(daily_remaining=0).is_daily_exhausted
    assert RateLimitStatus().interval_fraction_remaining is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), (" 1.5 ", 1.5), ("0", 0.0), ("-4", 0.0), (None, None), ("", None), ("soon", None)],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date_uses_injected_clock() -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=lambda: now) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=lambda: now) == 0.0
