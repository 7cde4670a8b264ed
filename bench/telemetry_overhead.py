"""Telemetry overhead per record on a normalizer-like loop (ratio with telemetry on vs off).

    .venv/bin/python bench/telemetry_overhead.py [--records 50000] [--repeats 7] [--json out.json]

The loop does what the normalizer does per record, minus Kafka: a real Avro decode of a
generated platform record, a stand-in for normalizing (re-encoding the datum, about what writing
a command costs), and the instrumentation a worker adds: ``tracing.consume(record)`` (extract the
W3C context), spans around decode and normalize, ``records_in``/``records_out`` counters, and a
producer span whose context is injected into the output headers.

Variants: ``bare`` (no telemetry calls at all), ``off`` (Telemetry.disabled(): the no-op
objects), and ``on`` at several root sampling ratios (ParentBased + ratio at the root; spans go
through a BatchSpanProcessor into an exporter that drops them, so exporter serialization, which
runs on the processor's thread, is not counted). The target is on/off < 1.10, the goal < 1.05.
TODO: point it at the real AttendanceNormalizer once its worker API settles.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from connector.sample import SampleSpec, generate
from connector.serde import (
    Decoded,
    Framing,
    SchemaCatalog,
    SourceRecord,
    TopicDecoder,
    TopicFormat,
    build_codec,
)
from connector.telemetry import ConnectorMetrics, OtelTracing, Telemetry
from connector.telemetry import exporters as telemetry_exporters

TOPIC_IN = "webinar.activity"
TOPIC_OUT = "connector.commands"


class _DropSpans(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _telemetry_on(ratio: float) -> Telemetry:
    processor = telemetry_exporters.batch_processor(_DropSpans())
    tracer_provider = telemetry_exporters.tracer_provider("bench", [processor])
    reader, registry = telemetry_exporters.prometheus_reader()
    meter_provider = telemetry_exporters.meter_provider("bench", [reader])
    return Telemetry(tracing=OtelTracing(tracer_provider.get_tracer("connector"), ratio),
                     metrics=ConnectorMetrics(meter_provider.get_meter("connector")),
                     tracer_provider=tracer_provider, meter_provider=meter_provider,
                     prometheus_registry=registry)


def _records(count: int) -> tuple[list[SourceRecord], TopicDecoder, Callable[[Any], bytes]]:
    codec = build_codec(TopicFormat(Framing.RAW, "webinar.platform.v1.WebinarActivity"), "t",
                        SchemaCatalog.from_directory())
    sample = generate(SampleSpec(seed=1, webinars=4, people_per_webinar=500))
    values = [codec.encode(r) for kind, r in sample.publish_order() if kind == "activity"]
    records = [SourceRecord(TOPIC_IN, 0, i, b"web", values[i % len(values)])
               for i in range(count)]
    return records, TopicDecoder(codec), codec.encode


def _bare_loop(records: list[SourceRecord], decode: Any, encode: Any) -> float:
    start = time.perf_counter()
    for record in records:
        result = decode(record)
        if isinstance(result, Decoded):
            value = encode(result.value)
            headers: list[tuple[str, Any]] = [("connector.source", b"t/0/1")]
            _ = (value, headers)
    return time.perf_counter() - start


def _instrumented_loop(records: list[SourceRecord], decode: Any, encode: Any,
                       telemetry: Telemetry) -> float:
    tracing, metrics = telemetry.tracing, telemetry.metrics
    start = time.perf_counter()
    for record in records:
        rt = tracing.consume(record)
        with rt:
            metrics.records_in(TOPIC_IN)
            with rt.decode():
                result = decode(record)
            if isinstance(result, Decoded):
                with rt.normalize():
                    value = encode(result.value)
                with rt.produce(TOPIC_OUT) as send:
                    headers = send.inject([("connector.source", b"t/0/1")])
                metrics.records_out(TOPIC_OUT)
                _ = (value, headers)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--ratios", default="0,0.01,0.05,1", help="root sampling ratios (on)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, like bench/decode
    records, decoder, encode = _records(args.records)
    decode = decoder.decode
    ratios = [float(r) for r in args.ratios.split(",")]
    variants: dict[str, Callable[[], float]] = {
        "bare": lambda: _bare_loop(records, decode, encode)}
    off = Telemetry.disabled()
    variants["off"] = lambda: _instrumented_loop(records, decode, encode, off)
    on: dict[str, Telemetry] = {f"on@{r:g}": _telemetry_on(r) for r in ratios}
    for name, telemetry in on.items():
        variants[name] = (lambda t: lambda: _instrumented_loop(records, decode, encode, t))(
            telemetry)

    for run in variants.values():  # warm-up
        run()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):  # interleaved, so drift hits every variant alike
        for name, run in variants.items():
            samples[name].append(run() / args.records * 1e6)
    for telemetry in on.values():
        telemetry.shutdown()

    best = {name: min(values) for name, values in samples.items()}
    median = {name: statistics.median(values) for name, values in samples.items()}
    print(f"{args.records} records x {args.repeats} runs, one core; µs/record (best, median)")
    for name in variants:
        line = f"  {name:<10} {best[name]:7.2f} {median[name]:7.2f}"
        if name != "bare":
            line += f"   vs bare x{best[name] / best['bare']:.3f}"
        if name.startswith("on@"):
            line += f"   vs off x{best[name] / best['off']:.3f} (median x" \
                    f"{median[name] / median['off']:.3f})"
        print(line)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"records": args.records, "best_us": best, "median_us": median}, handle,
                      indent=2)


if __name__ == "__main__":
    main()
