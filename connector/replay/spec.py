"""Parsing what operators type: datetimes, durations, topic specs and offsets files.

Pure functions; every one raises SpecError (a ValueError) whose message shows a valid example,
which the CLI reports as a usage error (exit 2). The clock is passed in (`now_ms`).

    2026-01-01T10:00:00Z, 2026-01-01T11:00:00.500+01:00   datetimes (a time zone is required)
    PT1H, P1DT2H30M, PT0.5S, 1h, 90m, 1h30m, 2d, 500ms      durations (ISO 8601 or shorthand)
    webinar.activity, webinar.activity:0,2, t:0-3           topic specs (partitions optional)
    topic,partition,offset lines                            offsets files (kafka-consumer-groups)
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime

DATETIME_EXAMPLE = "2026-01-01T10:00:00Z"
DURATION_EXAMPLE = "PT1H, P1DT2H30M, 1h, 90m or 1h30m"
TOPIC_EXAMPLE = "webinar.activity, webinar.activity:0 or webinar.activity:0,2-4"
OFFSETS_EXAMPLE = "webinar.activity,0,1200"

_ISO_DURATION = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")
_SHORT_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 604_800_000}
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class SpecError(ValueError):
    """Malformed operator input; the message says what is wrong and shows a valid value."""


class FutureTimeError(SpecError):
    """A point in time that has not happened yet (nothing to replay from there)."""


def parse_datetime(text: str, now_ms: int) -> int:
    """An ISO 8601 datetime with a time zone -> epoch milliseconds; refuses the future."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SpecError(f"{text!r} is not an ISO 8601 datetime; e.g. {DATETIME_EXAMPLE}") from None
    if parsed.tzinfo is None:
        raise SpecError(f"{text!r} has no time zone, which would make it ambiguous; add Z or an "
                        f"offset, e.g. {DATETIME_EXAMPLE} or 2026-01-01T11:00:00+01:00")
    millis = int(parsed.timestamp() * 1000)
    if millis > now_ms:
        now = format_ms(now_ms)
        raise FutureTimeError(f"{text!r} is in the future (now is {now}): there is nothing to "
                              "replay from there")
    return millis


def parse_duration(text: str) -> int:
    """An ISO 8601 duration (PT1H, P1DT2H) or shorthand (1h30m, 90m, 2d) -> milliseconds > 0."""
    value = text.strip()
    millis: float | None = None
    iso = _ISO_DURATION.match(value.upper())
    if iso and value.upper() not in ("P", "PT") and not value.upper().endswith("T"):
        parts = {k: float(v) for k, v in iso.groupdict().items() if v is not None}
        millis = (parts.get("w", 0) * _UNIT_MS["w"] + parts.get("d", 0) * _UNIT_MS["d"]
                  + parts.get("h", 0) * _UNIT_MS["h"] + parts.get("m", 0) * _UNIT_MS["m"]
                  + parts.get("s", 0) * _UNIT_MS["s"])
    elif value and "".join(m.group(0) for m in _SHORT_PART.finditer(value.lower())) == \
            value.lower():
        millis = sum(float(n) * _UNIT_MS[unit] for n, unit in _SHORT_PART.findall(value.lower()))
    if millis is None:
        raise SpecError(f"{text!r} is not a duration; e.g. {DURATION_EXAMPLE}")
    if millis <= 0:
        raise SpecError(f"{text!r} is zero; a duration must be positive, e.g. {DURATION_EXAMPLE}")
    return int(millis)


def parse_time(text: str, now_ms: int) -> int:
    """A point in time: an ISO datetime, or a duration meaning that long ago (`2h`, `PT30M`)."""
    value = text.strip()
    if value[:1].isdigit() and ("-" in value or ":" in value):
        return parse_datetime(value, now_ms)
    try:
        return now_ms - parse_duration(value)
    except SpecError:
        raise SpecError(f"{text!r} is neither a datetime ({DATETIME_EXAMPLE}) nor a duration "
                        f"ago ({DURATION_EXAMPLE})") from None


@dataclass(frozen=True)
class TopicSelector:
    """A topic and the partitions chosen in it (None: all of them)."""

    topic: str
    partitions: tuple[int, ...] | None = None

    def __str__(self) -> str:
        if self.partitions is None:
            return self.topic
        return f"{self.topic}:{','.join(map(str, self.partitions))}"


def parse_topic_spec(text: str) -> TopicSelector:
    """`topic`, `topic:0`, `topic:0,2` or `topic:0-3,7`."""
    topic, sep, rest = text.strip().partition(":")
    if not _TOPIC_NAME.match(topic):
        raise SpecError(f"{text!r}: {topic!r} is not a valid topic name (letters, digits, '.', "
                        f"'_', '-'); e.g. {TOPIC_EXAMPLE}")
    if not sep:
        return TopicSelector(topic)
    partitions: set[int] = set()
    for item in rest.split(","):
        low, dash, high = item.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise SpecError(f"{text!r}: {item.strip()!r} is not a partition number or range; "
                            f"e.g. {TOPIC_EXAMPLE}")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise SpecError(f"{text!r}: the range {item.strip()!r} is backwards; "
                            f"e.g. {TOPIC_EXAMPLE}")
        partitions.update(range(first, last + 1))
    return TopicSelector(topic, tuple(sorted(partitions)))


def merge_selectors(selectors: list[TopicSelector]) -> list[TopicSelector]:
    """One selector per topic (a topic named without partitions means all of them)."""
    merged: dict[str, set[int] | None] = {}
    for selector in selectors:
        current = merged.get(selector.topic, set())
        if selector.partitions is None or (selector.topic in merged and current is None):
            merged[selector.topic] = None
        else:
            merged[selector.topic] = (current or set()) | set(selector.partitions)
    return [TopicSelector(topic, None if parts is None else tuple(sorted(parts)))
            for topic, parts in merged.items()]


def parse_offsets_csv(text: str) -> dict[tuple[str, int], int]:
    """kafka-consumer-groups' `--from-file` format: `topic,partition,offset` per line.

    Blank lines, `#` comments and a `topic,partition,offset` header are skipped.
    """
    offsets: dict[tuple[str, int], int] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [cell.strip() for cell in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if [c.lower() for c in cells] == ["topic", "partition", "offset"]:
            continue
        if len(cells) != 3 or not _TOPIC_NAME.match(cells[0]) or not cells[1].isdigit() \
                or not cells[2].lstrip("-").isdigit() or int(cells[2]) < 0:
            raise SpecError(f"line {number}: {','.join(row)!r} is not topic,partition,offset "
                            f"with a non-negative offset; e.g. {OFFSETS_EXAMPLE}")
        key = (cells[0], int(cells[1]))
        if key in offsets:
            raise SpecError(f"line {number}: {cells[0]} partition {cells[1]} appears twice")
        offsets[key] = int(cells[2])
    if not offsets:
        raise SpecError(f"the offsets file names no partition; one line per partition, "
                        f"e.g. {OFFSETS_EXAMPLE}")
    return offsets


def format_ms(millis: int) -> str:
    """Epoch milliseconds as an ISO 8601 UTC datetime (what parse_datetime reads back)."""
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    text = moment.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z").replace(".000Z", "Z")
