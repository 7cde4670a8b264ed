"""Normalizer end to end on a real broker: records/s and peak RSS of one process.

    .venv/bin/python bench/normalizer.py [--activities 1000000] [--partitions 3]

Pre-produces the activities (raw Avro) and their webinars to a fresh embedded broker, then runs
`connector run normalizer` as one child process and measures the time until its consumer group
has committed every input offset, and the child's peak RSS (VmHWM). Start-up (table catch-up,
restore) is included in the rate and also printed on its own. ``--gc-stats`` also prints the
child's garbage collections and their time per generation (timed by ``bench/gcstats``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from connector.broker import EmbeddedKafka
from connector.sample import SampleSpec, generate
from connector.serde.catalog import ACTIVITY_SCHEMA, WEBINAR_SCHEMA, SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.topic import TopicFormat, build_codec

GROUP = "bench-normalizer"


def produce(bootstrap: str, activities: int, partitions: int,
            contact_ids: tuple[int, ...] = ()) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name, config in (("webinar.activity", {}), ("webinar.webinars",
                                                    {"cleanup.policy": "compact"})):
        admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name].result(30)
    people = 1000
    webinars = max(1, round(activities / (people * 3.3)))  # ~3.3 activities per person
    sample = generate(SampleSpec(seed=1, webinars=webinars, people_per_webinar=people,
                                 contact_ids=contact_ids))
    catalog = SchemaCatalog.from_directory()
    activity = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a", catalog)
    webinar = build_codec(TopicFormat(Framing.RAW, WEBINAR_SCHEMA), "w", catalog)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50,
                         "batch.num.messages": 10000, "compression.type": "lz4",
                         "queue.buffering.max.messages": 1_000_000})
    count = 0
    for kind, record in sample.publish_order():
        topic, codec = ("webinar.webinars", webinar) if kind == "webinar" else \
            ("webinar.activity", activity)
        count += kind == "activity"
        while True:
            try:
                producer.produce(topic, codec.encode(record), record["webinarId"].encode())
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(120)
    return count


def warm_transaction_coordinator(bootstrap: str) -> float:
    """Seconds a first transactional producer takes to initialise on this fresh broker.

    The first one makes the broker create and load ``__transaction_state``: a one-off of a new
    cluster (about a second here), not part of the normalizer's start-up on a running one.
    """
    started = time.monotonic()
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "bench-warm-up"})
    producer.init_transactions(60)
    producer.flush(10)
    return time.monotonic() - started


def committed_offsets(consumer: Consumer, ends: list[TopicPartition]) -> list[int]:
    """The group's committed offsets (-1 while the coordinator is not ready yet)."""
    try:
        committed = consumer.committed([TopicPartition(t.topic, t.partition) for t in ends], 10)
    except KafkaException:  # e.g. NOT_COORDINATOR right after the group starts
        return [-1] * len(ends)
    return [c.offset for c in committed]


def committed_everything(consumer: Consumer, ends: list[TopicPartition]) -> bool:
    offsets = committed_offsets(consumer, ends)
    return all(c >= e.offset for c, e in zip(offsets, ends, strict=True))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--gc-stats", action="store_true",
                        help="time the child's garbage collections (bench/gcstats)")
    args = parser.parse_args()
    gc_stats = Path(tempfile.mkdtemp()) / "gc.json" if args.gc_stats else None
    with EmbeddedKafka() as kafka:
        bootstrap = kafka.bootstrap_servers
        started = time.monotonic()
        count = produce(bootstrap, args.activities, args.partitions)
        print(f"produced {count:,} activities in {time.monotonic() - started:.0f}s")
        probe = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP})
        ends = []
        for topic in ("webinar.activity", "webinar.webinars"):
            for p in range(args.partitions):
                _low, high = probe.get_watermark_offsets(TopicPartition(topic, p), 10)
                ends.append(TopicPartition(topic, p, high))
        print(f"transaction coordinator ready in {warm_transaction_coordinator(bootstrap):.1f}s "
              "(a fresh broker's one-off, before the clock starts)")
        env = {**os.environ, "CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
               "CONNECTOR_NORMALIZER__GROUP_ID": GROUP, "CONNECTOR_TELEMETRY__ENABLED": "false"}
        if gc_stats is not None:
            env["BENCH_GC_STATS"] = str(gc_stats)
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(Path(__file__).parent / "gcstats"), env.get("PYTHONPATH")]))
        t0 = time.monotonic()
        child = subprocess.Popen([sys.executable, "-m", "connector", "--log-level", "WARNING",
                                  "run", "normalizer"], env=env)
        first_commit = None
        try:
            while not committed_everything(probe, ends):
                if first_commit is None and any(c >= 0 for c in committed_offsets(probe, ends)):
                    first_commit = time.monotonic() - t0
                if child.poll() is not None:
                    raise SystemExit(f"normalizer exited with {child.returncode}")
                time.sleep(0.5)
            elapsed = time.monotonic() - t0
            rss = peak_rss_mib(child.pid)
        finally:
            child.terminate()
            child.wait(60)
            probe.close()
    results: dict[str, Any] = {"activities": count, "seconds": elapsed,
                               "records_per_s": count / elapsed, "startup_s": first_commit,
                               "peak_rss_mib": rss}
    print(f"normalizer: {count:,} activities in {elapsed:.1f}s = {count / elapsed:,.0f} "
          f"records/s (first commit after {first_commit or 0:.1f}s), peak RSS {rss:,.0f} MiB")
    if gc_stats is not None and gc_stats.exists():
        collections: dict[str, dict[str, float]] = json.loads(gc_stats.read_text())
        results["gc"] = collections
        print("child's garbage collections: " + ", ".join(
            f"generation {g} {v['collections']:.0f} in {v['seconds']:.2f}s"
            for g, v in collections.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
