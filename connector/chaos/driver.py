"""The chaos driver: seeded input, scheduled faults, supervised workers, an oracle verdict.

    input    connector.sample (reconnects, second devices, late and duplicate records, guests,
             cancellations and re-registrations) plus poison records (undecodable bytes)
    faults   SIGKILL of normalizer and sink at random moments, broker restarts (graceful and
             hard), a HubSpot outage window, a 429 storm and random 5xx (sandbox fault knobs);
             the timeline is connector.chaos.plan.schedule
    verdict  the sandbox's final state (per-contact state, joinedAt, leftAt, counters) and the
             dead-letter topics against connector.sample.oracle, computed from the input alone;
             and no worker exit the harness did not cause (connector.chaos.supervisor)

Every worker process is SIGKILLed on the way out, whatever ends the run (a timeout, an
exception, Ctrl-C): `stop_all` in a `finally`, and the kernel's parent-death signal as a last
resort.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.broker import EmbeddedKafka
from connector.chaos.plan import ChaosPlan, schedule
from connector.chaos.supervisor import Supervisor, WorkerExit, stop_all
from connector.config import Settings, load_settings
from connector.dlq.envelope import H_REASON, H_STAGE, Stage, header_map
from connector.kafka import TopicSpec, clients, ensure_topics
from connector.kafka.reader import read_all
from connector.sample import Sample, SampleSpec, generate
from connector.sample.oracle import Expected, expected_outcome, person_key
from connector.sample.view import create_known_contacts, hubspot_view
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.faults import FaultConfig, Window
from connector.sandbox.latency import LatencyModel
from connector.sandbox.server import serve_in_thread
from connector.serde.catalog import ACTIVITY_SCHEMA, WEBINAR_SCHEMA, SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.topic import TopicFormat, build_codec

log = logging.getLogger(__name__)


@dataclass
class ChaosResult:
    """The verdict and what happened."""

    differences: list[str] = field(default_factory=list)
    activities: int = 0
    people: int = 0
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Every worker exit, the harness's kills and stops included (see connector.chaos.supervisor).
    exits: list[WorkerExit] = field(default_factory=list)
    kills: int = 0
    broker_restarts: int = 0
    timed_out: bool = False

    @property
    def unexpected_exits(self) -> list[WorkerExit]:
        """Exits the harness did not cause: crashes, failed or hung stops."""
        return [e for e in self.exits if not e.is_expected]

    @property
    def passed(self) -> bool:
        """The oracle found no difference and no worker exited by itself."""
        return not self.differences and not self.unexpected_exits


def _records(sample: Sample, rng: random.Random,
             poison_ratio: float) -> tuple[list[tuple[str, bytes, bytes]], int]:
    """(topic, value, key) in publishing order with poison records mixed in, and how many
    poison records (drawn here, before the timeline: the seed fixes both)."""
    catalog = SchemaCatalog.from_directory()
    activity = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a", catalog)
    webinar = build_codec(TopicFormat(Framing.RAW, WEBINAR_SCHEMA), "w", catalog)
    records: list[tuple[str, bytes, bytes]] = []
    poison = 0
    for kind, record in sample.publish_order():
        key = record["webinarId"].encode()
        if kind == "webinar":
            records.append(("webinar.webinars", webinar.encode(record), key))
            continue
        records.append(("webinar.activity", activity.encode(record), key))
        if rng.random() < poison_ratio:
            # 0x01 is a negative length for activityId: never a valid record.
            records.append(("webinar.activity", b"\x01" + rng.randbytes(rng.randint(0, 40)),
                            key))
            poison += 1
    return records, poison


class _Publisher:
    """Produces the records, all at once or paced evenly over `seconds` (in a thread, while
    the faults happen: the broker restarts under the producer too)."""

    def __init__(self, bootstrap: str, records: list[tuple[str, bytes, bytes]], seconds: float):
        self.bootstrap, self.records, self.seconds = bootstrap, records, seconds
        self.errors: list[str] = []
        self.undelivered = 0
        self.done = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self) -> None:
        """Produce everything now (seconds == 0) or start the paced thread."""
        if self.seconds <= 0:
            self._run()
        else:
            self._thread = threading.Thread(target=self._run, name="chaos-publisher",
                                            daemon=True)
            self._thread.start()

    def join(self, timeout: float) -> list[str]:
        """Wait for the last delivery; returns what went wrong (empty = all delivered)."""
        if self._thread is not None:
            self._thread.join(timeout)
        if not self.done.is_set():
            return [f"publishing did not finish within {timeout:.0f}s of the end"]
        if self.undelivered or self.errors:
            return [f"{self.undelivered} input records not delivered: {self.errors[:3]}"]
        return []

    def _run(self) -> None:
        # Made here and dropped on return: an idle producer would reconnect through every
        # broker restart of the run and log each refused connection.
        producer = clients.producer({"bootstrap.servers": self.bootstrap},
                                    {"linger.ms": 20, "queue.buffering.max.messages": 1_000_000})
        try:
            began, sent = time.monotonic(), 0
            while sent < len(self.records):
                share = 1.0 if self.seconds <= 0 else (time.monotonic() - began) / self.seconds
                due = min(len(self.records), max(sent + 1, int(len(self.records) * share)))
                for topic, value, key in self.records[sent:due]:
                    producer.produce(topic, value, key, on_delivery=self._delivered)
                    producer.poll(0)
                sent = due
                if sent < len(self.records):
                    time.sleep(0.1)
            self.undelivered = producer.flush(300)
        except Exception as exc:  # reported by join(), as a difference
            self.errors.append(repr(exc))
            self.undelivered = len(self.records)
        finally:
            self.done.set()

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self.errors.append(str(error))


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
    """Run the plan; the result lists every difference from the oracle and every worker exit."""
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
        env = _worker_env(bootstrap, sandbox.url, token)
        settings = load_settings(env)
        ensure_topics(settings.kafka.client_config(), [
            TopicSpec("webinar.activity", 3), TopicSpec("webinar.webinars", 3,
                                                        config={"cleanup.policy": "compact"})])
        records, poison = _records(sample, rng, plan.poison_ratio)
        publisher = _Publisher(bootstrap, records, plan.publish_seconds)
        if not publisher.seconds:
            publisher.publish()
        activities = [r for k, r in sample.publish_order() if k == "activity"]
        final = {w["webinarId"]: w for w in sample.webinars if w["status"] == "ENDED"}
        predicted = expected_outcome(activities, final)
        result.activities, result.people = len(activities), len(predicted)
        if plan.hubspot_latency:
            sandbox.app.sandbox.set_faults(_replace(
                sandbox.app.sandbox.faults.config,
                latency_model=LatencyModel(plan.hubspot_latency, 0.001, 0.2)))
        workers = {role: Supervisor(role, env, logs, log_level=plan.worker_log_level,
                                    stop_timeout=plan.stop_timeout)
                   for role in ("normalizer", "sink")}
        for n in range(2, plan.sinks + 1):  # more members of the sink group, never killed
            workers[f"sink-{n}"] = Supervisor(
                f"sink-{n}", env, logs, stop_timeout=plan.stop_timeout,
                command=[sys.executable, "-m", "connector", "--log-level",
                         plan.worker_log_level, "run", "sink"])
        try:
            _drive(plan, rng, result, workers, kafka, sandbox.app.sandbox, publisher,
                   lambda: hubspot_view(sandbox.url, set(contact_ids))[0] == predicted)
        finally:
            stop_all(workers.values())
            for worker in workers.values():
                result.exits += worker.exits
        result.differences += publisher.join(timeout=10)
        _judge(result, settings, predicted, sandbox.url, set(contact_ids), activities, poison)
        result.kills = sum(w.kills for w in workers.values())
        result.events.append("restarts: " + ", ".join(
            f"{w.role} started {w.starts}x, killed {w.kills}x, "
            f"{len(w.unexpected_exits)} unexpected exit(s)" for w in workers.values()))
        result.events += [f"unexpected exit: {e.describe()}" for e in result.unexpected_exits]
    result.seconds = time.monotonic() - started
    return result


def _worker_env(bootstrap: str, hubspot_url: str, token: str) -> dict[str, str]:
    """The workers' configuration (their environment; the driver loads the same settings)."""
    return {"CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "CONNECTOR_HUBSPOT__BASE_URL": hubspot_url,
            "CONNECTOR_HUBSPOT__ACCESS_TOKEN": token,
            "CONNECTOR_NORMALIZER__INSTANCE_ID": "chaos",
            "CONNECTOR_NORMALIZER__IDLE_PUNCTUATION_SECONDS": "2",
            "CONNECTOR_NORMALIZER__MAX_RECORDS_PER_TRANSACTION": "500",
            "CONNECTOR_SINK__RETRY_BUDGET_SECONDS": "600",
            "CONNECTOR_TELEMETRY__ENABLED": "false",
            # A killed member leaves the group within seconds, not the default 45.
            "CONNECTOR_KAFKA__EXTRA": '{"session.timeout.ms": "6000", '
                                      '"heartbeat.interval.ms": "1000"}'}


