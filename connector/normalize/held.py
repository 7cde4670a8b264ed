"""Activity held back until its webinar's metadata arrives, and its changelog form.

The held record is kept whole (its source record too), so that a dead letter or a command made
from it once released names the record that caused it, even after a restore.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.serde.record import SourceRecord


@dataclass(slots=True)
class Held:
    """An activity waiting for its webinar's metadata."""

    datum: dict[str, Any]
    source: SourceRecord


def held_to_state(held: Held) -> dict[str, Any]:
    """A JSON-able form for the changelog (bytes as latin-1 text: one char per byte)."""
    s = held.source
    return {"d": held.datum, "src": [s.topic, s.partition, s.offset,
                                     s.key.decode("latin-1") if s.key is not None else None,
                                     s.value.decode("latin-1") if s.value is not None else None,
                                     [[k, v.decode("latin-1") if v is not None else None]
                                      for k, v in s.headers], s.timestamp_ms]}


def held_from_state(data: dict[str, Any]) -> Held:
    """Inverse of `held_to_state`."""
    topic, partition, offset, key, value, headers, ts = data["src"]
    datum = dict(data["d"])
    datum["action"] = tuple(datum["action"])
    return Held(datum, SourceRecord(
        topic, partition, offset,
        key.encode("latin-1") if key is not None else None,
        value.encode("latin-1") if value is not None else None,
        [(k, v.encode("latin-1") if v is not None else None) for k, v in headers], ts))
