"""Telemetry overhead on the normalizer's per-record path: bypassed, off, and on at 1/10/100%.

    .venv/bin/python bench/telemetry_overhead.py [--rounds 15] [--webinars 8] [--people 1000]
    .venv/bin/python bench/telemetry_overhead.py --instructions [--webinars 2] [--people 500]
    add --compiled to measure the native core as built (without the bypass variant)

What runs: the real :class:`~connector.runtime.normalizer.NormalizerWorker` code minus Kafka I/O,
in-process, on pre-encoded platform records (raw Avro, no trace headers, as the platform writes
them), in batches of ``--batch`` the way the worker's ``_loop`` takes them: ``_report`` (lag,
open attendances, state size; when metrics are on; here once per run), the record handler's
``handle_batch`` (``SourceRecord``, trace, decode, the AttendanceNormalizer, dead letters; a
record with headers or picked to start a trace through ``_handle_traced``) and the committer's
``commit`` (command encoding with ``connector.source`` and trace headers, dead-letter envelopes,
changelog encoding, counters).
Producer and consumer are stand-ins that do nothing, so Kafka's own cost (~1-2 µs a
``produce``) is left out and the ratios are, if anything, pessimistic. The webinar table holds
every webinar's final version up front.

Variants, each on a fresh normalizer state every run:

* ``bypass``: the methods on that path (the worker's ``RecordHandler`` and
  ``TransactionCommitter``) recompiled with every telemetry call removed (metrics calls,
  ``tracing.consume``, the ``with rt...`` blocks, ``inject``): the code as if telemetry had never
  been written. Only the plumbing of a trace object through ``TransactionWrites`` tuples stays.
  The bench refuses to run if those methods change so that a call is left.
* ``off``: ``Telemetry.disabled()`` (``CONNECTOR_TELEMETRY__ENABLED=false``), and ``off(A/A)``,
  the same again, whose difference from ``off`` is the noise band of the timing.
* ``metrics``: the default settings (traces none, metrics through a Prometheus reader).
* ``on@R``: traces at root sampling ratio R (default settings: 0.01) through the production
  BatchSpanProcessor into an exporter that drops spans, metrics through a Prometheus reader (the
  default). Sampling draws from a seeded RNG, so every variant traces the same records.

Two measures:

* time (default): ``--rounds`` rounds, each running every variant once in a rotated order (drift
  and order hit all alike), pinned to one core. Per variant the median µs/record and its
  inter-quartile range; per round the ratio to ``off`` of the same round, median [IQR], and
  ``off - bypass`` next to ``off(A/A) - off`` in ns/record: a difference inside the A/A band is
  not measurable. The span export thread shares the one core, so its work is in the time. On a
  shared 2-core machine the A/A band is several µs/record wide: use it to judge the rest.
* ``--instructions``: each variant in its own process under ``valgrind --tool=callgrind``,
  counting the instructions of one run after a warm-up (every thread, the export thread
  included). Repeatable to a few instructions per record, whatever else the machine does;
  ~1-2 min per variant. Every variant runs on one copy of ``connector/`` taken at the start
  (the tree may change meanwhile), and prints its digest. Instructions are not time: traced
  records allocate many objects and run fewer instructions per ns, so the traced variants' time
  ratios come out higher than their instruction ratios (at 1%: x1.03-x1.04 vs x1.015 here:
  the traced path, run for one record in a hundred, is cold in the caches).

Both measures collect and then freeze (``gc.freeze``) what set-up allocated before the measured
runs, so a full collection over every imported module does not land in one variant and not in
another by chance, and run with the garbage collector's thresholds that ``NormalizerWorker.run``
sets, freezing after each transaction as ``connector run normalizer`` does
(``connector.normalize.collector``; ``--gc default`` keeps Python's thresholds and does not freeze
after transactions).

Target: on@0.01 / off < 1.10; goal < 1.05. Off vs bypass: not measurable.
"""

from __future__ import annotations

