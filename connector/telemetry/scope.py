"""What instrumented code holds: span scopes and record traces, and their shared no-ops.

Workers ``with`` a :class:`SpanScope` or :class:`RecordTrace` that :class:`~.tracing.Tracing`
gives them; with telemetry off (or a record not sampled) it is one of the no-ops below, whose
methods do nothing. The recording implementations are in :mod:`.spans`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol

from connector.telemetry.propagation import HeaderList

Attributes = Mapping[str, str | int | float | bool]


class KafkaRecord(Protocol):
    """What tracing needs of a consumed record (connector.serde.SourceRecord has it)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def headers(self) -> Iterable[tuple[str, Any]] | None: ...


class SpanScope:
    """A span used as a context manager; this base records nothing (not sampled, or off)."""

    __slots__ = ()

    #: True when this scope records a span.
    sampled = False

    def __enter__(self) -> SpanScope:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def inject(self, headers: HeaderList) -> HeaderList:
        """``headers`` carrying this scope's trace context (unchanged when there is none)."""
        return headers

    def set_attribute(self, key: str, value: str | int | float | bool) -> None:
        """Add an attribute to the span (ignored when not recording)."""

    def add_event(self, name: str, attributes: Attributes | None = None) -> None:
        """Add a span event (ignored when not recording)."""


class RecordTrace(SpanScope):
    """The trace of one consumed record: ``with`` it around the record's processing.

    ``decode()``, ``normalize()`` and ``produce(topic)`` give child scopes; ``inject(headers)``
    puts the record's trace context into the headers of what it produces. Keep the object with
    what the record produced if producing happens later (e.g. at transaction commit).
    This base is the shared no-op used when the record is not traced.
    """

    __slots__ = ()

    def decode(self) -> SpanScope:
        """A child span around decoding."""
        return self

    def normalize(self) -> SpanScope:
        """A child span around normalizing."""
        return self

    def produce(self, topic: str) -> SpanScope:
        """A producer span around sending a record to ``topic``; ``inject`` its headers."""
        return self

    def dead_letter(self, reason: str) -> None:
        """Mark the record as dead-lettered (an event and an error status on its span)."""


NOOP_SCOPE = SpanScope()
NOOP_RECORD = RecordTrace()
