"""Spans for the pipeline: consume -> decode -> normalize -> produce, sink batches, HubSpot calls.

Workers call :class:`Tracing` methods; with telemetry off they get the base class, whose methods
return one shared do-nothing object, so instrumented code costs a few attribute look-ups.

Sampling is decided once, where a trace starts, and then followed (W3C ``sampled`` flag):

* a record whose ``traceparent`` is sampled is traced (the upstream decided);
* a record whose ``traceparent`` is not sampled is not traced, and its trace headers are forwarded
  unchanged to what it produces (a :class:`RecordTrace` that only copies two headers);
* a record without trace context starts a trace with probability ``sample_ratio``; otherwise it
  carries no trace context downstream. ``consume(record)`` draws one random number per record;
  a batch consumer asks :meth:`Tracing.root_picks` once per batch for the indexes that start a
  trace (the same distribution, one random number per pick) and passes ``root=`` per record, so
  a record without headers that is not picked never reaches the tracing code at all.

Only sampled records pay for OpenTelemetry spans. Every decision (root or parent) is made here,
before any span object exists, because an unsampled SDK span still costs microseconds, which is a
large share of the few microseconds a record takes; so every ``start_span`` below runs under a
sampled parent or for a root picked here, and the SDK sampler is plain ``ALWAYS_ON``.

A consumed record's own spans (consume, decode, normalize, send) are built whole: their ids and
times are taken as the record is processed, and each is handed to the span processors as an SDK
``ReadableSpan`` when it ends (:class:`FinishedSpans`). An SDK ``Span`` costs ~14 µs to start and
end (sampler, locks, bounded attribute maps, a copy at end), three to four of them per traced
record; a built one ~3 µs, and what reaches the exporters is the same (tests compare them with
the SDK's). Processors see them at ``on_end`` only: ours (batch and simple) do nothing at
``on_start``. Sink batches and HubSpot requests, a few per second, use the SDK tracer.
"""

from __future__ import annotations

import math
import random
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from connector.telemetry.propagation import (
    TRACEPARENT,
    HeaderList,
    extract_context,
    inject_context,
    replace_trace_headers,
    trace_headers_of,
    traceparent_flags,
)

#: A sink batch links at most this many sampled records besides its parent.
MAX_BATCH_LINKS = 32

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


class _ForwardedTrace(RecordTrace):
    """A record whose upstream trace is not sampled: forward its trace headers, record nothing."""

    __slots__ = ("_trace_headers",)

    def __init__(self, trace_headers: HeaderList) -> None:
        self._trace_headers = trace_headers

    def inject(self, headers: HeaderList) -> HeaderList:
        return replace_trace_headers(headers, self._trace_headers)


class _Span(SpanScope):
    """An SDK span with an explicit parent; ``with`` makes it current and ends it."""

    __slots__ = ("_context", "_parent", "_span", "_token")

    sampled = True

    def __init__(self, span: trace.Span, parent: Context | None) -> None:
        self._span = span
        self._parent = parent
        self._context: Context | None = None
        self._token: object | None = None

    @property
    def context(self) -> Context:
        """The parent context with this span set in it."""
        if self._context is None:
            self._context = trace.set_span_in_context(self._span, self._parent)
        return self._context

    def __enter__(self) -> _Span:
        self._token = otel_context.attach(self.context)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None:
            _record_error(self._span, exc)
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None
        self._span.end()

    def inject(self, headers: HeaderList) -> HeaderList:
        return inject_context(headers, self.context)

    def set_attribute(self, key: str, value: str | int | float | bool) -> None:
        self._span.set_attribute(key, value)

    def add_event(self, name: str, attributes: Attributes | None = None) -> None:
        self._span.add_event(name, attributes)


_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
#: Sampled, and the trace id is random (W3C level 2): what the SDK's tracer sets on a trace it
#: starts with its RandomIdGenerator, and on children of a parent that says so.
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_UNSET = Status(StatusCode.UNSET)