import argparse
import ast
import gc
import hashlib
import inspect
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# The bypass variant rewrites NormalizerWorker's methods from their source, and a compiled class
# has none and cannot be subclassed: the bench runs the native core's sources interpreted, as
# before it was compiled (so its figures are the interpreted code's), and so do its callgrind
# children. Before the package is imported. (As bench/sink_backlog.py's harness, that sets it.)
# ``--compiled`` measures the native core as built instead, without the bypass variant.
COMPILED = "--compiled" in sys.argv
if __name__ == "__main__" and not COMPILED:
    os.environ["NATIVE_CORE"] = "0"

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from connector import native
from connector.config import load_settings
from connector.normalize import collector as collector_module
from connector.runtime import normalizer as worker_module
from connector.runtime.assemble import normalizer_worker
from connector.normalize.normalizer import AttendanceNormalizer
from connector.runtime.normalizer import NormalizerWorker
from connector.runtime.normalizer_commit import TransactionCommitter
from connector.runtime.normalizer_records import RecordHandler
from connector.runtime.normalizer_state import TransactionWrites
from connector.sample import SampleSpec, generate
from connector.serde.catalog import ACTIVITY_SCHEMA, SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.topic import TopicFormat, build_codec
from connector.telemetry import ConnectorMetrics, OtelTracing, Telemetry
from connector.telemetry import exporters as telemetry_exporters

TOPIC_IN = "webinar.activity"
SEED = 1
IMPORTED_DIGEST = ""  # set in main(), right after the imports
#: ``_report`` scans the normalizer's state at most once per lag interval of wall-clock time (5 s
#: by default). The bench makes that exactly once per run (see ``_run``), whatever the speed:
#: under callgrind, 5 s would be a few batches, and the scan would count many times over.
REPORT_INTERVAL = 3600.0


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

    def commit_transaction(self, timeout: float) -> None:
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


# -- the variant without telemetry code --------------------------------------------------------

_TRACE_PLUMBING = "rt"  # the name the per-record path gives a record's trace


class _StripTelemetry(ast.NodeTransformer):
    """Removes telemetry from one method of the per-record path (see the module docstring)."""

    def __init__(self) -> None:
        self.traces = {_TRACE_PLUMBING}  # names bound to a RecordTrace / SpanScope

    @staticmethod
    def _is_self_attr(node: ast.AST, *names: str) -> bool:
        if isinstance(node, ast.Attribute) and node.attr in names and \
                isinstance(node.value, ast.Name) and node.value.id == "self":
            return True
        while isinstance(node, ast.Attribute | ast.Call):
            node = node.func if isinstance(node, ast.Call) else node.value
            if isinstance(node, ast.Attribute) and node.attr in names and \
                    isinstance(node.value, ast.Name) and node.value.id == "self":
                return True
        return False

    def _on_trace(self, node: ast.AST) -> bool:
        while isinstance(node, ast.Attribute | ast.Call):
            node = node.func if isinstance(node, ast.Call) else node.value
        return isinstance(node, ast.Name) and node.id in self.traces

    def visit_Expr(self, node: ast.Expr) -> ast.AST | None:
        if self._is_self_attr(node.value, "metrics", "tracing") or (
                isinstance(node.value, ast.Call) and self._on_trace(node.value)):
            return None  # self.metrics.records_in(...), rt.dead_letter(...)
        return self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> ast.AST | None:
        if self._is_self_attr(node.value, "tracing"):  # rt = self.tracing.consume(record)
            node.value = ast.Name("NOOP_RECORD", ast.Load())
            return node
        node = self.generic_visit(node)  # type: ignore[assignment]
        if len(node.targets) == 1 and ast.dump(node.targets[0]).replace("Store", "Load") == \
                ast.dump(node.value):
            return None  # what was x = send.inject(x)
        return node

    def visit_If(self, node: ast.If) -> Any:
        # if self.metrics.enabled: / if self._traced: -> the branch taken without telemetry
        test = node.test
        if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
            test = test.values[0]  # if self._traced and (...):
        if self._is_self_attr(test, "metrics", "telemetry", "tracing", "_traced"):
            return [self.visit(n) for n in node.orelse] or None
        return self.generic_visit(node)

    def visit_With(self, node: ast.With) -> Any:
        if all(self._on_trace(item.context_expr) for item in node.items):
            for item in node.items:
                if isinstance(item.optional_vars, ast.Name):
                    self.traces.add(item.optional_vars.id)
            body: list[ast.AST] = []
            for statement in node.body:
                result = self.visit(statement)
                body.extend(result if isinstance(result, list) else [result] if result else [])
            return body or [ast.Pass()]
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if isinstance(node.func, ast.Attribute) and node.func.attr == "inject" and \
                self._on_trace(node.func) and len(node.args) == 1:
            return self.visit(node.args[0])  # send.inject(headers) -> headers
        return self.generic_visit(node)


