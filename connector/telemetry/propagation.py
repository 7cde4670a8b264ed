"""W3C trace context (``traceparent`` / ``tracestate``) carried in Kafka record headers.

Kafka headers are a list of ``(name, value)`` pairs whose values are bytes (or str when we build
them, or None); a name may repeat. ``extract_context`` reads the first ``traceparent`` it finds;
``inject_context`` returns a new list without any previous trace headers plus the current ones, so
a dead letter that copies its source headers carries the dead-lettering span, not a stale one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACE_HEADERS = frozenset({TRACEPARENT, TRACESTATE})

#: Kafka headers as confluent-kafka accepts them (connector.serde.record.Headers is a subtype).
HeaderList = list[tuple[str, Any]]

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACEPARENT_LENGTH = 55  # "00-" + 32 hex + "-" + 16 hex + "-" + 2 hex


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    return str(value)


class _HeaderGetter(Getter[Iterable[tuple[str, Any]]]):
    def get(self, carrier: Iterable[tuple[str, Any]], key: str) -> list[str] | None:
        values = [text for name, value in carrier
                  if name == key and (text := _text(value)) is not None]
        return values or None

    def keys(self, carrier: Iterable[tuple[str, Any]]) -> list[str]:
        return [name for name, _ in carrier]


_GETTER = _HeaderGetter()


def extract_context(headers: Iterable[tuple[str, Any]] | None,
                    context: Context | None = None) -> Context:
    """The trace context carried by ``headers``, on top of ``context`` (default: an empty one).

    Headers without a valid ``traceparent`` give ``context`` back unchanged, so a record without
    trace context starts a new trace instead of joining whatever happens to be current.
    """
    base = context if context is not None else Context()
    if not headers:
        return base
    return _PROPAGATOR.extract(list(headers), context=base, getter=_GETTER)


def inject_context(headers: Iterable[tuple[str, Any]] | None,
                   context: Context | None = None) -> HeaderList:
    """``headers`` minus old trace headers, plus those of ``context`` (default: the current one).

    Returns a new list; the input is not modified. With no valid span in ``context`` the result
    simply has no trace headers.
    """
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return replace_trace_headers(headers, [(k, v.encode("ascii")) for k, v in carrier.items()])


def replace_trace_headers(headers: Iterable[tuple[str, Any]] | None,
                          trace_headers: Iterable[tuple[str, Any]]) -> HeaderList:
    """``headers`` without ``traceparent``/``tracestate``, then ``trace_headers`` appended."""
    kept: HeaderList = [(k, v) for k, v in headers or () if k not in TRACE_HEADERS]
    kept.extend(trace_headers)
    return kept


def trace_headers_of(headers: Iterable[tuple[str, Any]] | None) -> HeaderList:
    """Just the trace headers of ``headers`` (first ``traceparent``, first ``tracestate``)."""
    found: dict[str, Any] = {}
    for name, value in headers or ():
        if name in TRACE_HEADERS and name not in found and value is not None:
            found[name] = value
    return [(name, found[name]) for name in (TRACEPARENT, TRACESTATE) if name in found]


def traceparent_flags(value: Any) -> int | None:
    """The trace-flags byte of a ``traceparent`` value, or None if it is not well-formed.

    A cheap check (no regex, no Context) used on every consumed record to decide whether the
    record is sampled before paying for a full extraction.
    """
    text = _text(value)
    if text is None or len(text) != _TRACEPARENT_LENGTH or text[2] != "-" or text[35] != "-" \
            or text[52] != "-" or text.startswith("ff"):
        return None
    try:
        return int(text[53:], 16)
    except ValueError:
        return None
