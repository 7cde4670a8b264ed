"""Telemetry overhead on the normalizer: the worker's own per-record path with telemetry on vs off.

    .venv/bin/python bench/telemetry_overhead.py [--webinars 8] [--people 1000] [--repeats 7]
                                                 [--ratios 0.01,0.1,1] [--json out.json]

Runs the real :class:`~connector.normalize.worker.NormalizerWorker` code minus Kafka I/O: each
generated platform record (raw Avro, as the platform writes it) goes through the worker's
``_handle`` (``SourceRecord.from_message``, trace from the headers, decode, the
AttendanceNormalizer, dead letters) in batches of ``--batch`` records, and each batch through
``_commit`` (command encoding with ``connector.source`` and trace headers, dead-letter envelopes,
changelog encoding, counters) and the loop's ``_report`` (lag, open attendances, state size). The
producer and consumer are stand-ins whose calls do nothing, so Kafka's own cost (a librdkafka
``produce`` is about 1-2 µs) is left out and the ratios are, if anything, pessimistic. The
webinar table holds every webinar's final version up front (a catch-up: every change emits).

Variants, interleaved so drift hits them alike, each on a fresh worker state:

* ``off``: ``Telemetry.disabled()`` (what ``CONNECTOR_TELEMETRY__ENABLED=false`` gives);
* ``on@R``: traces at root sampling ratio R (default settings: 0.01) through a
  BatchSpanProcessor into an exporter that drops them (export runs on the processor's thread and
  is not counted), metrics through a Prometheus reader (the default exporter).

Target: on@0.01 / off < 1.10; goal < 1.05.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from connector.config import load_settings
from connector.normalize.normalizer import AttendanceNormalizer
from connector.normalize.worker import NormalizerWorker, _Pending
from connector.sample import SampleSpec, generate
from connector.serde import ACTIVITY_SCHEMA, Framing, SchemaCatalog, TopicFormat, build_codec
from connector.telemetry import ConnectorMetrics, OtelTracing, Telemetry
from connector.telemetry import exporters as telemetry_exporters

TOPIC_IN = "webinar.activity"


class _DropSpans(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _Message:
    """What confluent_kafka.Message offers the worker."""

    __slots__ = ("_key", "_offset", "_partition", "_value")

    def __init__(self, partition: int, offset: int, key: bytes, value: bytes) -> None:
        self._partition, self._offset, self._key, self._value = partition, offset, key, value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return TOPIC_IN

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_767_261_600_000)


class _Producer:
    def produce(self, *args: Any, **kwargs: Any) -> None:
        pass

    def begin_transaction(self) -> None:
        pass

    def commit_transaction(self) -> None:
        pass

    def send_offsets_to_transaction(self, *args: Any) -> None:
        pass


class _Consumer:
    def assignment(self) -> list[Any]:
        return []

    def position(self, partitions: list[Any]) -> list[Any]:
        return []

    def consumer_group_metadata(self) -> None:
        return None


def _telemetry_on(ratio: float) -> Telemetry:
    processor = telemetry_exporters.batch_processor(_DropSpans())
    tracer_provider = telemetry_exporters.tracer_provider("bench", [processor])
    reader, registry = telemetry_exporters.prometheus_reader()
    meter_provider = telemetry_exporters.meter_provider("bench", [reader])
    return Telemetry(tracing=OtelTracing(tracer_provider.get_tracer("connector"), ratio),
                     metrics=ConnectorMetrics(meter_provider.get_meter("connector")),
                     tracer_provider=tracer_provider, meter_provider=meter_provider,
                     prometheus_registry=registry)


def _messages(webinars: int, people: int) -> tuple[list[_Message], list[dict[str, Any]]]:
    """The sample's activities as consumed messages (3 partitions by webinar), and the final
    version of each webinar."""
    codec = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a",
                        SchemaCatalog.from_directory())
    sample = generate(SampleSpec(seed=1, webinars=webinars, people_per_webinar=people))
    partition_of = {webinar_id: n % 3 for n, webinar_id in enumerate(
        dict.fromkeys(w["webinarId"] for w in sample.webinars))}
    offsets = [0, 0, 0]
    messages = []
    for kind, record in sample.publish_order():
        if kind != "activity":
            continue
        partition = partition_of[record["webinarId"]]
        messages.append(_Message(partition, offsets[partition], record["webinarId"].encode(),
                                 codec.encode(record)))
        offsets[partition] += 1
    final = {w["webinarId"]: w for w in sample.webinars}
    return messages, list(final.values())


def _worker(telemetry: Telemetry, webinars: list[dict[str, Any]]) -> NormalizerWorker:
    settings = load_settings({"CONNECTOR_TOPICS__ACTIVITY": TOPIC_IN})
    worker = NormalizerWorker(settings, threading.Event(), telemetry)
    for webinar in webinars:
        worker.table.put(webinar)
    return worker


def _run(worker: NormalizerWorker, messages: list[_Message], batch: int) -> float:
    """Seconds for the worker to handle and commit every message, from a fresh state."""
    worker.normalizers = {p: AttendanceNormalizer(worker.table.get, worker.rules)
                          for p in range(3)}
    worker._quiet_since = {p: 0.0 for p in range(3)}
    producer, consumer = _Producer(), _Consumer()
    handle, commit, report = worker._handle, worker._commit, worker._report
    metrics_on = worker.metrics.enabled
    start = time.perf_counter()
    for first in range(0, len(messages), batch):
        if metrics_on:
            report(consumer)  # type: ignore[arg-type]
        pending = _Pending()
        for message in messages[first:first + batch]:
            handle(message, pending)
        commit(consumer, producer, pending)  # type: ignore[arg-type]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webinars", type=int, default=8)
    parser.add_argument("--people", type=int, default=1000, help="people per webinar")
    parser.add_argument("--batch", type=int, default=500, help="records per transaction")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--ratios", default="0.01,0.1,1",
                        help="root sampling ratios with telemetry on (default settings: 0.01)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, like bench/decode
    messages, webinars = _messages(args.webinars, args.people)
    ratios = [float(r) for r in args.ratios.split(",")]
    telemetries = {"off": Telemetry.disabled()}
    telemetries.update({f"on@{r:g}": _telemetry_on(r) for r in ratios})
    workers = {name: _worker(t, webinars) for name, t in telemetries.items()}

    for worker in workers.values():  # warm-up
        _run(worker, messages, args.batch)
    samples: dict[str, list[float]] = {name: [] for name in workers}
    for _ in range(args.repeats):
        for name, worker in workers.items():
            samples[name].append(_run(worker, messages, args.batch) / len(messages) * 1e6)
    for telemetry in telemetries.values():
        telemetry.shutdown()

    best = {name: min(values) for name, values in samples.items()}
    median = {name: statistics.median(values) for name, values in samples.items()}
    print(f"normalizer worker path (_handle + _commit, no Kafka I/O): {len(messages)} records x "
          f"{args.repeats} runs, one core; µs/record (best, median)")
    for name in workers:
        line = f"  {name:<9} {best[name]:7.2f} {median[name]:7.2f}"
        if name != "off":
            line += (f"   on/off x{best[name] / best['off']:.3f} "
                     f"(median x{median[name] / median['off']:.3f})")
        print(line)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"records": len(messages), "best_us": best, "median_us": median,
                       "ratio_best": {n: best[n] / best["off"] for n in best},
                       "ratio_median": {n: median[n] / median["off"] for n in median}},
                      handle, indent=2)


if __name__ == "__main__":
    main()
