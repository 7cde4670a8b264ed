"""A backfill's planning step alone: time, passes and memory per held bound.

    .venv/bin/python -m bench.backfill_plan [--webinars 100] [--held 20000 50000 200000]

The replay bench's sample (``--webinars`` of 1,000 people) goes through the normalizer
in-process; its commands are produced to a real broker (three partitions, keyed by webinar as
the normalizer keys them). Then, for each bound, a fresh process plans them into another topic
(`connector.replay.planned.plan_commands`, what `replay backfill` runs) and reports its waves,
its time and how much its peak RSS grew over its RSS before planning: the memory the bound
allows, since the commands are held as consumed messages (their bytes) and decoded commands.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("NATIVE_CORE", "0")  # the stream comes from the normalizer's harness

from bench.sink_backlog import command_stream
from connector.broker import EmbeddedKafka
from connector.config import Settings
from connector.kafka import clients
from connector.serde.topic import TopicCodecs

SOURCE, TARGET = "bench.commands", "bench.planned"


def produce(bootstrap: str, webinars: int) -> int:
    settings = _settings(bootstrap)
    encode = TopicCodecs.from_settings(settings).codec(settings.topics.commands).encode
    admin = clients.admin(settings.kafka)
    from confluent_kafka.admin import NewTopic  # only the bench creates topics this way
    for topic in (SOURCE, TARGET):
        admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    producer = clients.producer(settings.kafka, {"linger.ms": 50})
    commands = command_stream(webinars)
    for command in commands:
        clients.produce_waiting(producer, topic=SOURCE, key=command.key,
                                value=encode(command.to_avro()),
                                partition=hash(command.key) % 3)
        producer.poll(0)
    producer.flush(120)
    return len(commands)


def _settings(bootstrap: str) -> Settings:
    return Settings.model_validate({"kafka": {"bootstrap_servers": bootstrap}})


def plan_once(bootstrap: str, held: int) -> dict[str, float]:
    """In this process: plan SOURCE into TARGET once; RSS growth, seconds, waves."""
    from connector.replay.cluster import Cluster
    from connector.replay.planned import plan_commands
    settings = _settings(bootstrap)
    cluster = Cluster(settings.kafka.consumer_config())
    ends = {tp: cluster.watermarks([tp])[tp][1] for tp in cluster.resolve_all(SOURCE)}
    cluster.close()
    before = _rss_mib()
    started = time.monotonic()
    planned = plan_commands(settings, ends, None, accounts=None, max_held=held,
                            check_stop=lambda: None)
    return {"held": held, "waves": planned.waves, "commands": planned.commands,
            "seconds": time.monotonic() - started,
            "peak_rss_growth_mib": _peak_mib() - before,
            "attendance_requests": planned.count.attendance_requests}


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(plan_once(sys.argv[2], int(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--webinars", type=int, default=100)
    parser.add_argument("--held", type=int, nargs="+", default=[20_000, 50_000, 200_000])
    parser.add_argument("--json")
    args = parser.parse_args()
    results = []
    with EmbeddedKafka() as kafka:
        count = produce(kafka.bootstrap_servers, args.webinars)
        print(f"{count:,} commands of {args.webinars} webinars on 3 partitions")
        for held in args.held:
            out = subprocess.run([sys.executable, "-m", "bench.backfill_plan", "--child",
                                  kafka.bootstrap_servers, str(held)],
                                 check=True, capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            results.append(result)
            print(f"  held bound {held:>7,}: {result['waves']} wave(s), "
                  f"{result['seconds']:.1f} s, peak RSS +{result['peak_rss_growth_mib']:.0f} "
                  f"MiB ({result['peak_rss_growth_mib'] * 1024 / min(held, count):.2f} KiB "
                  f"per held command), {result['attendance_requests']:,} attendance requests")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
