"""How long a SIGKILLed normalizer's replacement takes until it is processing again (issue 17's
target: within 15 s).

    .venv/bin/python -m bench.recovery [--runs 3] [--webinars 3] [--people 300] [--partitions 3]

One real broker (EmbeddedKafka); per run, fresh topics and a fresh consumer group:

  1. publish a sample; run `connector run normalizer` under a Supervisor with a fixed
     CONNECTOR_NORMALIZER__INSTANCE_ID and the default session timeout (45 s: the point is to
     measure the default); wait until its group has committed the whole input;
  2. SIGKILL it and start the replacement at once (same instance id), then publish a second
     sample whose webinars are new;
  3. time from the replacement's start until the first command for a new webinar is committed
     to the commands topic (a read_committed consumer sees it).

Also read from the replacement's INFO log, in seconds after its start: when its webinar table
was loaded, when it was assigned partitions (with restore_seconds= where the worker logs it) and
each `state_restored` line (one per activity partition restored from its changelog).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import uuid
from calendar import timegm
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from connector.broker import EmbeddedKafka
from connector.chaos.supervisor import Supervisor
from connector.config import load_settings
from connector.kafka import TopicSpec, ensure_topics
from connector.sample import SampleSpec, generate
from connector.sample.publish import publish_sample
from connector.serde.topic import TopicCodecs

TARGET_SECONDS = 15.0
_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z \w+ \S+ (\w+)(.*)$")


@dataclass
class Recovery:
    """One run's figures, in seconds after the replacement started."""

    processing: float | None = None  # first new command committed; None: not within the bound
    phases: list[tuple[float, str]] = field(default_factory=list)  # (at, "event key=value")
    restore_seconds: list[float] = field(default_factory=list)  # from partitions_assigned
    restored: list[float] = field(default_factory=list)  # state_restored lines

    def describe(self) -> str:
        head = ("not processing within the bound" if self.processing is None
                else f"processing again after {self.processing:.1f} s")
        parts = [head]
        if self.restored:
            parts.append(f"{len(self.restored)} state_restored at "
                         + ", ".join(f"{t:.1f}" for t in self.restored) + " s")
        if self.restore_seconds:
            parts.append("restore_seconds " + "+".join(f"{s:.2f}" for s in self.restore_seconds))
        return "; ".join(parts)


def _publish(bootstrap: str, spec: SampleSpec, codecs: TopicCodecs, activity_topic: str,
             webinar_topic: str) -> set[bytes]:
    """Publish a sample as the platform does; returns its webinar ids (the commands' keys)."""
    sample = generate(spec)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 20})
    publish_sample(producer, sample, activity_topic=activity_topic, webinar_topic=webinar_topic,
                   activity_encoder=codecs.codec(activity_topic),
                   webinar_encoder=codecs.codec(webinar_topic))
    return {w["webinarId"].encode() for w in sample.webinars}


def _caught_up(bootstrap: str, group: str, topic: str, partitions: int, timeout: float) -> None:
    """Wait until `group` has committed every offset of `topic` (all of it normalized)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        deadline = time.monotonic() + timeout
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
        while time.monotonic() < deadline:
            try:
                committed = [tp.offset for tp in consumer.committed(tps, timeout=10)]
            except KafkaException:  # the group's coordinator is not ready yet
                committed = [-1] * len(tps)
            if all(c >= end for c, end in zip(committed, ends, strict=True) if end > 0):
                return  # an empty partition has nothing committed (-1001)
            time.sleep(0.5)
        raise RuntimeError(f"the normalizer did not commit {topic} to its end within {timeout}s")
    finally:
        consumer.close()


def _first_command(bootstrap: str, topic: str, keys: set[bytes], since: float,
                   timeout: float) -> float | None:
    """Seconds from `since` (monotonic) until a committed command with one of `keys` is read."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "auto.offset.reset": "earliest"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        while time.monotonic() - since < timeout:
            message = consumer.poll(0.05)
            if message is not None and message.error() is None and message.key() in keys:
                return time.monotonic() - since
        return None
    finally:
        consumer.close()


