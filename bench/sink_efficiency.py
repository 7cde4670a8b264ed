"""Sink efficiency against the sandbox's rate limit, and a naive one-record-per-request baseline.

    .venv/bin/python -m bench.sink_efficiency [--seconds 25] [--high 1000] [--json out.json]

efficiency = achieved attendance records/s
             / (sandbox limit in requests/s x max inputs per request)

1.0 means every request the limit allows carried a full batch. Measured in steady state: from
the end of the first window (whose burst any client gets for free) until 95 % of the backlog is
applied. The commands topic holds more than the run can apply, so the sink is never starved.
The baseline reads the same topic and sends each record alone with HubSpot's official client
(hubspot-api-client) with the retry it documents (urllib3 Retry on 429/5xx).

Needs a broker: $KAFKA_BOOTSTRAP_SERVERS, else the embedded one (java). The sandbox runs in
its own process (`connector sandbox`), so it never competes with the sink for the interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.common import sandbox_counters, sandbox_process
from connector.config import HubSpotSettings, KafkaSettings, Settings, SinkSettings, TopicSettings
from connector.normalize.command import COMMAND_SCHEMA, Attendance, Command, EventUpsert
from connector.serde import Framing, SchemaCatalog, SourceRecord, TopicFormat, build_codec
from connector.sink import run_sink

WINDOW = 10.0
MAX_INPUTS = 100
T0 = 1_767_261_600_000


@contextlib.contextmanager
def broker() -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    from connector.broker import EmbeddedKafka

    with EmbeddedKafka() as kafka:
        yield kafka.bootstrap_servers


def workload(records: int, events: int = 8) -> list[Command]:
    """Per webinar an upsert, then registrations and attendance of distinct people by email."""
    commands = [Command(f"bench-{e}", "acct", EventUpsert(f"Bench {e}", "Org", "WEBINAR"))
                for e in range(events)]
    for n in range(records):
        state = "ATTENDED" if n % 3 == 0 else "REGISTERED"
        joined = T0 + n if state == "ATTENDED" else None
        commands.append(Command(f"bench-{n % events}", "acct", Attendance(
            state, None, f"person{n}@example.com", T0 + n, {"firstname": f"P{n}"},
            joinedAt=joined, leftAt=joined + 3_600_000 if joined else None)))
    return commands


def produce(bootstrap: str, commands: list[Command], partitions: int = 4) -> str:
    topic = f"bench-commands-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    time.sleep(1.0)
    codec = build_codec(TopicFormat(Framing.SINGLE_OBJECT, COMMAND_SCHEMA), topic,
                        SchemaCatalog.from_directory())
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                         "queue.buffering.max.messages": 1_000_000})
    for c in commands:
        producer.produce(topic, key=c.key, value=codec.encode(c.to_avro()))
        producer.poll(0)
    assert producer.flush(60) == 0
    return topic


def applied(url: str) -> int:
    """Attendance interactions HubSpot holds (one per applied record)."""
    return int(sandbox_counters(url)["interactions"])


def measure(url: str, total: int, seconds: float, limit: int,
            stop: threading.Event, start: float) -> dict[str, Any]:
    samples: list[tuple[float, int]] = []
    deadline = start + WINDOW + seconds
    while time.monotonic() < deadline and not stop.is_set():
        samples.append((time.monotonic(), applied(url)))
        if samples[-1][1] >= 0.95 * total:
            break
        time.sleep(0.25)
    steady = [(t, n) for t, n in samples if t >= start + WINDOW]
    (t1, n1), (t2, n2) = steady[0], steady[-1]
    rate = (n2 - n1) / (t2 - t1) if t2 > t1 else 0.0
    stats = sandbox_counters(url)
    ceiling = limit / WINDOW * MAX_INPUTS
    return {"limit_per_10s": limit, "records_per_s": round(rate, 1),
            "ceiling_records_per_s": ceiling, "efficiency": round(rate / ceiling, 3),
            "requests": stats["requests"], "http_429": stats["rateLimited"],
            "measured_seconds": round(t2 - t1, 1)}


def run_sink_bench(bootstrap: str, limit: int, seconds: float) -> dict[str, Any]:
    per_second = limit / WINDOW * MAX_INPUTS
    records = int(per_second * (seconds + WINDOW) * 1.3)
    commands = workload(records)
    topic = produce(bootstrap, commands)
    with sandbox_process(limit) as (url, token):
        settings = Settings(
            kafka=KafkaSettings(bootstrap_servers=bootstrap),
            topics=TopicSettings(commands=topic, commands_dlq=f"{topic}.dlq"),
            hubspot=HubSpotSettings(base_url=url, access_token=token),
            sink=SinkSettings(group_id=f"bench-{uuid.uuid4().hex[:8]}", window_limit=limit,
                              window_seconds=int(WINDOW), max_inputs_per_request=MAX_INPUTS,
                              linger_ms=200),
        )
        stop = threading.Event()
        errors: list[BaseException] = []

        def target() -> None:
            try:
                run_sink(settings, stop)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=target, daemon=True)
        start = time.monotonic()
        thread.start()
        result = measure(url, records, seconds, limit, stop, start)
        stop.set()
        thread.join(60)
        if errors:
            raise errors[0]
    return {"client": "sink", **result}


def run_naive_bench(bootstrap: str, limit: int, seconds: float) -> dict[str, Any]:
    from hubspot import HubSpot
    from hubspot.marketing.events import (
        BatchInputMarketingEventEmailSubscriber,
        MarketingEventCreateRequestParams,
        MarketingEventEmailSubscriber,
    )
    from urllib3.util.retry import Retry

    commands = workload(int(limit / WINDOW * (seconds + WINDOW) * 2))
    topic = produce(bootstrap, commands)
    codec = build_codec(TopicFormat(Framing.SINGLE_OBJECT, COMMAND_SCHEMA), topic,
                        SchemaCatalog.from_directory())
    with sandbox_process(limit) as (url, token):
        retry = Retry(total=8, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
                      allowed_methods=None, respect_retry_after_header=True)
        hs = HubSpot(access_token=token, host=url, retry=retry)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe([topic])
        object_ids: dict[str, str] = {}
        start = time.monotonic()
        stop = threading.Event()
        sampler: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: sampler.update(
            measure(url, len(commands), seconds, limit, stop, start)), daemon=True)
        thread.start()
        while thread.is_alive():
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            command = Command.from_avro(codec.decode(SourceRecord.from_message(message).value))
            body = command.body
            if isinstance(body, EventUpsert):
                event = hs.marketing.events.basic_api.upsert(
                    command.externalEventId, MarketingEventCreateRequestParams(
                        external_account_id=command.externalAccountId,
                        external_event_id=command.externalEventId, event_name=body.eventName,
                        event_organizer=body.eventOrganizer, event_type=body.eventType))
                object_ids[command.externalEventId] = event.object_id
            elif isinstance(body, Attendance) and command.externalEventId in object_ids:
                state = {"REGISTERED": "register", "ATTENDED": "attend"}[body.state]
                properties = ({"joinedAt": f"{body.joinedAt}", "leftAt": f"{body.leftAt}"}
                              if body.joinedAt else {})
                properties = {k: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(
                    int(v) / 1000)) for k, v in properties.items()}
                hs.marketing.events.add_event_attendees_api.record_by_email(
                    object_ids[command.externalEventId], state,
                    BatchInputMarketingEventEmailSubscriber(inputs=[
                        MarketingEventEmailSubscriber(
                            email=body.email, interaction_date_time=body.interactionDateTime,
                            contact_properties=body.contactProperties, properties=properties)]))
        consumer.close()
    return {"client": "naive (hubspot-api-client, 1 record/request)", **sampler}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=25.0,
                        help="steady-state seconds measured per run (after the first window)")
    parser.add_argument("--realistic", type=int, default=190, help="requests per 10 s")
    parser.add_argument("--high", type=int, default=1000, help="a high limit, requests per 10 s")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results = []
    with broker() as bootstrap:
        for run, limit in ((run_sink_bench, args.realistic), (run_sink_bench, args.high),
                           (run_naive_bench, args.realistic)):
            result = run(bootstrap, limit, args.seconds)
            results.append(result)
            print(f"{result['client']:<48} limit={limit:>5}/10s "
                  f"records/s={result['records_per_s']:>8} "
                  f"efficiency={result['efficiency']:.3f} 429s={result['http_429']} "
                  f"requests={result['requests']}", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
