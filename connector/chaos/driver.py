"""The chaos driver: seeded input, scheduled faults, supervised workers, an oracle verdict.

    input    connector.sample (reconnects, second devices, late and duplicate records, guests,
             cancellations and re-registrations) plus poison records (undecodable bytes)
    faults   SIGKILL of normalizer and sink at random moments, one broker restart, a HubSpot
             outage window, a 429 storm and random 5xx (sandbox fault knobs)
    verdict  the sandbox's final state (per-contact state, joinedAt, leftAt, counters) and the
             dead-letter topics against connector.sample.oracle, computed from the input alone
"""

from __future__ import annotations

import dataclasses
import logging
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from connector.broker import EmbeddedKafka
from connector.chaos.supervisor import Supervisor
from connector.cli.demo import create_known_contacts, hubspot_view
from connector.config import load_settings
from connector.dlq.envelope import H_REASON, H_STAGE, Stage, header_map
from connector.kafka import TopicSpec, ensure_topics
from connector.kafka.reader import read_all
from connector.sample import Sample, SampleSpec, generate
from connector.sample.oracle import Expected, expected_outcome, person_key
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.faults import FaultConfig, Window
from connector.sandbox.server import serve_in_thread
from connector.serde import (
    ACTIVITY_SCHEMA,
    WEBINAR_SCHEMA,
    Framing,
    SchemaCatalog,
    TopicFormat,
    build_codec,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChaosPlan:
    """What to generate and which faults to inject (times are seconds after the workers start)."""

    seed: int = 1
    webinars: int = 4
    people_per_webinar: int = 300
    poison_ratio: float = 0.01
    kills: int = 4
    broker_restart: bool = True
    outage_seconds: float = 4.0
    storm_seconds: float = 4.0
    error_rate: float = 0.1
    fault_horizon: float = 20.0  # every fault happens within this many seconds of the start
    timeout: float = 240.0
    window_limit: int = 190


@dataclass
class ChaosResult:
    """The verdict and what happened."""

    differences: list[str] = field(default_factory=list)
    activities: int = 0
    people: int = 0
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.differences


def _schedule(plan: ChaosPlan, rng: random.Random) -> list[tuple[float, str]]:
    events = [(rng.uniform(1, plan.fault_horizon), f"kill:{rng.choice(['normalizer', 'sink'])}")
              for _ in range(plan.kills)]
    if plan.broker_restart:
        events.append((rng.uniform(2, plan.fault_horizon), "restart-broker"))
    events.append((rng.uniform(0, plan.fault_horizon), "outage"))
    events.append((rng.uniform(0, plan.fault_horizon), "storm"))
    events.append((0.0, "errors-on"))
    events.append((plan.fault_horizon, "errors-off"))
    return sorted(events)


def _publish(bootstrap: str, sample: Sample, rng: random.Random, poison_ratio: float) -> int:
    """Publish the sample with poison records mixed in; returns how many poison records."""
    catalog = SchemaCatalog.from_directory()
    activity = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a", catalog)
    webinar = build_codec(TopicFormat(Framing.RAW, WEBINAR_SCHEMA), "w", catalog)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 20, "queue.buffering.max.messages": 1_000_000})
    poison = 0
    for kind, record in sample.publish_order():
        key = record["webinarId"].encode()
        if kind == "webinar":
            producer.produce("webinar.webinars", webinar.encode(record), key)
            continue
        producer.produce("webinar.activity", activity.encode(record), key)
        if rng.random() < poison_ratio:
            # 0x01 is a negative length for activityId: never a valid record.
            producer.produce("webinar.activity", b"\x01" + rng.randbytes(rng.randint(0, 40)),
                             key)
            poison += 1
        producer.poll(0)
    producer.flush(120)
    return poison


def _expected_dead_letters(activities: list[dict[str, Any]], poison: int) -> Counter[str]:
    unusable = sum(1 for a in activities if person_key(a["participant"]) is None)
    return Counter({"decode": poison, "no-contact-identifier": unusable})


