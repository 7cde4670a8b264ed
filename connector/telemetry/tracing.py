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

The scopes workers hold are in :mod:`.scope`; the recording ones in :mod:`.spans`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from connector.telemetry.propagation import (
    TRACEPARENT,
    extract_context,
    trace_headers_of,
    traceparent_flags,
)
from connector.telemetry.scope import (
    NOOP_RECORD,
    NOOP_SCOPE,
    Attributes,
    KafkaRecord,
    RecordTrace,
    SpanScope,
)
from connector.telemetry.spans import (
    Attached,
    FinishedSpans,
    ForwardedTrace,
    RecordingTrace,
    SdkSpan,
    unsampled_context,
)

#: A sink batch links at most this many sampled records besides its parent.
MAX_BATCH_LINKS = 32


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
                return RecordingTrace(self._finished, record, None)
            return NOOP_RECORD
        if flags & TraceFlags.SAMPLED:
            upstream = trace.get_current_span(extract_context(headers)).get_span_context()
            return RecordingTrace(self._finished, record,
                                   upstream if upstream.is_valid else None)
        return ForwardedTrace(trace_headers_of(headers))

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
                return Attached(unsampled)
            if not self._is_root_sampled():
                return Attached(unsampled_context(self._rng.getrandbits))
        parent_context = (trace.set_span_in_context(NonRecordingSpan(parent), Context())
                          if parent is not None else Context())
        span = self._tracer.start_span(
            f"sink batch {operation}", context=parent_context, kind=SpanKind.INTERNAL,
            links=links,
            attributes={"hubspot.operation": operation, "messaging.batch.message_count": count},
        )
        return SdkSpan(span, parent_context)

    def span(self, name: str, attributes: Attributes | None = None) -> SpanScope:
        current = trace.get_current_span().get_span_context()
        if current.is_valid:
            if not current.trace_flags.sampled:
                return NOOP_SCOPE
        elif not self._is_root_sampled():
            return NOOP_SCOPE
        parent = otel_context.get_current()
        return SdkSpan(self._tracer.start_span(name, context=parent, attributes=attributes),
                     parent)

    def client_span(self, name: str, attributes: Attributes) -> trace.Span | None:
        current = trace.get_current_span().get_span_context()
        if current.is_valid:
            if not current.trace_flags.sampled:
                return None
        elif not self._is_root_sampled():
            return None
        return self._tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
