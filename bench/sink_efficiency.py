"""Sink efficiency against the sandbox's rate limit and latency, and a naive
one-record-per-request baseline.

    .venv/bin/python -m bench.sink_efficiency [--windows 3 | --seconds 30] [--high 1000]
                                              [--latency 0 0.05 0.15 0.25 0.5]
                                              [--no-baseline] [--json out.json]

efficiency = achieved attendance records/s
             / (sandbox limit in requests/s x max inputs per request)

1.0 means every request the limit allows carried a full batch. Steady state only, stated
plainly: the first rate window after the sink applied its first record is excluded (its burst
is free for any client, and start-up — group join, first fetch — is not the sink's rate), then
the applied count is read over ``--windows`` whole windows (a rolling window admits at most the
limit in *any* 10 s, so whole windows can never read above 1.0; a part window could, by
catching a burst of freed slots). Whole windows exactly: each count is stamped with the
sandbox's own monotonic clock at the instant it counted (counting runs without yielding), and
the last read is aimed so the sandbox counts at the whole-window mark. On loopback the sink
spends each window's budget in a burst, so a count a few hundredths of a second off the mark
takes in or leaves out part of a burst; the former end — the read nearest the mark (up to half
a second short when reads are slow), stamped with the midpoint of the read — let the figure
read above 1.0 (1.07 and 203.7 requests per window of 190 were seen). The
commands topic holds more than the run can apply, so the sink is never starved. The baseline
reads the same topic and sends each record alone with HubSpot's official client
(hubspot-api-client) with the retry it documents (urllib3 Retry on 429/5xx).

Latency: every run's sandbox answers with its latency model (`connector sandbox
--latency-base B --latency-per-input 0.001 --latency-jitter 0.2`): HubSpot is across the
internet, and a sink figure taken on loopback (~1 ms a request) says nothing about the rate a
deployment gets. ``--latency`` lists the bases to sweep at the realistic limit (one line each);
0 turns the model off (the loopback figure). The headline default is 0.25 s + 1 ms per batch
input (a full batch of 100: 0.35 s), +/- 20 %: a client a continent away from HubSpot's data
centre waits ~100-150 ms of round trip on a kept-alive TLS connection, and a write takes
HubSpot some 100 ms more to apply, growing with the batch. These are assumptions, not
measurements of live HubSpot (none is reachable here); the sweep shows how the figure moves
with them. The high-limit run and the baseline use ``--high-latency`` (default: the headline).

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
HEADLINE_LATENCY = 0.25
PER_INPUT_LATENCY = 0.001
LATENCY_JITTER = 0.2


@dataclass(frozen=True)
class Latency:
    """The sandbox's latency model for one run: a base, a cost per batch input, a jitter."""

    base: float
    per_input: float = PER_INPUT_LATENCY
    jitter: float = LATENCY_JITTER

    def sandbox_options(self) -> list[str]:
        """`connector sandbox` flags; a zero base turns the whole model off (loopback)."""
        if self.base == 0:
            return []
        return ["--latency-base", str(self.base), "--latency-per-input", str(self.per_input),
                "--latency-jitter", str(self.jitter)]

    def as_dict(self) -> dict[str, float]:
        """For the JSON results (all zero when the model is off)."""
        if self.base == 0:
            return {"base_s": 0.0, "per_input_s": 0.0, "jitter": 0.0}
        return {"base_s": self.base, "per_input_s": self.per_input, "jitter": self.jitter}


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


def applied(url: str) -> tuple[float, int, int]:
    """When the sandbox counted (its monotonic clock), the attendance interactions it holds
    (one per applied record), and the requests it served."""
    counters = sandbox_counters(url)
    return float(counters["monotonic"]), int(counters["interactions"]), int(counters["requests"])


def measure(url: str, total: int, windows: int, limit: int,
            stop: threading.Event, start: float) -> dict[str, Any]:
    """Records applied per second over ``windows`` whole rate windows, starting one window
    after the first record was applied (that first window's burst is free for any client).

    The sandbox's counters cost it time in proportion to what it holds (and it serves one
    request at a time), so they are read often only until the first record is applied, then
    once a second. Every time here is the sandbox's stamp of its count, and the last read is
    aimed (sent that much early) so the sandbox counts at the whole-window mark."""
    first: float | None = None
    while first is None:
        if stop.is_set() or time.monotonic() > start + STARTUP_SECONDS:
            raise RuntimeError(f"nothing applied within {STARTUP_SECONDS:.0f}s")
        counted_at, count, _ = applied(url)
        if count > 0:
            first = counted_at
        else:
            time.sleep(SAMPLE_SECONDS)
    samples = [_sample(url, first + WINDOW)]
    limited_before = int(sandbox_counters(url)["rateLimited"])
    end = samples[0][0] + WINDOW * windows
    while samples[-1][0] < end and not stop.is_set():
        lead = samples[-1][3]  # how late the sandbox counts after a read is sent
        samples.append(_sample(url, min(samples[-1][0] + 1.0, end - lead)))
        if samples[-1][1] >= 0.95 * total:
            break  # the backlog ran out (not expected): whole windows until then
    (ta, na, ra, _), (tb, nb, rb, _) = samples[0], _whole_windows_end(samples)
    stats = sandbox_counters(url)
    ceiling = limit / WINDOW * MAX_INPUTS
    rate = (nb - na) / (tb - ta)
    return {"limit_per_10s": limit, "records_per_s": round(rate, 1),
            "ceiling_records_per_s": ceiling, "efficiency": round(rate / ceiling, 3),
            "requests": stats["requests"], "http_429": stats["rateLimited"],
            "http_429_measured": int(stats["rateLimited"]) - limited_before,
            "measured_seconds": round(tb - ta, 3),
            "requests_per_window": round((rb - ra) / (tb - ta) * WINDOW, 1),
            "inputs_per_request": round(stats["interactions"] / max(stats["requests"], 1), 1)}