class FinishedSpans:
    """Where spans built whole go: the provider's span processors, with the provider's resource
    and the instrumentation scope its tracer gives (so they look like the tracer's own)."""

    __slots__ = ("_ids", "_processors", "_resource", "_scope")

    def __init__(self, processors: Sequence[SpanProcessor], resource: Resource,
                 scope_name: str) -> None:
        self._processors = tuple(processors)
        self._resource = resource
        self._scope = InstrumentationScope(scope_name, "", "")  # as get_tracer(scope_name)
        self._ids = RandomIdGenerator()

    def context(self, parent: SpanContext | None) -> SpanContext:
        """A new sampled span's context: in ``parent``'s trace, or in a new one."""
        if parent is None:
            return SpanContext(self._ids.generate_trace_id(), self._ids.generate_span_id(),
                               False, _SAMPLED_RANDOM)
        flags = _SAMPLED_RANDOM if parent.trace_flags.random_trace_id else _SAMPLED
        return SpanContext(parent.trace_id, self._ids.generate_span_id(), False, flags,
                           parent.trace_state)

    def finish(self, span: ReadableSpan) -> None:
        for processor in self._processors:
            processor.on_end(span)

    def build(self, name: str, kind: SpanKind, context: SpanContext,
              parent: SpanContext | None, start: int, attributes: dict[str, Any] | None,
              events: Sequence[Event], status: Status) -> ReadableSpan:
        return ReadableSpan(name, context, parent, resource=self._resource,
                            attributes=attributes, events=events, kind=kind, status=status,
                            start_time=start, end_time=time.time_ns(),
                            instrumentation_scope=self._scope)


class _BuiltSpan(SpanScope):
    """A span of a traced record, built whole: its clock starts when it is made, and at exit
    (or `end`) it goes to the processors as a finished span. Changes after that are ignored,
    as the SDK ignores them on an ended span."""

    __slots__ = ("_attributes", "_context", "_ended", "_events", "_kind", "_name", "_parent",
                 "_spans", "_start", "_status")

    sampled = True

    def __init__(self, spans: FinishedSpans, name: str, kind: SpanKind,
                 parent: SpanContext | None, attributes: dict[str, Any] | None = None) -> None:
        self._spans = spans
        self._name = name
        self._kind = kind
        self._context = spans.context(parent)
        self._parent = parent
        self._attributes = attributes
        self._events: list[Event] = []
        self._status = _UNSET
        self._ended = False
        self._start = time.time_ns()

    @property
    def span_context(self) -> SpanContext:
        return self._context

    def otel_context(self) -> Context:
        """An OpenTelemetry context whose current span is this one."""
        return trace.set_span_in_context(NonRecordingSpan(self._context), Context())

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None:
            _record_error(self, exc)
        self.end()

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._spans.finish(self._spans.build(self._name, self._kind, self._context,
                                             self._parent, self._start, self._attributes,
                                             self._events, self._status))

    def inject(self, headers: HeaderList) -> HeaderList:
        return inject_context(headers, self.otel_context())

    def set_attribute(self, key: str, value: str | int | float | bool) -> None:
        if not self._ended:
            self._attributes = {**(self._attributes or {}), key: value}

    def add_event(self, name: str, attributes: Attributes | None = None) -> None:
        if not self._ended:
            self._events.append(Event(name, attributes, time.time_ns()))

    def set_status(self, status: Status) -> None:
        if not self._ended:
            self._status = status

    def record_exception(self, exc: BaseException) -> None:
        """The event the SDK's ``Span.record_exception`` adds."""
        kind = type(exc)
        qualname = kind.__qualname__
        module = kind.__module__
        self.add_event("exception", {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins"
            else qualname,
            "exception.message": str(exc),
            "exception.stacktrace": "".join(traceback.format_exception(exc)),
            "exception.escaped": "False",
        })


