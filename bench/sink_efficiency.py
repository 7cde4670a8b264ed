"""Sink efficiency against the sandbox's rate limit, and a naive one-record-per-request baseline.

    .venv/bin/python -m bench.sink_efficiency [--windows 3 | --seconds 30] [--high 1000]
                                              [--no-baseline] [--json out.json]

efficiency = achieved attendance records/s
             / (sandbox limit in requests/s x max inputs per request)

1.0 means every request the limit allows carried a full batch. Steady state only, stated
plainly: the first rate window after the sink applied its first record is excluded (its burst
is free for any client, and start-up — group join, first fetch — is not the sink's rate), then
the applied count is read over ``--windows`` whole windows (a rolling window admits at most the
limit in *any* 10 s, so whole windows can never read above 1.0; a part window could, by
catching a burst of freed slots). The commands topic holds more than the run can apply, so the
sink is never starved. The baseline reads the same topic and sends each record alone with
HubSpot's official client (hubspot-api-client) with the retry it documents (urllib3 Retry on
429/5xx).

Needs a broker: $KAFKA_BOOTSTRAP_SERVERS, else the embedded one (java). The sandbox runs in
its own process (`connector sandbox`, with TCP_NODELAY: see bench/common.py), so it never
competes with the sink for the interpreter. On a small machine the broker, the sandbox and the
sink share the cores: at a high limit the figure is bounded by whichever of them saturates.
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
from pydantic import SecretStr

from bench.common import sandbox_counters, sandbox_process
from connector.config import HubSpotSettings, KafkaSettings, Settings, SinkSettings, TopicSettings
from connector.normalize.command import COMMAND_SCHEMA, Attendance, Command, EventUpsert
from connector.runtime.sink import run_sink
from connector.serde.catalog import SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.record import SourceRecord
from connector.serde.topic import TopicFormat, build_codec

WINDOW = 10.0
MAX_INPUTS = 100
SAMPLE_SECONDS = 0.2
STARTUP_SECONDS = 120.0
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


def applied(url: str) -> tuple[int, int]:
    """Attendance interactions HubSpot holds (one per applied record), and requests served."""
    counters = sandbox_counters(url)
    return int(counters["interactions"]), int(counters["requests"])


def measure(url: str, total: int, windows: int, limit: int,
            stop: threading.Event, start: float) -> dict[str, Any]:
    """Records applied per second over ``windows`` whole rate windows, starting one window
    after the first record was applied (that first window's burst is free for any client).

    The sandbox's counters cost it time in proportion to what it holds (and it serves one
    request at a time), so they are read often only until the first record is applied, then
    once a second."""
    first: float | None = None
    while first is None:
        if stop.is_set() or time.monotonic() > start + STARTUP_SECONDS:
            raise RuntimeError(f"nothing applied within {STARTUP_SECONDS:.0f}s")
        if applied(url)[0] > 0:
            first = time.monotonic()
        else:
            time.sleep(SAMPLE_SECONDS)
    t1 = first + WINDOW
    samples = [_sample(url, t1)]
    while samples[-1][0] < t1 + WINDOW * windows and not stop.is_set():
        samples.append(_sample(url, min(samples[-1][0] + 1.0, t1 + WINDOW * windows)))
        if samples[-1][1] >= 0.95 * total:
            break  # the backlog ran out (not expected): whole windows until then
    (ta, na, ra), (tb, nb, rb) = samples[0], samples[-1]
    whole = max(1, int((tb - ta) // WINDOW + 0.01))
    (tb, nb, rb) = min(samples, key=lambda sample: abs(sample[0] - ta - WINDOW * whole))
    stats = sandbox_counters(url)
    ceiling = limit / WINDOW * MAX_INPUTS
    rate = (nb - na) / (tb - ta)
    return {"limit_per_10s": limit, "records_per_s": round(rate, 1),
            "ceiling_records_per_s": ceiling, "efficiency": round(rate / ceiling, 3),
            "requests": stats["requests"], "http_429": stats["rateLimited"],
            "measured_seconds": round(tb - ta, 2),
            "requests_per_window": round((rb - ra) / (tb - ta) * WINDOW, 1),
            "inputs_per_request": round(stats["interactions"] / max(stats["requests"], 1), 1)}


def _sample(url: str, at: float) -> tuple[float, int, int]:
    """(when, records applied, requests served), read at ``at`` (monotonic)."""
    time.sleep(max(0.0, at - time.monotonic()))
    before = time.monotonic()
    count, sent = applied(url)
    return ((before + time.monotonic()) / 2, count, sent)


def run_sink_bench(bootstrap: str, limit: int, windows: int) -> dict[str, Any]:
    per_second = limit / WINDOW * MAX_INPUTS
    records = int(per_second * WINDOW * (windows + 2) * 1.2)  # never starved while measured
    commands = workload(records)
    topic = produce(bootstrap, commands)
    with sandbox_process(limit) as (url, token):
        settings = Settings(
            kafka=KafkaSettings(bootstrap_servers=bootstrap),
            topics=TopicSettings(commands=topic, commands_dlq=f"{topic}.dlq"),
            hubspot=HubSpotSettings(base_url=url, access_token=SecretStr(token)),
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
        result = measure(url, records, windows, limit, stop, start)
        stop.set()
        thread.join(60)
        if errors:
            raise errors[0]
    return {"client": "sink", **result}


def run_naive_bench(bootstrap: str, limit: int, windows: int) -> dict[str, Any]:
    from hubspot import HubSpot
    from hubspot.marketing.events import (
        BatchInputMarketingEventEmailSubscriber,
        MarketingEventCreateRequestParams,
        MarketingEventEmailSubscriber,
    )
    from urllib3.util.retry import Retry

    commands = workload(int(limit * (windows + 2) * 2))
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
            measure(url, len(commands), windows, limit, stop, start)), daemon=True)
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
    parser.add_argument("--windows", type=int, default=3,
                        help="whole rate windows (10 s) measured per run, after the first")
    parser.add_argument("--seconds", type=float,
                        help="instead of --windows: seconds measured, in whole windows (>= 1)")
    parser.add_argument("--realistic", type=int, default=190, help="requests per 10 s")
    parser.add_argument("--high", type=int, default=1000, help="a high limit, requests per 10 s")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive baseline")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.seconds is not None:
        args.windows = max(1, int(args.seconds // WINDOW))
    runs = [(run_sink_bench, args.realistic), (run_sink_bench, args.high)]
    if not args.no_baseline:
        runs.append((run_naive_bench, args.realistic))
    results = []
    with broker() as bootstrap:
        for run, limit in runs:
            result = run(bootstrap, limit, args.windows)
            results.append(result)
            print(f"{result['client']:<48} limit={limit:>5}/10s "
                  f"records/s={result['records_per_s']:>8} "
                  f"efficiency={result['efficiency']:.3f} 429s={result['http_429']} "
                  f"requests={result['requests']} "
                  f"requests/window={result['requests_per_window']} "
                  f"inputs/request={result['inputs_per_request']}", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