def _drive(plan: ChaosPlan, rng: random.Random, result: ChaosResult,
           workers: dict[str, Supervisor], kafka: EmbeddedKafka, hubspot: Any,
           publisher: _Publisher, arrived: Callable[[], bool]) -> None:
    """Keep the workers running and inject the timeline's faults until, with the timeline done
    and everything published, HubSpot shows the prediction (`arrived`), or the plan times out."""
    timeline = schedule(plan, rng)
    t0 = time.monotonic()
    if publisher.seconds:
        publisher.publish()
    while True:
        elapsed = time.monotonic() - t0
        if elapsed >= plan.timeout:
            result.timed_out = True
            result.events.append(f"{elapsed:5.1f}s timeout: HubSpot still differs")
            result.events += _silences(workers.values())
            return
        _keep_running(workers.values(), t0, result)
        while timeline and timeline[0][0] <= elapsed:
            _, event = timeline.pop(0)
            at = time.monotonic() - t0  # later than planned behind a broker restart
            note = _inject(event, plan, workers, kafka, hubspot)
            result.events.append(f"{at:5.1f}s {event}{note}")
            result.broker_restarts += event.startswith("restart-broker")
            _keep_running(workers.values(), t0, result)  # the next kill has a target
        if not timeline and publisher.done.is_set() and arrived():
            return
        time.sleep(0.5)