class _RecordingTrace(RecordTrace):
    """A sampled record: a CONSUMER span with decode / normalize / produce children, all built
    whole (see the module doc). ``with`` it makes its span current (logs carry its trace id,
    SDK spans started inside are its children)."""

    __slots__ = ("_span", "_token")

    sampled = True

    def __init__(self, spans: FinishedSpans, record: KafkaRecord,
                 parent: SpanContext | None) -> None:
        self._span = _BuiltSpan(spans, f"consume {record.topic}", SpanKind.CONSUMER, parent, {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": record.topic,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
        })
        self._token: object | None = None

    def __enter__(self) -> _RecordingTrace:
        self._token = otel_context.attach(self._span.otel_context())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None
        self._span.__exit__(exc_type, exc, tb)

    def _child(self, name: str, kind: SpanKind = SpanKind.INTERNAL,
               attributes: dict[str, Any] | None = None) -> _BuiltSpan:
        span = self._span
        return _BuiltSpan(span._spans, name, kind, span._context, attributes)

    def decode(self) -> SpanScope:
        return self._child("decode")

    def normalize(self) -> SpanScope:
        return self._child("normalize")

    def produce(self, topic: str) -> SpanScope:
        return self._child(f"send {topic}", SpanKind.PRODUCER, {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
        })

    def inject(self, headers: HeaderList) -> HeaderList:
        return self._span.inject(headers)

    def dead_letter(self, reason: str) -> None:
        self._span.add_event("dead_letter", {"reason": reason})
        self._span.set_status(Status(StatusCode.ERROR, f"dead-lettered: {reason}"))

    def set_attribute(self, key: str, value: str | int | float | bool) -> None:
        self._span.set_attribute(key, value)

    def add_event(self, name: str, attributes: Attributes | None = None) -> None:
        self._span.add_event(name, attributes)

    @property
    def span_context(self) -> SpanContext:
        """The consume span's context (for tests and links)."""
        return self._span.span_context


class _Attached(SpanScope):
    """Makes a non-recording context current, so HTTP calls inside follow its decision."""

    __slots__ = ("_context", "_token")

    def __init__(self, context: Context) -> None:
        self._context = context
        self._token: object | None = None

    def __enter__(self) -> _Attached:
        self._token = otel_context.attach(self._context)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None


def _record_error(span: trace.Span | _BuiltSpan, exc: BaseException) -> None:
    """The exception event, error.type and an error status: on SDK and built spans alike."""
    span.record_exception(exc)
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))


