"""Providers and exporters built from settings: console, OTLP (optional extra), Prometheus.

Exporter packages are imported only when chosen. OTLP needs the ``otlp`` extra
(``opentelemetry-exporter-otlp-proto-http``); Prometheus uses ``opentelemetry-exporter-prometheus``
(which brings ``prometheus-client``) with a registry private to each :class:`Telemetry`, so tests
and several instances never share the process-wide default registry.

Nothing here sets OpenTelemetry's global providers: they live on the Telemetry object.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from connector import __version__
from connector.errors import ConfigError

TracesExporter = Literal["none", "console", "otlp"]
MetricsExporter = Literal["none", "prometheus", "otlp", "console"]

OTLP_EXTRA_HINT = ("install the otlp extra: pip install 'webinar-hubspot-connector[otlp]' "
                   "(opentelemetry-exporter-otlp-proto-http)")
PROMETHEUS_HINT = "install opentelemetry-exporter-prometheus (it brings prometheus-client)"


class Secret(Protocol):
    """pydantic.SecretStr's reading side."""

    def get_secret_value(self) -> str: ...


class TelemetryConfig(Protocol):
    """What :meth:`Telemetry.from_settings` reads (the proposed ``TelemetrySettings`` section)."""

    @property
    def enabled(self) -> bool: ...

    @property
    def service_name(self) -> str: ...

    @property
    def traces(self) -> TracesExporter: ...

    @property
    def metrics(self) -> MetricsExporter: ...

    @property
    def otlp_endpoint(self) -> str: ...

    @property
    def otlp_headers(self) -> Secret | None: ...

    @property
    def trace_sample_ratio(self) -> float: ...

    @property
    def metric_export_interval_seconds(self) -> float: ...

    @property
    def propagate_to_hubspot(self) -> bool: ...


def resource(service_name: str) -> Resource:
    """service.name and service.version (built directly: Resource.create would read the env)."""
    return Resource({"service.name": service_name, "service.version": __version__})


def tracer_provider(service_name: str, processors: Sequence[SpanProcessor]) -> TracerProvider:
    """A provider with the ALWAYS_ON sampler: connector.telemetry.tracing decides sampling
    (roots and parents alike) before it starts a span, so every span it starts is sampled and
    ParentBased's second look at the parent would only cost time."""
    provider = TracerProvider(sampler=ALWAYS_ON, resource=resource(service_name),
                              shutdown_on_exit=False)
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def meter_provider(service_name: str, readers: Sequence[MetricReader]) -> MeterProvider:
    """A provider reading through ``readers``."""
    return MeterProvider(metric_readers=list(readers), resource=resource(service_name),
                         shutdown_on_exit=False)


def _otlp_headers(config: TelemetryConfig) -> dict[str, str]:
    if config.otlp_headers is None:
        return {}
    headers = {}
    for pair in config.otlp_headers.get_secret_value().split(","):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError("CONNECTOR_TELEMETRY__OTLP_HEADERS: expected key=value[,key=value]")
        headers[key.strip()] = value.strip()
    return headers


def span_exporter(config: TelemetryConfig) -> SpanExporter:
    """The span exporter ``config.traces`` names (not "none")."""
    if config.traces == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter
        return ConsoleSpanExporter(out=sys.stdout)  # the current stdout, not import-time's
    headers = _otlp_headers(config)
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise ConfigError(f"telemetry traces=otlp: {OTLP_EXTRA_HINT}") from exc
    return OTLPSpanExporter(endpoint=config.otlp_endpoint.rstrip("/") + "/v1/traces",
                            headers=headers)


def batch_processor(exporter: SpanExporter) -> BatchSpanProcessor:
    """Export off the hot path: spans queue in memory and leave on a background thread."""
    return BatchSpanProcessor(exporter, max_queue_size=8192, schedule_delay_millis=2000,
                              max_export_batch_size=512, export_timeout_millis=10_000)


def metric_reader(config: TelemetryConfig) -> tuple[MetricReader, Any]:
    """The reader ``config.metrics`` names (not "none"), and the Prometheus registry if any."""
    if config.metrics == "prometheus":
        return prometheus_reader()
    interval_ms = config.metric_export_interval_seconds * 1000
    if config.metrics == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
        return PeriodicExportingMetricReader(ConsoleMetricExporter(out=sys.stdout),
                                             export_interval_millis=interval_ms), None
    headers = _otlp_headers(config)
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    except ImportError as exc:
        raise ConfigError(f"telemetry metrics=otlp: {OTLP_EXTRA_HINT}") from exc
    exporter = OTLPMetricExporter(endpoint=config.otlp_endpoint.rstrip("/") + "/v1/metrics",
                                  headers=headers)
    return PeriodicExportingMetricReader(exporter, export_interval_millis=interval_ms), None


def prometheus_reader() -> tuple[MetricReader, Any]:
    """A pull reader registered in its own prometheus_client registry (returned with it)."""
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry
    except ImportError as exc:
        raise ConfigError(f"telemetry metrics=prometheus: {PROMETHEUS_HINT}") from exc
    registry = CollectorRegistry(auto_describe=True)
    return PrometheusMetricReader(registry=registry), registry


def prometheus_text(registry: Any) -> tuple[bytes, str]:
    """The exposition text of ``registry`` and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    return generate_latest(registry), CONTENT_TYPE_LATEST


def prometheus_asgi_app(registry: Any) -> Callable[..., Any]:
    """An ASGI app serving ``registry`` (mount it at /metrics)."""
    from prometheus_client import make_asgi_app
    app: Callable[..., Any] = make_asgi_app(registry)
    return app