def _left_over(tree: ast.AST, traces: set[str]) -> list[str]:
    """Telemetry still in ``tree``: uses of self.metrics/tracing/telemetry, or methods called on
    a trace object."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id == "self" and node.attr in ("metrics", "tracing", "telemetry",
                                                          "_traced"):
            found.append(f"self.{node.attr}")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id in traces:
            found.append(f"{node.value.id}.{node.attr}")
    return found


def _self_calls(tree: ast.AST, cls: type) -> list[str]:
    """Names of the ``cls`` methods ``tree`` calls as ``self.<method>(...)``."""
    return [node.func.attr for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "self"
            and inspect.isfunction(getattr(cls, node.func.attr, None))]


def source_digest(package: Path | None = None) -> str:
    """A digest of every source file of the connector package (default: the one imported), as
    it is on disk now."""
    root = package or Path(worker_module.__file__).parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def bypass_class(cls: type, entries: list[str]) -> type:
    """``cls`` with the methods ``entries`` and what they call, after stripping, recompiled
    without telemetry."""
    namespace: dict[str, Any] = {}
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in namespace:
            continue
        if source_digest() != IMPORTED_DIGEST:
            raise SystemExit("bench: connector/ changed on disk since it was imported; rerun")
        tree = ast.parse(textwrap.dedent(inspect.getsource(getattr(cls, name))))
        stripper = _StripTelemetry()
        tree = ast.fix_missing_locations(stripper.visit(tree))
        left = _left_over(tree, stripper.traces)
        if left:
            raise SystemExit(f"bench: {cls.__name__}.{name} changed; the bypass variant cannot "
                             f"remove {sorted(set(left))}: update _StripTelemetry")
        scope = dict(vars(sys.modules[cls.__module__]))
        exec(compile(tree, f"<bypass {name}>", "exec"), scope)
        namespace[name] = scope[name]
        todo += _self_calls(tree, cls)
    return type(f"Bypass{cls.__name__}", (cls,), namespace)


def strip_telemetry(worker: NormalizerWorker) -> None:
    """The worker's per-record path (``handle_batch``, ``commit`` and what they call) without
    telemetry: its record handler and committer become instances of the bypass classes."""
    worker.parts.records.__class__ = bypass_class(RecordHandler, ["handle_batch"])
    worker.parts.commits.__class__ = bypass_class(TransactionCommitter, ["commit"])


# -- set-up --------------------------------------------------------------------------------------


def _telemetry_on(ratio: float | None) -> Telemetry:
    """Metrics through a Prometheus reader; traces at root ratio ``ratio`` (None: no traces)."""
    reader, registry = telemetry_exporters.prometheus_reader()
    meter_provider = telemetry_exporters.meter_provider("bench", [reader])
    metrics = ConnectorMetrics(meter_provider.get_meter("connector"))
    if ratio is None:
        return Telemetry(metrics=metrics, meter_provider=meter_provider,
                         prometheus_registry=registry, lag_interval_seconds=REPORT_INTERVAL)
    processors = [telemetry_exporters.batch_processor(_DropSpans())]
    tracer_provider = telemetry_exporters.tracer_provider("bench", processors)
    tracing = OtelTracing.over(tracer_provider, processors, "connector", ratio,
                               random.Random(SEED))
    return Telemetry(tracing=tracing, metrics=metrics, tracer_provider=tracer_provider,
                     meter_provider=meter_provider, prometheus_registry=registry,
                     lag_interval_seconds=REPORT_INTERVAL)


def _messages(webinars: int, people: int) -> tuple[list[_Message], list[dict[str, Any]]]:
    """The sample's activities as consumed messages (3 partitions by webinar), and the final
    version of each webinar."""
    codec = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a",
                        SchemaCatalog.from_directory())
    sample = generate(SampleSpec(seed=SEED, webinars=webinars, people_per_webinar=people))
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


def _variant_names(ratios: Sequence[float]) -> list[str]:
    return [*([] if COMPILED else ["bypass"]), "off", "off(A/A)", "metrics",
            *(f"on@{r:g}" for r in ratios)]


def _build(name: str, webinars: list[dict[str, Any]]) -> tuple[NormalizerWorker, Telemetry]:
    settings = load_settings({"CONNECTOR_TOPICS__ACTIVITY": TOPIC_IN})
    if name.startswith("on@"):
        telemetry = _telemetry_on(float(name[3:]))
    elif name == "metrics":
        telemetry = _telemetry_on(None)
    else:
        telemetry = Telemetry.disabled()
    worker = normalizer_worker(settings, threading.Event(), telemetry)
    if name == "bypass":
        strip_telemetry(worker)
    for webinar in webinars:
        worker.table.put(webinar)
    return worker, telemetry


def _run(worker: NormalizerWorker, messages: list[_Message], batch: int,
         observe: Callable[[TransactionWrites], None] | None = None) -> float:
    """Seconds for the worker to handle and commit every message, from a fresh state.

    ``observe`` sees each transaction's writes before they are committed (sink_backlog's
    command stream)."""
    worker.normalizers = {p: AttendanceNormalizer(worker.table.get, worker.rules)
                          for p in range(3)}
    worker.parts.state.quiet_since = {p: 0.0 for p in range(3)}
    worker._next_state_report = 0.0  # one state scan per run (REPORT_INTERVAL)
    rng = getattr(worker.tracing, "_rng", None)
    if rng is not None:
        rng.seed(SEED)  # the same records sampled in every run and variant
    producer, consumer = _Producer(), _Consumer()
    commit, report = worker.parts.commits.commit, worker._report
    handle_batch = worker.parts.records.handle_batch
    metrics_on = worker.metrics.enabled
    batches = [messages[first:first + batch] for first in range(0, len(messages), batch)]
    start = time.perf_counter()
    for records in batches:
        if metrics_on:  # as _loop does
            report(consumer)  # type: ignore[arg-type]
        pending = TransactionWrites()
        handle_batch(records, pending)
        if observe is not None:
            observe(pending)
        commit(consumer, producer, pending)  # type: ignore[arg-type]
        _collector.after_transaction()
    return time.perf_counter() - start


#: What `_run` does after each transaction: the loop's own policy (`--gc production` freezes).
_collector = collector_module.CollectorPolicy()


def _gc_thresholds(choice: str) -> None:
    """As production runs the loop (``NormalizerWorker.run``: its CollectorPolicy's thresholds,
    and a freeze after each transaction), or Python's defaults."""
    global _collector
    if choice == "production":
        gc.set_threshold(*collector_module.THRESHOLDS)
        _collector = collector_module.CollectorPolicy(freeze=True)


