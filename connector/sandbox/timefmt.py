"""Timestamps as HubSpot writes them: ISO-8601 UTC with milliseconds and `Z`; epoch ms ints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def iso_from_ms(ms: int) -> str:
    """Epoch milliseconds -> `2024-08-07T12:58:40.635Z`."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
        f"{dt.second:02d}.{dt.microsecond // 1000:03d}Z"
    )


def ms_from_iso(value: str) -> int:
    """Parse an ISO-8601 instant (any offset; naive = UTC) into epoch milliseconds.

    Raises ValueError for anything else.
    """
    if not isinstance(value, str) or not value:
        raise ValueError("expected an ISO-8601 date-time string")
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    ms = round(dt.timestamp() * 1000)
    if not -62135596800000 <= ms <= 253402300799999:
        raise ValueError("date-time out of range")
    return ms


def ms_from_seconds(now: float) -> int:
    """Clock seconds -> epoch ms."""
    return int(now * 1000)