def _dead_letters(client: dict[str, Any], topic: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for message in read_all(client, topic, timeout=15):
        headers = header_map(message.headers())
        found["decode" if headers.get(H_STAGE) == Stage.DECODE else
              headers.get(H_REASON, "?")] += 1
    return found


def _counters(predicted: dict[tuple[str, str], Expected], webinar_id: str) -> dict[str, int]:
    states = Counter(v.state for (w, _), v in predicted.items() if w == webinar_id)
    return {"attended": states["ATTENDED"], "registered": 0, "cancelled": states["CANCELLED"],
            "noShows": states["REGISTERED"]}


def run_chaos(plan: ChaosPlan, workdir: Path | None = None) -> ChaosResult:
    """Run the plan; the result lists every difference from the oracle (empty = passed)."""
    rng = random.Random(plan.seed)
    result = ChaosResult()
    logs = workdir or Path(tempfile.mkdtemp(prefix="chaos-"))
    config = SandboxConfig.default(window_limit=plan.window_limit)
    token = config.apps[0].token
    started = time.monotonic()
    with EmbeddedKafka() as kafka, serve_in_thread(create_app(config)) as sandbox:
        bootstrap = kafka.bootstrap_servers
        contact_ids = create_known_contacts(sandbox.url, token, 20)
        sample = generate(SampleSpec(seed=plan.seed, webinars=plan.webinars,
                                     people_per_webinar=plan.people_per_webinar,
                                     contact_ids=contact_ids))
        env = {"CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
               "CONNECTOR_HUBSPOT__BASE_URL": sandbox.url,
               "CONNECTOR_HUBSPOT__ACCESS_TOKEN": token,
               "CONNECTOR_NORMALIZER__INSTANCE_ID": "chaos",
               "CONNECTOR_NORMALIZER__IDLE_PUNCTUATION_SECONDS": "2",
               "CONNECTOR_NORMALIZER__MAX_RECORDS_PER_TRANSACTION": "500",
               "CONNECTOR_SINK__RETRY_BUDGET_SECONDS": "600",
               "CONNECTOR_TELEMETRY__ENABLED": "false",
               # A killed member leaves the group within seconds, not the default 45.
               "CONNECTOR_KAFKA__EXTRA": '{"session.timeout.ms": "6000", '
                                         '"heartbeat.interval.ms": "1000"}'}
        settings = load_settings(env)
        ensure_topics(settings.kafka.client_config(), [
            TopicSpec("webinar.activity", 3), TopicSpec("webinar.webinars", 3,
                                                        config={"cleanup.policy": "compact"})])
        poison = _publish(bootstrap, sample, rng, plan.poison_ratio)
        activities = [r for k, r in sample.publish_order() if k == "activity"]
        final = {w["webinarId"]: w for w in sample.webinars if w["status"] == "ENDED"}
        predicted = expected_outcome(activities, final)
        result.activities, result.people = len(activities), len(predicted)
        hubspot = sandbox.app.sandbox
        workers = {role: Supervisor(role, env, logs) for role in ("normalizer", "sink")}
        schedule = _schedule(plan, rng)
        t0 = time.monotonic()
        shown: dict[tuple[str, str], Expected] = {}
        try:
            while time.monotonic() - t0 < plan.timeout:
                elapsed = time.monotonic() - t0
                while schedule and schedule[0][0] <= elapsed:
                    _, event = schedule.pop(0)
                    _inject(event, plan, workers, kafka, hubspot)
                    result.events.append(f"{elapsed:5.1f}s {event}")
                for worker in workers.values():
                    worker.ensure_running()
                if not schedule:
                    shown, _ = hubspot_view(sandbox.url, set(contact_ids))
                    if shown == predicted:
                        break
                time.sleep(0.5)
        finally:
            for worker in workers.values():
                worker.stop()
        shown, state = hubspot_view(sandbox.url, set(contact_ids))
        result.differences += _compare(predicted, shown)
        for event in state["events"]:
            want = _counters(predicted, event["external_event_id"])
            if event["counters"] != want:
                result.differences.append(f"counters of {event['external_event_id']}: HubSpot "
                                          f"{event['counters']} != oracle {want}")
        client = settings.kafka.client_config()
        got = _dead_letters(client, settings.topics.dlq_for("webinar.activity"))
        want_letters = _expected_dead_letters(activities, poison)
        if got != want_letters:
            result.differences.append(f"activity dead letters {dict(got)} != {dict(want_letters)}")
        sink_letters = _dead_letters(client, settings.topics.commands_dlq)
        if sink_letters:
            result.differences.append(f"commands dead-lettered under transient faults: "
                                      f"{dict(sink_letters)}")
        result.events.append("restarts: " + ", ".join(
            f"{w.role} started {w.starts}x, killed {w.kills}x" for w in workers.values()))
    result.seconds = time.monotonic() - started
    return result


def _inject(event: str, plan: ChaosPlan, workers: dict[str, Supervisor], kafka: EmbeddedKafka,
            hubspot: Any) -> None:
    now = time.time()
    faults: FaultConfig = hubspot.faults.config
    if event.startswith("kill:"):
        workers[event.split(":", 1)[1]].kill()
    elif event == "restart-broker":
        kafka.restart()
    elif event == "outage":
        hubspot.set_faults(_replace(faults, outage=Window(now, plan.outage_seconds)))
    elif event == "storm":
        hubspot.set_faults(_replace(faults, storm=Window(now, plan.storm_seconds)))
    elif event == "errors-on":
        hubspot.set_faults(_replace(faults, error_rate=plan.error_rate, error_status=503))
    elif event == "errors-off":
        hubspot.set_faults(_replace(faults, error_rate=0.0))
    log.info("chaos_event event=%s", event)


def _replace(config: FaultConfig, **changes: Any) -> FaultConfig:
    return dataclasses.replace(config, **changes)


def _compare(predicted: dict[tuple[str, str], Expected],
             shown: dict[tuple[str, str], Expected]) -> list[str]:
    differences = []
    for key in sorted(set(predicted) | set(shown)):
        want, got = predicted.get(key), shown.get(key)
        if want != got:
            differences.append(f"{key[0]} {key[1][:6]}...: HubSpot {got} != oracle {want}")
    if len(differences) > 20:
        differences = [*differences[:20], f"... and {len(differences) - 20} more"]
    return differences