def _keep_running(workers: Iterable[Supervisor], t0: float, result: ChaosResult) -> None:
    """(Re)start every worker; a crash found on the way goes into the timeline."""
    for worker in workers:
        crash = worker.ensure_running()
        if crash is not None:
            result.events.append(f"{time.monotonic() - t0:5.1f}s exit:{crash.role} "
                                 f"returncode={crash.returncode} (not caused by the harness; "
                                 "restarted)")


def _silences(workers: Iterable[Supervisor]) -> list[str]:
    """How long each worker's log has been quiet, and its last line: which one stalled."""
    lines = []
    for worker in workers:
        try:
            quiet = time.time() - worker.log_path.stat().st_mtime
        except OSError:
            quiet = float("nan")
        last = worker.log_tail(1).replace("\n", " ")[:300]
        lines.append(f"  {worker.role} pid={worker.process.pid if worker.process else None} "
                     f"log quiet for {quiet:.0f}s; last line: {last}")
    return lines


def _judge(result: ChaosResult, settings: Settings, predicted: dict[tuple[str, str], Expected],
           url: str, contact_ids: set[int], activities: list[dict[str, Any]],
           poison: int) -> None:
    """The oracle's verdict on HubSpot's final state and the dead-letter topics."""
    shown, state = hubspot_view(url, contact_ids)
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


def _inject(event: str, plan: ChaosPlan, workers: dict[str, Supervisor], kafka: EmbeddedKafka,
            hubspot: Any) -> str:
    """Apply one event; returns a note for the timeline ("" if none)."""
    now = time.time()
    note = ""
    faults: FaultConfig = hubspot.faults.config
    if event.startswith("kill:"):
        workers[event.split(":", 1)[1]].kill()
    elif event.startswith("restart-broker:"):
        began = time.monotonic()
        kafka.restart(graceful=event.endswith(":graceful"))
        note = f" (serving again after {time.monotonic() - began:.1f}s)"
    elif event == "outage":
        hubspot.set_faults(_replace(faults, outage=Window(now, plan.outage_seconds)))
    elif event == "storm":
        hubspot.set_faults(_replace(faults, storm=Window(now, plan.storm_seconds)))
    elif event == "errors-on":
        hubspot.set_faults(_replace(faults, error_rate=plan.error_rate, error_status=503))
    elif event == "errors-off":
        hubspot.set_faults(_replace(faults, error_rate=0.0))
    log.info("chaos_event event=%s", event)
    return note


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
