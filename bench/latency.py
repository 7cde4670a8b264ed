"""End-to-end latency at a steady input rate: platform record produced -> visible in HubSpot.

    .venv/bin/python bench/latency.py [--rate 50] [--seconds 30] [--latency 0.25] [--json out.json]

A real broker, the sandbox at 190 requests / 10 s answering in ``--latency`` seconds + 1 ms per
batch input (+/- 20%, HubSpot over a real network; 0: loopback), normalizer and sink in this
process. Each Registered activity is a new person; latency is the sandbox's record time of their
REGISTERED minus the time the activity was handed to the producer. Prints p50/p90/p99.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import threading
import time
from pathlib import Path
from statistics import quantiles
from typing import Any

import httpx
from confluent_kafka import Producer

from connector.broker import EmbeddedKafka
from connector.demo.run import demo_settings
from connector.kafka import TopicSpec, ensure_topics
from connector.runtime.assemble import run_normalizer
from connector.runtime.sink import run_sink
from connector.runtime.workers import run_workers
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.latency import LatencyModel
from connector.sandbox.server import serve_in_thread
from connector.serde.catalog import ACTIVITY_SCHEMA, WEBINAR_SCHEMA, SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.topic import TopicFormat, build_codec

NS = "webinar.platform.v1"
PER_INPUT_SECONDS = 0.001
JITTER = 0.2


def _webinar(now_ms: int) -> dict[str, Any]:
    return {"webinarId": "lat-1", "accountId": "acct", "title": "Latency", "organizer": "Bench",
            "eventType": None, "description": None, "url": None, "scheduledStart": now_ms,
            "scheduledEnd": now_ms + 3_600_000, "status": "LIVE", "actualStart": now_ms,
            "actualEnd": None, "updatedAt": now_ms, "customProperties": {}}


def _registration(n: int, now_ms: int) -> dict[str, Any]:
    return {"activityId": f"lat-{n}", "webinarId": "lat-1", "accountId": "acct",
            "occurredAt": now_ms,
            "participant": {"participantId": f"p{n}", "email": f"lat{n}@example.com",
                            "firstName": None, "lastName": None, "company": None,
                            "hubspotContactId": None},
            "action": (f"{NS}.Registered", {"source": "bench"})}


def measure(rate: float, seconds: float, hubspot_latency: float) -> dict[str, float]:
    catalog = SchemaCatalog.from_directory()
    activity = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a", catalog)
    webinar = build_codec(TopicFormat(Framing.RAW, WEBINAR_SCHEMA), "w", catalog)
    config = SandboxConfig.default(window_limit=190)
    with EmbeddedKafka() as kafka, serve_in_thread(create_app(config)) as sandbox:
        if hubspot_latency:
            hubspot = sandbox.app.sandbox
            hubspot.set_faults(dataclasses.replace(hubspot.faults.config, latency_model=(
                LatencyModel(hubspot_latency, PER_INPUT_SECONDS, JITTER))))
        settings = demo_settings(kafka.bootstrap_servers, sandbox.url, config.apps[0].token)
        ensure_topics(settings.kafka.client_config(), [
            TopicSpec("webinar.activity", 3), TopicSpec("webinar.webinars", 3, config={
                "cleanup.policy": "compact"})])
        producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 0})
        producer.produce("webinar.webinars", webinar.encode(_webinar(int(time.time() * 1000))),
                         b"lat-1")
        producer.flush(10)
        stop = threading.Event()
        workers = threading.Thread(target=run_workers, daemon=True, args=(
            settings, {"normalizer": run_normalizer, "sink": run_sink}, stop))
        workers.start()
        time.sleep(8)  # start-up: table catch-up, restore, first assignment
        sent: dict[str, float] = {}
        total = int(rate * seconds)
        start = time.monotonic()
        for n in range(total):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.time()
            producer.produce("webinar.activity", activity.encode(
                _registration(n, int(now * 1000))), b"lat-1")
            producer.poll(0)
            sent[f"lat{n}@example.com"] = now * 1000
        producer.flush(10)
        deadline = time.monotonic() + 60
        latencies: list[float] = []
        while time.monotonic() < deadline:
            state = httpx.get(f"{sandbox.url}/_sandbox/state", timeout=10).json()
            emails = {c["vid"]: c["email"] for c in state["contacts"]}
            latencies = [row["interactions"][0]["recorded_at"] - sent[emails[row["vid"]]]
                         for row in state["participations"] if emails.get(row["vid"]) in sent]
            if len(latencies) >= total:
                break
            time.sleep(1)
        stop.set()
        workers.join(60)
    cuts = quantiles(latencies, n=100)
    return {"rate": rate, "hubspot_latency_s": hubspot_latency, "records": len(latencies),
            "p50_ms": cuts[49], "p90_ms": cuts[89], "p99_ms": cuts[98]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=50.0, help="activities per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--latency", type=float, default=0.25,
                        help="HubSpot's latency in the sandbox, seconds per request (+ 1 ms per "
                             "batch input, +/- 20%%); 0 = loopback")
    parser.add_argument("--json")
    args = parser.parse_args()
    result = measure(args.rate, args.seconds, args.latency)
    print(f"latency at {args.rate:.0f} activities/s, HubSpot answering in {args.latency:g} s "
          f"({result['records']} records): "
          f"p50 {result['p50_ms']:.0f} ms, p90 {result['p90_ms']:.0f} ms, "
          f"p99 {result['p99_ms']:.0f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
