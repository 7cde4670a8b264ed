"""Where each partition's committed offset goes: the pure part of `connector replay reset`.

A Strategy is one of kafka-consumer-groups' --reset-offsets scenarios. `target()` turns it and a
partition's offsets (low / high watermark, current committed offset, the offset found by time)
into the new committed offset; every target is clamped to [low, high], as kafka-consumer-groups
does, and the row says so. `format_table` / `as_json` render the dry run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from connector.replay.spec import format_ms


class Kind(Enum):
    """kafka-consumer-groups' reset scenarios (the CLI flag is `--` + value)."""

    EARLIEST = "to-earliest"
    LATEST = "to-latest"
    DATETIME = "to-datetime"
    DURATION = "by-duration"
    OFFSET = "to-offset"
    SHIFT = "shift-by"
    FILE = "from-file"


@dataclass(frozen=True)
class Strategy:
    """A reset scenario; `value` is the offset, shift, or epoch ms (datetime / duration ago)."""

    kind: Kind
    value: int = 0
    #: --from-file: the offset of each (topic, partition) named in the file.
    offsets: tuple[tuple[str, int, int], ...] = ()

    def is_by_time(self) -> bool:
        return self.kind in (Kind.DATETIME, Kind.DURATION)

    def describe(self) -> str:
        if self.is_by_time():
            return f"--{self.kind.value} (offsets at {format_ms(self.value)})"
        if self.kind in (Kind.OFFSET, Kind.SHIFT):
            return f"--{self.kind.value} {self.value}"
        return f"--{self.kind.value}"


@dataclass(frozen=True)
class PartitionOffsets:
    """What Kafka says about one partition for one group."""

    topic: str
    partition: int
    low: int
    high: int
    #: The group's committed offset, None when it has none (the group would start at `low`:
    #: the connector's groups use auto.offset.reset=earliest).
    current: int | None
    #: --to-datetime / --by-duration: the first offset at or after the time (None: after the
    #: last record, i.e. `high`).
    by_time: int | None = None


@dataclass(frozen=True)
class Row:
    """One line of the plan."""

    topic: str
    partition: int
    low: int
    high: int
    current: int | None
    target: int
    note: str = ""

    @property
    def lag_before(self) -> int:
        return self.high - (self.current if self.current is not None else self.low)

    @property
    def lag_after(self) -> int:
        return self.high - self.target

    @property
    def lag_change(self) -> int:
        return self.lag_after - self.lag_before

    @property
    def changes(self) -> bool:
        return self.current != self.target


def target(strategy: Strategy, offsets: PartitionOffsets) -> Row:
    """The new committed offset of one partition, clamped to [low, high]."""
    low, high, current = offsets.low, offsets.high, offsets.current
    base = current if current is not None else low
    note = "" if current is not None else "no committed offset (starts at earliest)"
    kind = strategy.kind
    if kind is Kind.EARLIEST:
        wanted = low
    elif kind is Kind.LATEST:
        wanted = high
    elif strategy.is_by_time():
        wanted = high if offsets.by_time is None or offsets.by_time < 0 else offsets.by_time
    elif kind is Kind.OFFSET:
        wanted = strategy.value
    elif kind is Kind.SHIFT:
        wanted = base + strategy.value
    else:
        found = [o for t, p, o in strategy.offsets
                 if (t, p) == (offsets.topic, offsets.partition)]
        wanted = found[0] if found else base
    clamped = min(max(wanted, low), high)
    if clamped != wanted:
        side = "earliest" if wanted < low else "latest"
        note = _join(note, f"{wanted} clamped to {side} ({clamped})")
    return Row(offsets.topic, offsets.partition, low, high, current, clamped, note)


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


HEADERS = ("TOPIC", "PARTITION", "CURRENT", "TARGET", "LAG BEFORE", "LAG AFTER", "CHANGE", "NOTE")


def format_table(rows: list[Row]) -> str:
    """The dry-run table: one line per partition, columns aligned."""
    cells = [HEADERS] + [(
        r.topic, str(r.partition), "-" if r.current is None else str(r.current), str(r.target),
        str(r.lag_before), str(r.lag_after), f"{r.lag_change:+d}" if r.lag_change else "0",
        r.note) for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS))]
    right = {1, 2, 3, 4, 5, 6}
    lines = []
    for line in cells:
        parts = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                 for i, cell in enumerate(line)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def as_json(rows: list[Row]) -> list[dict[str, Any]]:
    """The rows as JSON-able dicts, lags included."""
    return [{**asdict(r), "lag_before": r.lag_before, "lag_after": r.lag_after,
             "lag_change": r.lag_change} for r in rows]