def _settle() -> None:
    """Collect, then freeze what set-up left out of the garbage collector's reach: otherwise a
    full collection over every imported module falls inside one variant's run and not another's
    (~30M instructions, 10k per record here), by where allocation counts happen to land.
    Unfrozen first: what earlier runs froze after their transactions is collected too."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


# -- time ----------------------------------------------------------------------------------------


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def measure_time(args: argparse.Namespace, ratios: list[float]) -> dict[str, Any]:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, like bench/decode
    messages, webinars = _messages(args.webinars, args.people)
    _gc_thresholds(args.gc)
    names = _variant_names(ratios)
    built = {name: _build(name, webinars) for name in names}
    for worker, _ in built.values():  # warm-up
        _run(worker, messages, args.batch)
    _settle()
    us: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(args.rounds):
        order = names[round_no % len(names):] + names[:round_no % len(names)]
        for name in order:
            us[name].append(_run(built[name][0], messages, args.batch) / len(messages) * 1e6)
    for _, telemetry in built.values():
        telemetry.shutdown()

    print(f"normalizer per-record path (handle_batch + commit, no Kafka I/O), in-process: "
          f"{len(messages)} records x {args.rounds} interleaved rounds, one core, "
          f"gc thresholds {gc.get_threshold()}, code {IMPORTED_DIGEST}")
    print(f"  {native.status().describe()}")
    print(f"  {'variant':<9} {'µs/record median [IQR]':>27}   {'/ off, paired by round':>26}")
    result: dict[str, Any] = {"records": len(messages), "rounds": args.rounds,
                              "code": IMPORTED_DIGEST, "variants": {}}
    for name in names:
        q1, q2, q3 = _quartiles(us[name])
        ratios_r = [v / o for v, o in zip(us[name], us["off"], strict=True)]
        r1, r2, r3 = _quartiles(ratios_r)
        print(f"  {name:<9} {q2:9.2f} [{q1:7.2f} - {q3:7.2f}]   "
              f"x{r2:.3f} [x{r1:.3f} - x{r3:.3f}]")
        result["variants"][name] = {"us_per_record": [q1, q2, q3], "ratio_to_off": [r1, r2, r3]}
    noise = [(a - o) * 1000 for a, o in zip(us["off(A/A)"], us["off"], strict=True)]
    n1, n2, n3 = _quartiles(noise)
    result["aa_noise_ns"] = [n1, n2, n3]
    if "bypass" in us:
        off_cost = [(o - b) * 1000 for o, b in zip(us["off"], us["bypass"], strict=True)]
        d1, d2, d3 = _quartiles(off_cost)
        result["off_minus_bypass_ns"] = [d1, d2, d3]
        print(f"telemetry off - bypassed: {d2:+.0f} ns/record [IQR {d1:+.0f} .. {d3:+.0f}]")
    print(f"noise, off(A/A) - off: {n2:+.0f} ns/record [IQR {n1:+.0f} .. {n3:+.0f}]")
    for name in names[names.index("metrics"):]:
        print(f"{name} / off: x{result['variants'][name]['ratio_to_off'][1]:.3f} "
              f"(median of {args.rounds} paired rounds)")
    return result


# -- instructions --------------------------------------------------------------------------------


def _callgrind_child(args: argparse.Namespace) -> None:
    """One variant, under callgrind: warm up, then one counted run between two markers."""
    random.seed(SEED)  # span and trace ids
    messages, webinars = _messages(args.webinars, args.people)
    _gc_thresholds(args.gc)
    worker, telemetry = _build(args.child, webinars)
    _run(worker, messages, args.batch)
    _settle()
    os.getppid()  # --zero-before=getppid: counting starts here
    _run(worker, messages, args.batch)
    os.getpgrp()  # --dump-before=getpgrp: and is written out here
    telemetry.shutdown()
    print(IMPORTED_DIGEST, len(messages))


def _instructions_of(name: str, args: argparse.Namespace, out_dir: str, snapshot: Path,
                     expected_digest: str) -> tuple[int, int]:
    """(instructions of the counted run, records) of one variant, run on the ``snapshot``."""
    out = Path(out_dir) / f"callgrind.{name.replace('/', '_').replace('(', '').replace(')', '')}"
    command = ["valgrind", "--tool=callgrind", "--zero-before=getppid", "--dump-before=getpgrp",
               f"--callgrind-out-file={out}", sys.executable, __file__, "--child", name,
               "--webinars", str(args.webinars), "--people", str(args.people),
               "--batch", str(args.batch), "--gc", args.gc, *(["--compiled"] if COMPILED else [])]
    python_path = os.pathsep.join(p for p in (str(snapshot), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": python_path})
    if done.returncode != 0:
        raise SystemExit(f"bench: callgrind run of {name} failed:\n{done.stderr[-2000:]}")
    dumps = [p for p in Path(out_dir).glob(out.name + ".*")]
    if len(dumps) != 1:
        raise SystemExit(f"bench: expected one callgrind dump of the counted run, found {dumps}")
    summary = re.search(r"^summary:\s+(\d+)", dumps[0].read_text(), re.MULTILINE)
    assert summary, dumps[0]
    digest, records = done.stdout.split()[-2:]
    if digest != expected_digest:
        raise SystemExit(f"bench: {name} did not run the snapshot of connector/ ({digest}, "
                         f"expected {expected_digest})")
    return int(summary.group(1)), int(records)


def measure_instructions(args: argparse.Namespace, ratios: list[float]) -> dict[str, Any]:
    names = [n for n in _variant_names(ratios) if n != "off(A/A)"]
    with tempfile.TemporaryDirectory() as out_dir, ThreadPoolExecutor(args.jobs) as pool:
        # Every variant runs on one copy of the code, even if the tree changes meanwhile.
        snapshot = Path(out_dir) / "src"
        root = Path(worker_module.__file__).parents[2]
        for folder in ("connector", "schemas"):
            shutil.copytree(root / folder, snapshot / folder,
                            ignore=shutil.ignore_patterns("__pycache__"))
        digest = source_digest(snapshot / "connector")
        counts = dict(zip(names, pool.map(
            lambda n: _instructions_of(n, args, out_dir, snapshot, digest), names), strict=True))
    records = counts["off"][1]
    per = {name: count / records for name, (count, _) in counts.items()}
    print(f"normalizer per-record path (handle_batch + commit, no Kafka I/O), in-process: "
          f"{records} records, instructions counted by callgrind (all threads), "
          f"gc {args.gc}, code {digest}")
    print(f"  {native.status().describe()}")
    print(f"  {'variant':<9} {'instructions/record':>20}   {'/ off':>7}")
    for name in names:
        print(f"  {name:<9} {per[name]:20,.0f}   x{per[name] / per['off']:.4f}")
    if "bypass" in per:
        print(f"telemetry off - bypassed: {per['off'] - per['bypass']:+,.0f} "
              f"instructions/record (x{per['off'] / per['bypass']:.4f})")
    return {"records": records, "code": digest, "instructions_per_record": per}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions with callgrind instead of timing")
    parser.add_argument("--webinars", type=int, default=None, help="default 8 (time), 2 (instr.)")
    parser.add_argument("--people", type=int, default=None,
                        help="people per webinar; default 1000 (time), 500 (instructions)")
    parser.add_argument("--batch", type=int, default=500, help="records per transaction")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (time)")
    parser.add_argument("--jobs", type=int, default=2, help="callgrind processes at once")
    parser.add_argument("--ratios", default="0.01,0.1,1",
                        help="root sampling ratios with telemetry on (default settings: 0.01)")
    parser.add_argument("--gc", choices=("production", "default"), default="production",
                        help="garbage-collector thresholds: the worker's (default) or Python's")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--compiled", action="store_true",
                        help="the native core as built (default: its sources; no bypass variant)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global IMPORTED_DIGEST
    IMPORTED_DIGEST = source_digest()
    small = args.instructions or args.child
    args.webinars = args.webinars or (2 if small else 8)
    args.people = args.people or (500 if small else 1000)
    if args.child:
        _callgrind_child(args)
        return
    ratios = [float(r) for r in args.ratios.split(",")]
    measure: Callable[[argparse.Namespace, list[float]], dict[str, Any]] = (
        measure_instructions if args.instructions else measure_time)
    result = measure(args, ratios)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