def _phases(log: str, started_wall: float, recovery: Recovery) -> None:
    """The replacement's start-up milestones from its log (key=value text format)."""
    for line in log.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        stamp, millis, event, rest = match.groups()
        at = timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")) + int(millis) / 1000
        at -= started_wall
        if event in ("webinar_table_loaded", "partitions_assigned", "partitions_revoked",
                     "state_restored", "normalizer_restarting"):
            recovery.phases.append((at, f"{event}{rest[:120]}"))
        if event == "state_restored":
            recovery.restored.append(at)
        seconds = re.search(r"restore_seconds=([\d.]+)", rest)
        if event == "partitions_assigned" and seconds:
            recovery.restore_seconds.append(float(seconds.group(1)))


def run_once(kafka: EmbeddedKafka, n: int, args: argparse.Namespace, logs: Path) -> Recovery:
    bootstrap = kafka.bootstrap_servers
    prefix = f"recovery{n}-{uuid.uuid4().hex[:6]}"
    activity, webinars, commands = (f"{prefix}.activity", f"{prefix}.webinars",
                                    f"{prefix}.commands")
    group = f"{prefix}-normalizer"
    env = {"CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
           "CONNECTOR_TOPICS__ACTIVITY": activity, "CONNECTOR_TOPICS__WEBINARS": webinars,
           "CONNECTOR_TOPICS__COMMANDS": commands,
           "CONNECTOR_NORMALIZER__GROUP_ID": group,
           "CONNECTOR_NORMALIZER__INSTANCE_ID": "recovery-bench",
           "CONNECTOR_TELEMETRY__ENABLED": "false"}
    codecs = TopicCodecs.from_settings(load_settings(env))
    ensure_topics({"bootstrap.servers": bootstrap}, [
        TopicSpec(activity, args.partitions),
        TopicSpec(webinars, args.partitions, config={"cleanup.policy": "compact"})])
    _publish(bootstrap, SampleSpec(seed=1000 + n, webinars=args.webinars,
                                   people_per_webinar=args.people), codecs, activity, webinars)
    with Supervisor("normalizer", env, logs / f"run{n}", log_level="INFO") as worker:
        worker.ensure_running()
        _caught_up(bootstrap, group, activity, args.partitions, args.timeout)
        worker.kill()
        worker.ensure_running()
        started, started_wall = worker.started_at, time.time()
        keys = _publish(bootstrap, SampleSpec(seed=2000 + n, webinars=args.webinars,
                                              people_per_webinar=args.people),
                        codecs, activity, webinars)
        recovery = Recovery(_first_command(bootstrap, commands, keys, started, args.timeout))
        with worker.log_path.open("rb") as handle:
            handle.seek(worker.log_offset)
            _phases(handle.read().decode(errors="replace"), started_wall, recovery)
        worker.stop()
    return recovery


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--webinars", type=int, default=3)
    parser.add_argument("--people", type=int, default=300, help="per webinar")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=240.0, help="bound per wait")
    parser.add_argument("--phases", action="store_true", help="print the log milestones")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="recovery-"))
    figures: list[float] = []
    with EmbeddedKafka() as kafka:
        for n in range(1, args.runs + 1):
            recovery = run_once(kafka, n, args, logs)
            print(f"run {n}: {recovery.describe()}", flush=True)
            if args.phases:
                for at, what in recovery.phases:
                    print(f"    {at:6.1f} s  {what}")
            if recovery.processing is not None:
                figures.append(recovery.processing)
    if figures:
        print(f"replacement processing again after: median {statistics.median(figures):.1f} s, "
              f"min {min(figures):.1f} s, max {max(figures):.1f} s over {len(figures)} of "
              f"{args.runs} runs (target {TARGET_SECONDS:.0f} s); worker logs in {logs}")
    sys.exit(0 if len(figures) == args.runs else 1)


if __name__ == "__main__":
    main()