Sample = tuple[float, int, int, float]


def _whole_windows_end(samples: list[Sample]) -> Sample:
    """The sample counted nearest a whole number of windows after the first (the last one,
    aimed there, unless the backlog ran out)."""
    start = samples[0][0]
    whole = max(1, int((samples[-1][0] - start) / WINDOW + 0.01))
    return min(samples, key=lambda sample: abs(sample[0] - start - WINDOW * whole))


def _sample(url: str, at: float) -> Sample:
    """(when counted, records applied, requests served, how late after the read was sent it
    counted), read at ``at`` (monotonic)."""
    time.sleep(max(0.0, at - time.monotonic()))
    sent = time.monotonic()
    counted_at, count, served = applied(url)
    return counted_at, count, served, max(0.0, counted_at - sent)


def run_sink_bench(bootstrap: str, limit: int, windows: int, latency: Latency,
                   instances: int = 1) -> dict[str, Any]:
    """The sink (``instances`` of it in one consumer group, sharing the app's limit, each with
    its own rate budget) against the sandbox, its efficiency measured over whole windows."""
    per_second = limit / WINDOW * MAX_INPUTS
    records = int(per_second * WINDOW * (windows + 2) * 1.2)  # never starved while measured
    commands = workload(records)
    topic = produce(bootstrap, commands)
    with sandbox_process(limit, latency.sandbox_options()) as (url, token):
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

        threads = [threading.Thread(target=target, daemon=True) for _ in range(instances)]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        result = measure(url, records, windows, limit, stop, start)
        stop.set()
        for thread in threads:
            thread.join(60)
        if errors:
            raise errors[0]
    client = "sink" if instances == 1 else f"sink x{instances} (one group, one app)"
    return {"client": client, "instances": instances, "latency": latency.as_dict(), **result}


def run_naive_bench(bootstrap: str, limit: int, windows: int,
                    latency: Latency) -> dict[str, Any]:
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
    with sandbox_process(limit, latency.sandbox_options()) as (url, token):
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
    return {"client": "naive (hubspot-api-client, 1 record/request)",
            "latency": latency.as_dict(), **sampler}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=3,
                        help="whole rate windows (10 s) measured per run, after the first")
    parser.add_argument("--seconds", type=float,
                        help="instead of --windows: seconds measured, in whole windows (>= 1)")
    parser.add_argument("--realistic", type=int, default=190, help="requests per 10 s")
    parser.add_argument("--latency", type=float, nargs="+", default=[HEADLINE_LATENCY],
                        metavar="SECONDS",
                        help="sandbox latency bases to run the sink at, at the realistic limit "
                             f"(each + {PER_INPUT_LATENCY * 1000:g} ms per input, "
                             f"+/- {LATENCY_JITTER * 100:g}%%; 0 = no latency model)")
    parser.add_argument("--high", type=int, default=1000,
                        help="a high limit, requests per 10 s (0 = skip that run)")
    parser.add_argument("--high-latency", type=float, default=HEADLINE_LATENCY,
                        metavar="SECONDS", help="latency base of the high-limit and baseline runs")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive baseline")
    parser.add_argument("--instances", type=int, default=0, metavar="N",
                        help="also run N sink instances in one group sharing the app, at the "
                             "realistic limit and the headline latency (0 = skip)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.seconds is not None:
        args.windows = max(1, int(args.seconds // WINDOW))
    return args


def main() -> None:
    args = parse_args()
    headline = Latency(args.high_latency)
    runs: list[tuple[Callable[..., dict[str, Any]], int, Latency, int]] = [
        (run_sink_bench, args.realistic, Latency(base), 1) for base in args.latency]
    if args.high:
        runs.append((run_sink_bench, args.high, headline, 1))
    if args.instances:
        runs.append((run_sink_bench, args.realistic, headline, args.instances))
    if not args.no_baseline:
        runs.append((run_naive_bench, args.realistic, headline, 1))
    results = []
    with broker() as bootstrap:
        for run, limit, latency, instances in runs:
            result = (run(bootstrap, limit, args.windows, latency, instances) if instances > 1
                      else run(bootstrap, limit, args.windows, latency))
            results.append(result)
            print(f"{result['client']:<48} limit={limit:>5}/10s latency={latency.base:.3f}s "
                  f"records/s={result['records_per_s']:>8} "
                  f"efficiency={result['efficiency']:.3f} 429s={result['http_429']} "
                  f"(measured {result.get('http_429_measured', '-')}) "
                  f"requests={result['requests']} "
                  f"requests/window={result['requests_per_window']} "
                  f"inputs/request={result['inputs_per_request']}", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
