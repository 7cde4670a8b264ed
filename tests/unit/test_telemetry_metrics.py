"""Metrics read through an in-memory reader: counters match what was processed; exporters."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr

from connector.errors import ConfigError
from connector.sample import SampleSpec, generate
from connector.serde.catalog import ACTIVITY_SCHEMA, SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.record import DecodeFailure, SourceRecord
from connector.serde.topic import TopicDecoder, TopicFormat, build_codec
from connector.telemetry import (
    NOOP_METRICS,
    ConnectorMetrics,
    LagMonitor,
    Metrics,
    OtelTracing,
    Telemetry,
    Tracing,
)


@dataclass(frozen=True)
class Config:
    """The proposed TelemetrySettings section, as a plain value."""

    enabled: bool = True
    service_name: str = "connector-test"
    traces: Any = "none"
    metrics: Any = "none"
    otlp_endpoint: str = "http://127.0.0.1:4318"
    otlp_headers: SecretStr | None = None
    trace_sample_ratio: float = 1.0
    metric_export_interval_seconds: float = 60.0
    propagate_to_hubspot: bool = False
    lag_interval_seconds: float = 5.0


def test_counters_match_the_records_processed() -> None:
    catalog = SchemaCatalog.from_directory()
    codec = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "webinar.activity", catalog)
    sample = generate(SampleSpec(seed=3, webinars=2, people_per_webinar=20))
    values = [codec.encode(r) for kind, r in sample.publish_order() if kind == "activity"]
    garbage = [b"", b"\x02\x03", None]
    records = [SourceRecord("webinar.activity", 0, i, b"k", v)
               for i, v in enumerate(values + garbage)]
    decoder = TopicDecoder(codec)

    with Telemetry.for_tests() as telemetry:
        metrics = telemetry.metrics
        failures: dict[str, int] = {}
        for record in records:
            metrics.records_in(record.topic)
            result = decoder.decode(record)
            if isinstance(result, DecodeFailure):
                metrics.dead_letter(record.topic, result.reason.value)
                failures[result.reason.value] = failures.get(result.reason.value, 0) + 1
            else:
                metrics.records_out("connector.commands")
        metrics.records_out("connector.commands", 5)  # a batch reported at once

        assert telemetry.metric_value("connector.records.in",
                                      topic="webinar.activity") == len(records)
        assert telemetry.metric_value("connector.records.out",
                                      topic="connector.commands") == len(values) + 5
        dead = telemetry.metric_points("connector.dead_letters")
        assert {dict(k)["reason"]: v for k, v in dead.items()} == failures
        assert sum(failures.values()) == len(garbage)
        # Cumulative: reading again gives the same totals, later adds accumulate.
        metrics.records_in("webinar.activity")
        assert telemetry.metric_value("connector.records.in",
                                      topic="webinar.activity") == len(records) + 1


def test_counters_are_exact_across_threads() -> None:
    with Telemetry.for_tests() as telemetry:
        metrics = telemetry.metrics

        def work() -> None:
            for _ in range(20_000):
                metrics.records_in("t")

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert telemetry.metric_value("connector.records.in", topic="t") == 80_000


def test_hubspot_batch_and_gauge_metrics() -> None:
    with Telemetry.for_tests() as telemetry:
        m = telemetry.metrics
        m.hubspot_request("batch_upsert_events", "200", 0.12)
        m.hubspot_request("batch_upsert_events", "429", 0.01)
        m.hubspot_retry("batch_upsert_events", "429")
        m.batch_sent("record_external_attendance", 25, 100)
        m.batch_sent("record_external_attendance", 100, 100)
        m.set_rate_budget(window=87, daily=249_000)
        m.set_rate_budget(window=86)
        m.set_open_attendances(12)
        m.set_in_flight(7, 10)
        m.set_state_size(340)
        m.set_consumer_lag("g", {("t", 0): 5, ("t", 1): 0})
        m.set_consumer_lag("g", {("t", 1): 2})  # partition 0 revoked

        v = telemetry.metric_value
        count, total = v("connector.hubspot.request.duration",
                         operation="batch_upsert_events", status="200")
        assert (count, total) == (1, pytest.approx(0.12))
        assert v("connector.hubspot.throttled", operation="batch_upsert_events") == 1
        assert v("connector.hubspot.retries", operation="batch_upsert_events", reason="429") == 1
        assert v("connector.sink.batch.fill_ratio", operation="record_external_attendance") == (
            2, pytest.approx(1.25))
        assert v("connector.hubspot.rate_budget.remaining", window="10s") == 86
        assert v("connector.hubspot.rate_budget.remaining", window="daily") == 249_000
        assert v("connector.normalizer.attendances.open") == 12
        assert v("connector.sink.requests.in_flight", kind="now") == 7
        assert v("connector.sink.requests.in_flight", kind="target") == 10
        assert v("connector.normalizer.state.size") == 340
        lag = telemetry.metric_points("connector.consumer.lag")
        assert {dict(k)["partition"]: value for k, value in lag.items()} == {"1": 2}


def test_prometheus_exposition_text_and_asgi_app() -> None:
    with Telemetry.for_tests(prometheus=True) as telemetry:
        telemetry.metrics.records_in("webinar.activity", 3)
        telemetry.metrics.hubspot_request("get_event", "200", 0.2)
        text, content_type = telemetry.prometheus_text()
        assert content_type.startswith("text/plain")
        lines = text.decode().splitlines()
        assert any(line.startswith('connector_records_in_total{')
                   and 'topic="webinar.activity"' in line and line.endswith(" 3.0")
                   for line in lines)
        assert any(line.startswith("connector_hubspot_request_duration_seconds_count{")
                   for line in lines)

        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/metrics", "query_string": b"",
                 "headers": []}
        asyncio.run(telemetry.prometheus_app()(scope, receive, send))
        assert sent[0]["status"] == 200
        assert b"connector_records_in_total" in b"".join(m.get("body", b"") for m in sent)


def test_two_prometheus_telemetries_do_not_collide() -> None:
    with Telemetry.for_tests(prometheus=True) as a, Telemetry.for_tests(prometheus=True) as b:
        a.metrics.records_in("a")
        assert b'topic="a"' not in b.prometheus_text()[0]


def test_disabled_metrics_are_the_no_op_base() -> None:
    telemetry = Telemetry.disabled()
    assert telemetry.metrics is NOOP_METRICS and type(telemetry.metrics) is Metrics
    assert not isinstance(telemetry.metrics, ConnectorMetrics)
    assert telemetry.metrics.records_in("t") is None
    assert not telemetry.has_prometheus
    with pytest.raises(RuntimeError):
        telemetry.metric_points("connector.records.in")
    with pytest.raises(RuntimeError):
        telemetry.prometheus_text()

    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"consumer.{name} called with telemetry off")

    telemetry.lag_monitor("g").maybe_refresh(Untouchable())


def test_from_settings_none_or_disabled_gives_no_ops() -> None:
    for config in (Config(), Config(enabled=False, traces="console", metrics="prometheus")):
        telemetry = Telemetry.from_settings(config)
        assert type(telemetry.tracing) is Tracing and type(telemetry.metrics) is Metrics
        assert not telemetry.enabled


def test_from_settings_prometheus_and_console(capsys: pytest.CaptureFixture[str]) -> None:
    telemetry = Telemetry.from_settings(Config(traces="console", metrics="prometheus",
                                               trace_sample_ratio=1.0))
    try:
        assert isinstance(telemetry.tracing, OtelTracing)
        assert isinstance(telemetry.metrics, ConnectorMetrics)
        assert telemetry.has_prometheus
        with telemetry.tracing.span("hello"):
            pass
        telemetry.force_flush()
    finally:
        telemetry.shutdown()
    printed = json.loads(capsys.readouterr().out)
    assert printed["name"] == "hello"
    assert printed["resource"]["attributes"]["service.name"] == "connector-test"


def test_from_settings_console_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    telemetry = Telemetry.from_settings(Config(metrics="console"))
    telemetry.metrics.records_in("t", 2)
    telemetry.shutdown()  # exports once more on the way out
    assert "connector.records.in" in capsys.readouterr().out


def test_from_settings_otlp_needs_the_extra_or_builds_exporters() -> None:
    config = Config(traces="otlp", metrics="otlp",
                    otlp_headers=SecretStr("authorization=Bearer abc,x-team=conn"))
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="otlp extra"):
            Telemetry.from_settings(config)
        return
    telemetry = Telemetry.from_settings(config)
    assert isinstance(telemetry.tracing, OtelTracing)
    telemetry.shutdown()


def test_otlp_headers_are_validated() -> None:
    with pytest.raises(ConfigError, match="OTLP_HEADERS"):
        Telemetry.from_settings(Config(traces="otlp", otlp_headers=SecretStr("no-equals-sign")))


# -- lag (the real-broker test is tests/integration/test_telemetry_lag.py) ---------------------


class FakeTP:
    def __init__(self, topic: str, partition: int, offset: int = -1001) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset


class FakeConsumer:
    """assignment / position / get_watermark_offsets / committed, from fixed numbers."""

    def __init__(self, positions: dict[int, int], highs: dict[int, int],
                 committed: dict[int, int]) -> None:
        self.positions, self.highs, self.committed_offsets = positions, highs, committed
        self.committed_calls = 0

    def assignment(self) -> list[FakeTP]:
        return [FakeTP("t", p) for p in self.positions]

    def position(self, partitions: list[FakeTP]) -> list[FakeTP]:
        return [FakeTP(tp.topic, tp.partition, self.positions[tp.partition]) for tp in partitions]

    def get_watermark_offsets(self, tp: Any, cached: bool = False) -> tuple[int, int]:
        assert cached, "lag must not cost a broker round trip"
        return 0, self.highs.get(tp.partition, -1001)

    def committed(self, partitions: list[Any], timeout: float) -> list[FakeTP]:
        self.committed_calls += 1
        return [FakeTP(tp.topic, tp.partition, self.committed_offsets.get(tp.partition, -1001))
                for tp in partitions]


def test_lag_from_position_watermark_and_committed_fallback() -> None:
    consumer = FakeConsumer(positions={0: 40, 1: -1001, 2: -1001, 3: 10},
                            highs={0: 100, 1: 50, 2: 7}, committed={1: 45})
    with Telemetry.for_tests() as telemetry:
        monitor = telemetry.lag_monitor("g")
        assert monitor.refresh(consumer) == {("t", 0): 60, ("t", 1): 5}
        monitor.refresh(consumer)
        assert consumer.committed_calls == 2  # partition 2 still unknown, asked again
        points = telemetry.metric_points("connector.consumer.lag")
        assert {dict(k)["partition"]: v for k, v in points.items()} == {"0": 60, "1": 5}


def test_lag_refresh_is_rate_limited_by_the_injected_clock() -> None:
    now = [0.0]
    consumer = FakeConsumer(positions={0: 1}, highs={0: 3}, committed={})
    monitor = LagMonitor(ConnectorMetrics.__new__(ConnectorMetrics), "g", interval_s=5,
                         clock=lambda: now[0])
    calls: list[dict[tuple[str, int], int]] = []
    monitor.refresh = lambda c: calls.append({}) or {}  # type: ignore[method-assign]
    for t in (0.0, 1.0, 4.9, 5.0, 9.0, 10.5):
        now[0] = t
        monitor.maybe_refresh(consumer)
    assert len(calls) == 3  # at 0, 5 and 10.5


def test_lag_from_librdkafka_statistics() -> None:
    stats = {"topics": {"t": {"partitions": {
        "0": {"consumer_lag": 12, "desired": True},
        "1": {"consumer_lag": -1, "desired": True},
        "2": {"consumer_lag": 3, "desired": False},
        "-1": {"consumer_lag": 99},
    }}}}
    with Telemetry.for_tests() as telemetry:
        monitor = telemetry.lag_monitor("g")
        monitor.on_stats(json.dumps(stats))
        assert monitor.last == {("t", 0): 12}
        assert telemetry.metric_value("connector.consumer.lag", group="g", topic="t",
                                      partition="0") == 12
