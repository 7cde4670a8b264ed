"""``Telemetry``: the tracing and metrics objects a process hands to its workers, and their exits.

    telemetry = Telemetry.from_settings(settings.telemetry)   # or .disabled(), .for_tests()
    telemetry.tracing   -> Tracing (no-op base when traces are off)
    telemetry.metrics   -> Metrics (no-op base when metrics are off)
    telemetry.http_transport(inner) -> the transport to give HubSpotClient
    telemetry.lag_monitor(group)    -> LagMonitor for a consumer's poll loop
    telemetry.prometheus_app()      -> ASGI app for /metrics (metrics=prometheus)
    telemetry.shutdown()            -> flush and stop exporters

Providers are kept on the object, never installed globally, so several can coexist (tests).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from connector.telemetry import exporters
from connector.telemetry.accounts import DEFAULT_ACCOUNT_SERIES_LIMIT
from connector.telemetry.http import TracingTransport
from connector.telemetry.lag import LagMonitor
from connector.telemetry.metrics import NOOP_METRICS, ConnectorMetrics, Metrics
from connector.telemetry.tracing import OtelTracing, Tracing

INSTRUMENTATION_NAME = "connector"
_NOOP_TRACING = Tracing()


class Telemetry:
    """Tracing + metrics for one process (or one test)."""

    def __init__(self, *, tracing: Tracing = _NOOP_TRACING, metrics: Metrics = NOOP_METRICS,
                 tracer_provider: TracerProvider | None = None,
                 meter_provider: MeterProvider | None = None,
                 span_exporter: InMemorySpanExporter | None = None,
                 metric_reader: MetricReader | None = None,
                 prometheus_registry: Any = None,
                 propagate_to_hubspot: bool = False,
                 lag_interval_seconds: float = 5.0) -> None:
        self.tracing = tracing
        self.metrics = metrics
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._span_exporter = span_exporter
        self._metric_reader = metric_reader
        self._prometheus_registry = prometheus_registry
        self._propagate = propagate_to_hubspot
        self._lag_interval = lag_interval_seconds

    # -- constructors --------------------------------------------------------------------------

    @classmethod
    def disabled(cls) -> Telemetry:
        """Nothing recorded, nothing exported: every call hits a no-op."""
        return cls()

    @classmethod
    def for_tests(cls, *, sample_ratio: float = 1.0, prometheus: bool = False,
                  rng: random.Random | None = None,
                  lag_interval_seconds: float = 5.0,
                  account_series_limit: int = DEFAULT_ACCOUNT_SERIES_LIMIT) -> Telemetry:
        """Spans into an in-memory exporter (synchronously), metrics via an in-memory reader.

        Read them with :meth:`finished_spans` and :meth:`metric_value`.
        ``lag_interval_seconds=0`` refreshes consumer lag on every poll.
        ``account_series_limit``: see :class:`~connector.telemetry.accounts.AccountLabels`.
        """
        spans = InMemorySpanExporter()
        processors = [SimpleSpanProcessor(spans)]
        tracer_provider = exporters.tracer_provider("connector-test", processors)
        reader = InMemoryMetricReader()
        readers: list[MetricReader] = [reader]
        registry = None
        if prometheus:
            prometheus_reader, registry = exporters.prometheus_reader()
            readers.append(prometheus_reader)
        meter_provider = exporters.meter_provider("connector-test", readers)
        return cls(
            tracing=OtelTracing.over(tracer_provider, processors, INSTRUMENTATION_NAME,
                                     sample_ratio, rng),
            metrics=ConnectorMetrics(meter_provider.get_meter(INSTRUMENTATION_NAME),
                                     account_series_limit=account_series_limit),
            tracer_provider=tracer_provider, meter_provider=meter_provider,
            span_exporter=spans, metric_reader=reader, prometheus_registry=registry,
            lag_interval_seconds=lag_interval_seconds,
        )

    @classmethod
    def from_settings(cls, config: exporters.TelemetryConfig) -> Telemetry:
        """Exporters as configured; "none" (or ``enabled=false``) gives the no-op side."""
        if not config.enabled:
            return cls.disabled()
        tracing: Tracing = _NOOP_TRACING
        metrics: Metrics = NOOP_METRICS
        tracer_provider = meter_provider = registry = None
        if config.traces != "none":
            processors = [exporters.batch_processor(exporters.span_exporter(config))]
            tracer_provider = exporters.tracer_provider(config.service_name, processors)
            tracing = OtelTracing.over(tracer_provider, processors, INSTRUMENTATION_NAME,
                                       config.trace_sample_ratio)
        if config.metrics != "none":
            reader, registry = exporters.metric_reader(config)
            meter_provider = exporters.meter_provider(config.service_name, [reader])
            metrics = ConnectorMetrics(
                meter_provider.get_meter(INSTRUMENTATION_NAME),
                account_series_limit=getattr(config, "account_series_limit",
                                             DEFAULT_ACCOUNT_SERIES_LIMIT))
        return cls(tracing=tracing, metrics=metrics, tracer_provider=tracer_provider,
                   meter_provider=meter_provider, prometheus_registry=registry,
                   propagate_to_hubspot=config.propagate_to_hubspot,
                   lag_interval_seconds=getattr(config, "lag_interval_seconds", 5.0))

    # -- what workers and the CLI use ----------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """True when traces or metrics are recorded."""
        return self.tracing.enabled or self.metrics.enabled

    def http_transport(self, inner: httpx.BaseTransport | None = None, *,
                       limits: httpx.Limits | None = None) -> httpx.BaseTransport | None:
        """The transport to give ``HubSpotClient(transport=...)``.

        Off: ``inner`` itself (None lets the client build its default). On: ``inner`` wrapped
        in a :class:`TracingTransport`; None becomes ``httpx.HTTPTransport`` with ``limits``:
        pass the client's connection limits (``connector.hubspot.DEFAULT_LIMITS``), as httpx
        ignores the client's ``limits=`` once a transport is given.
        """
        if not self.enabled:
            return inner
        if inner is None:
            inner = httpx.HTTPTransport() if limits is None else httpx.HTTPTransport(limits=limits)
        return TracingTransport(inner, self.tracing, self.metrics, propagate=self._propagate)

    def lag_monitor(self, group: str, *, interval_s: float | None = None,
                    clock: Callable[[], float] | None = None) -> LagMonitor:
        """A :class:`LagMonitor` for one consumer group, reporting into :attr:`metrics`."""
        kwargs: dict[str, Any] = {
            "interval_s": interval_s if interval_s is not None else self._lag_interval}
        if clock is not None:
            kwargs["clock"] = clock
        return LagMonitor(self.metrics, group, **kwargs)

    @property
    def lag_interval_seconds(self) -> float:
        """How often lag (and other polled gauges) are refreshed from a worker's loop."""
        return self._lag_interval

    @property
    def has_prometheus(self) -> bool:
        """True when metrics are served for scraping."""
        return self._prometheus_registry is not None

    def prometheus_text(self) -> tuple[bytes, str]:
        """(exposition text, content type) of the current metrics; needs metrics=prometheus."""
        return exporters.prometheus_text(self._require_registry())

    def prometheus_app(self) -> Callable[..., Any]:
        """An ASGI app serving the metrics (mount at /metrics); needs metrics=prometheus."""
        return exporters.prometheus_asgi_app(self._require_registry())

    def _require_registry(self) -> Any:
        if self._prometheus_registry is None:
            raise RuntimeError("metrics are not exported for Prometheus (telemetry.metrics)")
        return self._prometheus_registry

    # -- tests ---------------------------------------------------------------------------------

    def finished_spans(self) -> tuple[ReadableSpan, ...]:
        """Spans ended so far (``for_tests`` only)."""
        if self._span_exporter is None:
            raise RuntimeError("finished_spans() needs Telemetry.for_tests()")
        return self._span_exporter.get_finished_spans()

    def metric_points(self, name: str) -> dict[frozenset[tuple[str, Any]], Any]:
        """Current points of metric ``name`` by attribute set (``for_tests`` only).

        Counters and gauges give their value, histograms ``(count, sum)``.
        """
        if not isinstance(self._metric_reader, InMemoryMetricReader):
            raise RuntimeError("metric_points() needs Telemetry.for_tests()")
        points: dict[frozenset[tuple[str, Any]], Any] = {}
        data = self._metric_reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        key = frozenset((point.attributes or {}).items())
                        value = getattr(point, "value", None)
                        points[key] = value if value is not None else (
                            getattr(point, "count", None), getattr(point, "sum", None))
        return points

    def metric_value(self, name: str, **attributes: Any) -> Any:
        """The point of ``name`` with exactly ``attributes`` (None if there is none)."""
        return self.metric_points(name).get(frozenset(attributes.items()))

    # -- lifecycle -----------------------------------------------------------------------------

    def force_flush(self) -> None:
        """Export what is buffered now."""
        if self._tracer_provider is not None:
            self._tracer_provider.force_flush()
        if self._meter_provider is not None:
            self._meter_provider.force_flush()

    def shutdown(self) -> None:
        """Flush and stop exporters (idempotent)."""
        if self._tracer_provider is not None:
            self._tracer_provider.shutdown()
            self._tracer_provider = None
        if self._meter_provider is not None:
            self._meter_provider.shutdown()
            self._meter_provider = None

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()
