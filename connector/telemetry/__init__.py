"""Traces, metrics and logs: the only package that imports OpenTelemetry.

Workers receive a :class:`Telemetry` and call ``telemetry.tracing`` / ``telemetry.metrics``;
with telemetry off those are no-op objects, so the calls cost next to nothing. A normalizer::

    tracing, metrics = telemetry.tracing, telemetry.metrics
    rt = tracing.consume(record)                 # W3C context from the record's headers
    with rt:
        metrics.records_in(record.topic)
        with rt.decode():
            result = decoder.decode(record)
        with rt.normalize():
            out = normalizer.on_activity(result.value, record)
    ...                                          # later, when producing the commands
    with rt.produce(commands_topic) as span:
        producer.produce(commands_topic, value=..., headers=span.inject(headers))
    metrics.records_out(commands_topic)

A sink::

    client = HubSpotClient(token, transport=telemetry.http_transport(inner))
    with tracing.sink_batch([p.source for p in work.items], operation="upsert"):
        client.record_external_attendance(...)   # CLIENT span + latency per request

Per-account series (app mode's sink) carry a bounded ``account`` label: see :mod:`.accounts`.

Logs: :func:`configure_logging` and :func:`register_secret` (see :mod:`.logs`).
"""

from connector.telemetry.accounts import OTHER_ACCOUNTS, AccountLabels
from connector.telemetry.exporters import TelemetryConfig
from connector.telemetry.http import TracingTransport, route_of, safe_url
from connector.telemetry.lag import LagMonitor
from connector.telemetry.logs import (
    JsonFormatter,
    KeyValueFormatter,
    RedactingFilter,
    configure_logging,
    redact,
    register_secret,
)
from connector.telemetry.metrics import NOOP_METRICS, AccountBudget, ConnectorMetrics, Metrics
from connector.telemetry.propagation import extract_context, inject_context
from connector.telemetry.scope import NOOP_RECORD, NOOP_SCOPE, RecordTrace, SpanScope
from connector.telemetry.telemetry import Telemetry
from connector.telemetry.tracing import OtelTracing, Tracing

__all__ = [
    "NOOP_METRICS",
    "NOOP_RECORD",
    "NOOP_SCOPE",
    "OTHER_ACCOUNTS",
    "AccountBudget",
    "AccountLabels",
    "ConnectorMetrics",
    "JsonFormatter",
    "KeyValueFormatter",
    "LagMonitor",
    "Metrics",
    "OtelTracing",
    "RecordTrace",
    "RedactingFilter",
    "SpanScope",
    "Telemetry",
    "TelemetryConfig",
    "Tracing",
    "TracingTransport",
    "configure_logging",
    "extract_context",
    "inject_context",
    "redact",
    "register_secret",
    "route_of",
    "safe_url",
]