def _unsampled_context(rand_bits: Callable[[int], int]) -> Context:
    span_context = SpanContext(trace_id=rand_bits(128) or 1, span_id=rand_bits(64) or 1,
                               is_remote=False, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    return trace.set_span_in_context(NonRecordingSpan(span_context), Context())


class Tracing:
    """The tracing API workers call. This base records nothing: it is what telemetry-off gives."""

    #: True when spans may be recorded.
    enabled = False

    def consume(self, record: KafkaRecord, root: bool | None = None) -> RecordTrace:
        """The trace of one consumed record (see :class:`RecordTrace`).

        ``root``: whether the record starts a trace if it carries no trace context (a pick of
        :meth:`root_picks`); None draws it here with probability ``sample_ratio``. A record with
        a ``traceparent`` follows it whatever ``root`` says.
        """
        return NOOP_RECORD

    def root_picks(self, count: int) -> Iterator[int]:
        """The indexes, ascending, of a batch of ``count`` records that start a trace if they
        carry no trace context: each index independently with probability ``sample_ratio``."""
        return iter(())

    def sink_batch(self, records: Iterable[KafkaRecord], *, operation: str) -> SpanScope:
        """A span around sending one batch of consumed records to HubSpot.

        Its parent is the first sampled record's trace; other sampled records are linked. HubSpot
        requests made inside ``with`` it become its children.
        """
        return NOOP_SCOPE

    def span(self, name: str, attributes: Attributes | None = None) -> SpanScope:
        """A generic internal span, child of the current one."""
        return NOOP_SCOPE

    def client_span(self, name: str, attributes: Attributes) -> trace.Span | None:
        """Start (not make current) a CLIENT span for an outgoing request; None to skip it."""
        return None


class OtelTracing(Tracing):
    """Tracing backed by an OpenTelemetry SDK tracer (sampler: ALWAYS_ON, see the module doc)."""

    enabled = True

    def __init__(self, tracer: trace.Tracer, finished: FinishedSpans, sample_ratio: float = 1.0,
                 rng: random.Random | None = None) -> None:
        self._tracer = tracer
        self._finished = finished
        self.sample_ratio = sample_ratio
        self._rng = rng or random.Random()
        self._random = self._rng.random

    @classmethod
    def over(cls, provider: TracerProvider, processors: Sequence[SpanProcessor],
             scope_name: str, sample_ratio: float = 1.0,
             rng: random.Random | None = None) -> OtelTracing:
        """Tracing through ``provider``, whose span processors are ``processors``."""
        return cls(provider.get_tracer(scope_name),
                   FinishedSpans(processors, provider.resource, scope_name), sample_ratio, rng)

    def _is_root_sampled(self) -> bool:
        return self._random() < self.sample_ratio

    def consume(self, record: KafkaRecord, root: bool | None = None) -> RecordTrace:
        headers = record.headers
        flags = None
        if headers:
            for name, value in headers:
                if name == TRACEPARENT:
                    flags = traceparent_flags(value)
                    break
        if flags is None:
            if root is None:
                root = self._random() < self.sample_ratio
            if root:
                return _RecordingTrace(self._finished, record, None)
            return NOOP_RECORD
        if flags & TraceFlags.SAMPLED:
            upstream = trace.get_current_span(extract_context(headers)).get_span_context()
            return _RecordingTrace(self._finished, record,
                                   upstream if upstream.is_valid else None)
        return _ForwardedTrace(trace_headers_of(headers))

    def root_picks(self, count: int) -> Iterator[int]:
        # Geometric skipping: the gap before the next pick is floor(log(U) / log(1 - p)), U
        # uniform on (0, 1], i.e. P(gap >= k) = (1 - p)^k, the run of failures of a per-index
        # Bernoulli(p) draw. Memoryless, so every batch may start afresh.
        ratio = self.sample_ratio
        if ratio >= 1.0:
            yield from range(count)
            return
        if ratio <= 0.0:
            return
        log_miss = math.log1p(-ratio)
        random, log = self._random, math.log
        index = -1
        while True:
            index += 1 + int(log(1.0 - random()) / log_miss)
            if index >= count:
                return
            yield index

    def sink_batch(self, records: Iterable[KafkaRecord], *, operation: str) -> SpanScope:
        parent: SpanContext | None = None
        links: list[Link] = []
        count = 0
        unsampled: Context | None = None
        for record in records:
            count += 1
            headers = record.headers
            if not headers:
                continue
            flags = next((traceparent_flags(v) for k, v in headers if k == TRACEPARENT), None)
            if flags is None:
                continue
            if not flags & TraceFlags.SAMPLED:
                if unsampled is None:
                    unsampled = extract_context(headers)
                continue
            span_context = trace.get_current_span(extract_context(headers)).get_span_context()
            if not span_context.is_valid:
                continue
            if parent is None:
                parent = span_context
            elif len(links) < MAX_BATCH_LINKS:
                links.append(Link(span_context))
        if parent is None:
            if unsampled is not None:
                return _Attached(unsampled)
            if not self._is_root_sampled():
                return _Attached(_unsampled_context(self._rng.getrandbits))
        parent_context = (trace.set_span_in_context(NonRecordingSpan(parent), Context())
                          if parent is not None else Context())
        span = self._tracer.start_span(
            f"sink batch {operation}", context=parent_context, kind=SpanKind.INTERNAL,
            links=links,
            attributes={"hubspot.operation": operation, "messaging.batch.message_count": count},
        )
        return _Span(span, parent_context)

    def span(self, name: str, attributes: Attributes | None = None) -> SpanScope:
        current = trace.get_current_span().get_span_context()
        if current.is_valid:
            if not current.trace_flags.sampled:
                return NOOP_SCOPE
        elif not self._is_root_sampled():
            return NOOP_SCOPE
        parent = otel_context.get_current()
        return _Span(self._tracer.start_span(name, context=parent, attributes=attributes),
                     parent)

    def client_span(self, name: str, attributes: Attributes) -> trace.Span | None:
        current = trace.get_current_span().get_span_context()
        if current.is_valid:
            if not current.trace_flags.sampled:
                return None
        elif not self._is_root_sampled():
            return None
        return self._tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
