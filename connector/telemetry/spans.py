"""The recording scopes: SDK spans, spans built whole, and the trace of a sampled record.

A consumed record's own spans (consume, decode, normalize, send) are built whole: their ids and
times are taken as the record is processed, and each is handed to the span processors as an SDK
``ReadableSpan`` when it ends (:class:`FinishedSpans`). Starting and ending an SDK ``Span``
(sampler, locks, bounded attribute maps, a copy at end) costs several times a built one, and a
traced record has three to four of them; what reaches the exporters is the same (tests compare
them with the SDK's). The measured cost is in docs/performance.md. Processors see them at
``on_end`` only: ours (batch and simple) do nothing at ``on_start``. Sink batches and HubSpot
requests, a few per second, use the SDK tracer.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from connector.telemetry.propagation import HeaderList, inject_context, replace_trace_headers
from connector.telemetry.scope import Attributes, KafkaRecord, RecordTrace, SpanScope


class ForwardedTrace(RecordTrace):
    """A record whose upstream trace is not sampled: forward its trace headers, record nothing."""

    __slots__ = ("_trace_headers",)

    def __init__(self, trace_headers: HeaderList) -> None:
        self._trace_headers = trace_headers

    def inject(self, headers: HeaderList) -> HeaderList:
        return replace_trace_headers(headers, self._trace_headers)


class SdkSpan(SpanScope):
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

    def __enter__(self) -> SdkSpan:
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


class RecordingTrace(RecordTrace):
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

    def __enter__(self) -> RecordingTrace:
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


class Attached(SpanScope):
    """Makes a non-recording context current, so HTTP calls inside follow its decision."""

    __slots__ = ("_context", "_token")

    def __init__(self, context: Context) -> None:
        self._context = context
        self._token: object | None = None

    def __enter__(self) -> Attached:
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


def unsampled_context(rand_bits: Callable[[int], int]) -> Context:
    span_context = SpanContext(trace_id=rand_bits(128) or 1, span_id=rand_bits(64) or 1,
                               is_remote=False, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    return trace.set_span_in_context(NonRecordingSpan(span_context), Context())
