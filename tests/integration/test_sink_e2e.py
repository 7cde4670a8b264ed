"""The sink end to end: a real broker, the HubSpot sandbox on loopback, faults on demand.

Every test produces commands (built with the Command dataclasses, single-object Avro framing) to
a fresh commands topic, runs the sink until the group has committed everything, and then checks
HubSpot's final state in the sandbox against a fold of the commands, and the dead-letter topic
against exactly the commands that had to fail — with their headers.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from connector.config import (
    HubSpotSettings,
    KafkaSettings,
    Settings,
    SinkSettings,
    TopicSettings,
)
from connector.dlq import header_map
from connector.normalize.command import (
    COMMAND_SCHEMA,
    Attendance,
    Command,
    EventCancel,
    EventComplete,
    EventUpsert,
)
from connector.runtime.sink import run_sink
from connector.sandbox import AppConfig, SandboxConfig, create_app
from connector.sandbox.config import READ_SCOPE
from connector.sandbox.server import RunningSandbox, serve_in_thread
from connector.serde.catalog import SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.topic import TopicFormat, build_codec
from connector.sink import HubSpotAccessError

pytestmark = pytest.mark.integration

TOKEN = SandboxConfig.default().apps[0].token
ACCOUNT = "acct-1"
T0 = 1_767_261_600_000  # 2026-01-01T10:00:00Z
STATE_OF = {"REGISTERED": "REGISTERED", "CANCELLED": "CANCELLED", "ATTENDED": "ATTENDED"}


# --------------------------------------------------------------------------- workload


@dataclass
class Workload:
    """Commands in topic order (per webinar), and which of them must be dead-lettered."""

    commands: list[Command] = field(default_factory=list)

    @property
    def attendance(self) -> list[Command]:
        return [c for c in self.commands if isinstance(c.body, Attendance)]


def person_key(body: Attendance) -> str:
    return f"vid:{body.vid}" if body.vid is not None else f"email:{body.email}"


def make_workload(
    *,
    events: int,
    people: int,
    seed: int = 7,
    vids: list[int] | None = None,
    complete: bool = False,
    prefix: str = "web",
) -> Workload:
    """Per webinar: upsert, registrations, some cancellations, some attendance, maybe complete."""
    rng = random.Random(seed)
    work = Workload()
    for e in range(events):
        webinar = f"{prefix}-{e}"
        cmds = [Command(webinar, ACCOUNT, EventUpsert(
            eventName=f"Webinar {e}", eventOrganizer="Org", eventType="WEBINAR",
            startDateTime=T0))]  # no end: registered people stay REGISTERED until complete
        for p in range(people):
            use_vid = vids is not None and p < len(vids)
            ident: dict[str, Any] = (
                {"vid": vids[p], "email": None} if use_vid and vids is not None
                else {"vid": None, "email": f"p{p}.w{e}@example.com"})
            props = {} if use_vid else {"firstname": f"P{p}"}
            t = T0 - 86_400_000 + p * 1000
            cmds.append(Command(webinar, ACCOUNT, Attendance(
                "REGISTERED", interactionDateTime=t, contactProperties=props, **ident)))
            roll = rng.random()
            if roll < 0.2:
                cmds.append(Command(webinar, ACCOUNT, Attendance(
                    "CANCELLED", interactionDateTime=t + 500, contactProperties=props, **ident)))
            elif roll < 0.7:
                joined = T0 + p * 100
                cmds.append(Command(webinar, ACCOUNT, Attendance(
                    "ATTENDED", interactionDateTime=joined, contactProperties=props,
                    joinedAt=joined, leftAt=joined + 1_800_000, **ident)))
        rng.shuffle(cmds[1:])  # people interleave; each person's commands keep their order
        cmds[1:] = _keep_person_order(cmds[1:])
        if complete:
            cmds.append(Command(webinar, ACCOUNT, EventComplete(T0, T0 + 3_600_000)))
        work.commands.extend(cmds)
    return work


def _keep_person_order(cmds: list[Command]) -> list[Command]:
    """Reorder each person's commands by interactionDateTime, keeping the shuffled slots."""
    by_person: dict[str, list[Command]] = {}
    for c in cmds:
        assert isinstance(c.body, Attendance)
        by_person.setdefault(person_key(c.body), []).append(c)
    for group in by_person.values():
        group.sort(key=lambda c: c.body.interactionDateTime)  # type: ignore[union-attr]
    cursors = {k: iter(v) for k, v in by_person.items()}
    return [next(cursors[person_key(c.body)]) for c in cmds]  # type: ignore[arg-type]


def expected_state(commands: list[Command], completed: set[str] = frozenset()  # type: ignore[assignment]
                   ) -> dict[tuple[str, str], tuple[str, int | None, int | None]]:
    """(webinar, person) -> (state, joinedAt, leftAt) as HubSpot shows it: the latest
    interactionDateTime wins; registered-never-attended in a completed event is NO_SHOW."""
    latest: dict[tuple[str, str], Attendance] = {}
    attended: set[tuple[str, str]] = set()
    for c in commands:
        body = c.body
        if not isinstance(body, Attendance):
            continue
        key = (c.externalEventId, person_key(body))
        if body.state == "ATTENDED":
            attended.add(key)
        if key not in latest or body.interactionDateTime >= latest[key].interactionDateTime:
            latest[key] = body
    out = {}
    for key, body in latest.items():
        state = body.state
        if state == "REGISTERED" and key[0] in completed and key not in attended:
            state = "NO_SHOW"
        joined = body.joinedAt if state == "ATTENDED" else None
        left = body.leftAt if state == "ATTENDED" else None
        out[key] = (state, joined, left)
    return out


# --------------------------------------------------------------------------- sandbox


@contextlib.contextmanager
def sandbox(**overrides: Any) -> Iterator[RunningSandbox]:
    """A sandbox (Sandbox App id 1001 + a read-only app) served by uvicorn on loopback."""
    base = SandboxConfig.default()
    read_only = AppConfig(app_id=3003, token="pat-na1-sandbox-read-only-3003",
                          client_secret="s-3003", scopes=frozenset({READ_SCOPE}))
    config = base.replace(apps=(*base.apps, read_only), **{"daily_limit": None, **overrides})
    with serve_in_thread(create_app(config)) as running:
        yield running


def admin(running: RunningSandbox, path: str, method: str = "GET", **kwargs: Any) -> Any:
    response = httpx.request(method, f"{running.url}/_sandbox/{path}", timeout=10, **kwargs)
    response.raise_for_status()
    return response.json()


def create_contacts(running: RunningSandbox, count: int) -> list[int]:
    vids = []
    with httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for n in range(count):
            r = http.post("/crm/v3/objects/contacts",
                          json={"properties": {"email": f"known{n}@example.com"}})
            r.raise_for_status()
            vids.append(int(r.json()["id"]))
    admin(running, "reset", "POST", json={"state": False, "logs": True, "limits": True})
    return vids


def hubspot_state(running: RunningSandbox) -> dict[tuple[str, str], tuple[str, int | None,
                                                                              int | None]]:
    """(webinar, person) -> (current state, joinedAt, leftAt of the deciding interaction)."""
    state = admin(running, "state")
    events = {e["object_id"]: e["external_event_id"] for e in state["events"]}
    contacts = {c["vid"]: c for c in state["contacts"]}
    out = {}
    for row in state["participations"]:
        contact = contacts[row["vid"]]
        person = (f"email:{contact['email']}" if not contact["email"].startswith("known")
                  else f"vid:{contact['vid']}")
        deciding = max(row["interactions"], key=lambda i: i["occurred_at"])
        joined = deciding["joined_at"] if row["currentState"] == "ATTENDED" else None
        left = deciding["left_at"] if row["currentState"] == "ATTENDED" else None
        out[(events[row["object_id"]], person)] = (row["currentState"], joined, left)
    return out


def interactions(running: RunningSandbox) -> set[tuple[str, str, str, int]]:
    """Every recorded (webinar, person, state, interactionDateTime)."""
    state = admin(running, "state")
    events = {e["object_id"]: e["external_event_id"] for e in state["events"]}
    contacts = {c["vid"]: c for c in state["contacts"]}
    out = set()
    for row in state["participations"]:
        contact = contacts[row["vid"]]
        person = (f"email:{contact['email']}" if not contact["email"].startswith("known")
                  else f"vid:{contact['vid']}")
        for i in row["interactions"]:
            out.add((events[row["object_id"]], person, i["state"], i["occurred_at"]))
    return out


def command_interaction(c: Command) -> tuple[str, str, str, int]:
    assert isinstance(c.body, Attendance)
    return (c.externalEventId, person_key(c.body), STATE_OF[c.body.state],
            c.body.interactionDateTime)


# --------------------------------------------------------------------------- kafka


@dataclass
class Topics:
    commands: str
    dlq: str
    group: str
    bootstrap: str
    partitions: int


@pytest.fixture
def topics(topic_factory: Any, kafka_bootstrap: str) -> Callable[..., Topics]:
    def make(partitions: int = 3) -> Topics:
        return Topics(topic_factory("commands", partitions), topic_factory("commands-dlq", 1),
                      f"sink-{uuid.uuid4().hex[:8]}", kafka_bootstrap, partitions)
    return make


def _encode(topic: str, command: Command) -> bytes:
    codec = build_codec(TopicFormat(Framing.SINGLE_OBJECT, COMMAND_SCHEMA), topic,
                        SchemaCatalog.from_directory())
    value: bytes = codec.encode(command.to_avro())
    return value


def produce(producer: Any, topic: str, commands: list[Command]) -> None:
    for c in commands:
        producer.produce(topic, key=c.key, value=_encode(topic, c),
                         headers=[("traceparent", b"00-test")])
    assert producer.flush(30) == 0


def settings(t: Topics, url: str, *, token: str = TOKEN, **sink: Any) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=t.bootstrap),
        topics=TopicSettings(commands=t.commands, commands_dlq=t.dlq),
        hubspot=HubSpotSettings(base_url=url, access_token=token, request_timeout_seconds=5),
        sink=SinkSettings(group_id=t.group, **{"linger_ms": 50, "window_limit": 100,
                                               "retry_budget_seconds": 120, **sink}),
    )


def committed_all(t: Topics) -> bool:
    """Has the sink's group committed every partition up to its end? (False while the broker
    cannot say: a coordinator loading or moving, a broker restarting.)"""
    consumer = Consumer({"bootstrap.servers": t.bootstrap, "group.id": t.group})
    try:
        parts = [TopicPartition(t.commands, p) for p in range(t.partitions)]
        committed = consumer.committed(parts, timeout=10)
        for tp in committed:
            _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high > 0 and tp.offset < high:
                return False
        return True
    except KafkaException:
        return False
    finally:
        consumer.close()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               alive: Callable[[], None] = lambda: None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.25)


class SinkThread:
    """run_sink in a thread; errors are kept for the test to check."""

    def __init__(self, config: Settings) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(config,), daemon=True)

    def _run(self, config: Settings) -> None:
        try:
            run_sink(config, self.stop)
        except BaseException as exc:
            self.error = exc

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"sink failed: {self.error!r}") from self.error

    def __enter__(self) -> SinkThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the sink did not stop within 60 s"


def run_until_done(t: Topics, config: Settings, timeout: float = 120) -> None:
    with SinkThread(config) as sink:
        wait_until(lambda: committed_all(t), timeout, "every command committed", sink.check)
    sink.check()


def read_dlq(t: Topics, expected: int, timeout: float = 10) -> list[Any]:
    """Every record of the dead-letter topic (waits for `expected`, then a little longer)."""
    consumer = Consumer({"bootstrap.servers": t.bootstrap, "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([t.dlq])
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.25)
            if msg is not None and msg.error() is None:
                records.append(msg)
            if len(records) >= expected:
                quiet_until = quiet_until or time.monotonic() + 1.0
                if time.monotonic() > quiet_until:
                    break
    finally:
        consumer.close()
    return records


def decode_dlq(records: list[Any], topic: str) -> list[tuple[Command, dict[str, str], Any]]:
    codec = build_codec(TopicFormat(Framing.SINGLE_OBJECT, COMMAND_SCHEMA), topic,
                        SchemaCatalog.from_directory())
    return [(Command.from_avro(codec.decode(m.value())), header_map(m.headers()), m)
            for m in records]


# --------------------------------------------------------------------------- tests


def test_commands_reach_hubspot_in_batches(topics: Any, producer_factory: Any) -> None:
    t = topics()
    with sandbox(window_limit=100) as running:
        vids = create_contacts(running, 20)
        work = make_workload(events=4, people=150, vids=vids, complete=True)
        produce(producer_factory(), t.commands, work.commands)
        run_until_done(t, settings(t, running.url))
        completed = {c.externalEventId for c in work.commands}
        assert hubspot_state(running) == expected_state(work.commands, completed)
        stats = admin(running, "counters")
        events = admin(running, "events")
    assert read_dlq(t, 0, timeout=3) == []
    assert stats["rateLimited"] == 0
    assert all(e["completed"] and e["event_name"].startswith("Webinar") for e in events)
    # 4 upserts + 4 completes + a few lookups; the rest are batches of up to 100 inputs
    attendance_requests = sum(v for k, v in stats["byOperation"].items() if "attendance" in k)
    assert attendance_requests < len(work.attendance) / 10


def test_attendance_before_its_event_waits_for_it(topics: Any, producer_factory: Any) -> None:
    t = topics(1)
    work = make_workload(events=1, people=30)
    upsert, rest = work.commands[0], work.commands[1:]
    with sandbox() as running:
        produce(producer_factory(), t.commands, [*rest, upsert])
        run_until_done(t, settings(t, running.url))
        assert hubspot_state(running) == expected_state(work.commands)
    assert read_dlq(t, 0, timeout=3) == []


def test_rejected_commands_are_dead_lettered_with_headers(topics: Any,
                                                          producer_factory: Any) -> None:
    t = topics(1)
    good = make_workload(events=1, people=20, prefix="ok")
    bad_email = Command("ok-0", ACCOUNT, Attendance("REGISTERED", None, "bad ada@example.com",
                                                    T0, {"firstname": "X"}))
    nameless = Command("nameless", ACCOUNT, EventUpsert("", "Org", "WEBINAR"))
    orphan = Command("never-created", ACCOUNT, Attendance("REGISTERED", None, "o@example.com", T0))
    orphan_cancel = Command("never-created", ACCOUNT, EventCancel())
    commands = [*good.commands[:5], bad_email, *good.commands[5:], nameless, orphan,
                orphan_cancel]
    with sandbox() as running:
        produce(producer_factory(), t.commands, commands)
        run_until_done(t, settings(t, running.url, retry_budget_seconds=3))
        assert hubspot_state(running) == expected_state(good.commands)
    dead = decode_dlq(read_dlq(t, 4), t.dlq)
    by_value = {n: _encode(t.commands, c) for n, c in enumerate(commands)}
    assert sorted(int(h["__connect.errors.offset"]) for _c, h, _m in dead) == sorted(
        commands.index(c) for c in (bad_email, nameless, orphan, orphan_cancel))
    by_offset = {int(h["__connect.errors.offset"]): h for _c, h, _m in dead}

    def headers_of(command: Command) -> dict[str, str]:
        return by_offset[commands.index(command)]

    assert headers_of(bad_email)["connector.errors.reason"] == "hubspot-rejected-input"
    assert headers_of(bad_email)["connector.errors.hubspot.category"] == "VALIDATION_ERROR"
    assert headers_of(nameless)["connector.errors.reason"] == "hubspot-rejected"
    assert headers_of(nameless)["connector.errors.http.status"] == "400"
    assert headers_of(nameless)["__connect.errors.exception.class.name"] == (
        "connector.hubspot.errors.ValidationError")
    for command in (orphan, orphan_cancel):
        headers = headers_of(command)
        assert headers["connector.errors.reason"] == "event-not-found"
        assert headers["connector.errors.http.status"] == "404"
    for _c, headers, message in dead:
        assert headers["__connect.errors.topic"] == t.commands
        assert headers["__connect.errors.partition"] == "0"
        assert headers["__connect.errors.stage"] == "TASK_PUT"
        assert headers["traceparent"] == "00-test"  # original headers kept
        assert headers["connector.errors.hubspot.correlation.id"]
        assert int(headers["connector.errors.attempts"]) >= 1
        assert int(headers["connector.errors.first.failure"]) <= int(
            headers["connector.errors.last.failure"])
        assert "ada@example.com" not in headers["__connect.errors.exception.message"]
        assert message.key() == _c.key
        assert message.value() == by_value[int(headers["__connect.errors.offset"])]


# Whether a fault happens must not depend on when the sink gets going: windows start at the
# sink's first request (after_first_request), and the seeded rates fault a request that every
# run makes (one draw per request: seed 3 fails the 1st at 0.25, seed 5 drops the 7th at 0.15,
# and this workload needs at least 25 requests: 611 attendances, at most 25 per request).
@pytest.mark.parametrize(("faults", "kind"), [
    pytest.param({"outage": {"start_in": 0, "duration": 4, "after_first_request": True}},
                 "outage", id="outage-4s"),
    pytest.param({"storm": {"start_in": 0, "duration": 3, "after_first_request": True}},
                 "storm", id="429-storm"),
    pytest.param({"error_rate": 0.25, "error_status": 503, "seed": 3}, "error", id="random-5xx"),
    pytest.param({"latency_seconds": 0.15}, None, id="latency"),
    pytest.param({"drop_rate": 0.15, "seed": 5}, "drop", id="dropped-connections"),
])
def test_transient_faults_lose_nothing(faults: dict[str, Any], kind: str | None, topics: Any,
                                       producer_factory: Any) -> None:
    t = topics()
    work = make_workload(events=3, people=120, seed=11)
    with sandbox(window_limit=100) as running:
        admin(running, "faults", "PUT", json=faults)
        produce(producer_factory(), t.commands, work.commands)
        run_until_done(t, settings(t, running.url, max_inputs_per_request=25))
        assert hubspot_state(running) == expected_state(work.commands)
        stats = admin(running, "counters")
    assert read_dlq(t, 0, timeout=3) == []
    if kind is not None:
        assert stats["faults"].get(kind, 0) > 0, stats  # the fault happened


def test_partly_failed_batches_dead_letter_exactly_the_failed_inputs(
        topics: Any, producer_factory: Any) -> None:
    t = topics()
    work = make_workload(events=3, people=100, seed=5)
    with sandbox() as running:
        admin(running, "faults", "PUT", json={"batch_input_failure_rate": 0.05, "seed": 9})
        produce(producer_factory(), t.commands, work.commands)
        run_until_done(t, settings(t, running.url))
        recorded = interactions(running)
        failures = admin(running, "counters")["batchInputFailures"]
    dead = decode_dlq(read_dlq(t, failures), t.dlq)
    assert failures > 0
    assert len(dead) == failures
    dead_commands = {command_interaction(c) for c, _h, _m in dead}
    for c in work.attendance:  # applied XOR dead-lettered
        assert (command_interaction(c) in recorded) != (command_interaction(c) in dead_commands)
    assert all(h["connector.errors.hubspot.category"] == "INTERNAL_ERROR" for _c, h, _m in dead)


def test_two_instances_share_one_limit(topics: Any, producer_factory: Any) -> None:
    t = topics(4)
    work = make_workload(events=8, people=60, seed=2)
    with sandbox(window_limit=12, window_seconds=2.0) as running:
        produce(producer_factory(), t.commands, work.commands)
        config = settings(t, running.url, window_limit=12, window_seconds=2,
                          max_inputs_per_request=10)
        with SinkThread(config) as a, SinkThread(config) as b:
            wait_until(lambda: committed_all(t), 180, "every command committed",
                       lambda: (a.check(), b.check()))
        a.check()
        b.check()
        assert hubspot_state(running) == expected_state(work.commands)
        stats = admin(running, "counters")
    assert read_dlq(t, 0, timeout=3) == []
    assert stats["requests"] > 60  # the limit mattered: many windows' worth of requests
    assert stats["rateLimited"] <= 0.05 * stats["requests"], stats


def test_bad_token_stops_the_sink_without_dead_letters(topics: Any,
                                                       producer_factory: Any) -> None:
    t = topics(1)
    work = make_workload(events=1, people=5)
    with sandbox() as running:
        produce(producer_factory(), t.commands, work.commands)
        stop = threading.Event()
        with pytest.raises(HubSpotAccessError, match="CONNECTOR_HUBSPOT__ACCESS_TOKEN"):
            run_sink(settings(t, running.url, token="pat-na1-wrong-token-0000"), stop)
        with pytest.raises(HubSpotAccessError, match=r"crm\.objects\.marketing_events\.write"):
            run_sink(settings(t, running.url, token="pat-na1-sandbox-read-only-3003"), stop)
    assert read_dlq(t, 0, timeout=3) == []
    assert not committed_all(t)


def _sink_env(t: Topics, running: RunningSandbox, tmp: Any) -> dict[str, str]:
    """A sink subprocess's environment: a short session, so a killed member leaves the group
    sooner; small batches, so there are many requests."""
    config = tmp / "sink.toml"
    config.write_text('[kafka]\nextra = { "session.timeout.ms" = "6000", '
                      '"heartbeat.interval.ms" = "1000" }\n')
    return {
        **os.environ,
        "CONNECTOR_CONFIG_FILE": str(config),
        "CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": t.bootstrap,
        "CONNECTOR_TOPICS__COMMANDS": t.commands,
        "CONNECTOR_TOPICS__COMMANDS_DLQ": t.dlq,
        "CONNECTOR_HUBSPOT__BASE_URL": running.url,
        "CONNECTOR_HUBSPOT__ACCESS_TOKEN": TOKEN,
        "CONNECTOR_SINK__GROUP_ID": t.group,
        "CONNECTOR_SINK__MAX_INPUTS_PER_REQUEST": "10",
        "CONNECTOR_SINK__LINGER_MS": "20",
    }


SINK_COMMAND = [sys.executable, "-m", "connector", "--log-level", "WARNING", "run", "sink"]


def _sigkill(process: subprocess.Popen[bytes]) -> None:
    assert process.poll() is None, "the sink exited on its own"
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0


def _kill_and_restart(t: Topics, running: RunningSandbox, work: Workload, tmp: Any) -> None:
    env = _sink_env(t, running, tmp)
    first = subprocess.Popen(SINK_COMMAND, env=env)
    try:
        total = len(expected_state(work.commands))
        def first_alive() -> None:
            assert first.poll() is None, "the first sink exited on its own"

        wait_until(lambda: len(admin(running, "participations")) > total // 4, 60,
                   "the first sink to be mid-way", first_alive)
        _sigkill(first)
    finally:
        if first.poll() is None:
            first.kill()
    assert not committed_all(t)
    second = subprocess.Popen(SINK_COMMAND, env=env)
    try:
        wait_until(lambda: committed_all(t), 120, "the restarted sink to finish")
        _stop(second)
    finally:
        if second.poll() is None:
            second.kill()


def test_sigkill_mid_batch_loses_nothing(topics: Any, producer_factory: Any,
                                         tmp_path: Any) -> None:
    t = topics(2)
    work = make_workload(events=4, people=80, seed=4)
    with sandbox(faults=_slow()) as running:
        produce(producer_factory(), t.commands, work.commands)
        _kill_and_restart(t, running, work, tmp_path)
        assert hubspot_state(running) == expected_state(work.commands)
    assert read_dlq(t, 0, timeout=3) == []


def _slow() -> Any:
    from connector.sandbox import FaultConfig
    return FaultConfig(latency_seconds=0.05)


def test_sixty_second_outage_loses_nothing(topics: Any, producer_factory: Any) -> None:
    t = topics()
    work = make_workload(events=3, people=100, seed=13)
    with sandbox() as running:
        admin(running, "faults", "PUT",  # from the sink's first request, however late it is
              json={"outage": {"start_in": 0, "duration": 60, "after_first_request": True}})
        produce(producer_factory(), t.commands, work.commands)
        run_until_done(t, settings(t, running.url, max_inputs_per_request=20), timeout=180)
        assert hubspot_state(running) == expected_state(work.commands)
        assert admin(running, "counters")["faults"]["outage"] > 0
    assert read_dlq(t, 0, timeout=3) == []


def flipping_workload(events: int, people: int, seed: int) -> Workload:
    """Every person registers, cancels, registers again and attends (in that order), people and
    webinars interleaved: any two of a person's commands applied out of order show."""
    rng = random.Random(seed)
    work = Workload()
    for e in range(events):
        webinar = f"flip-{e}"
        cmds = [Command(webinar, ACCOUNT, EventUpsert(
            eventName=f"Webinar {e}", eventOrganizer="Org", eventType="WEBINAR",
            startDateTime=T0))]
        for p in range(people):
            email = f"f{p}.w{e}@example.com"
            t = T0 - 86_400_000 + p * 1000
            for n, state in enumerate(["REGISTERED", "CANCELLED", "REGISTERED"]):
                cmds.append(Command(webinar, ACCOUNT, Attendance(
                    state, None, email, t + n * 10, {"firstname": f"F{p}"})))
            joined = T0 + p * 100
            cmds.append(Command(webinar, ACCOUNT, Attendance(
                "ATTENDED", None, email, joined, {"firstname": f"F{p}"}, joinedAt=joined,
                leftAt=joined + 600_000)))
        body = cmds[1:]
        rng.shuffle(body)
        cmds[1:] = _keep_person_order(body)
        work.commands.extend(cmds)
    return work


def recorded_order(running: RunningSandbox) -> dict[tuple[str, str], list[int]]:
    """(webinar, person) -> interactionDateTimes in the order HubSpot recorded them, each
    command once (its first recording: a replay after a crash records it again later)."""
    state = admin(running, "state")
    events = {e["object_id"]: e["external_event_id"] for e in state["events"]}
    contacts = {c["vid"]: c["email"] for c in state["contacts"]}
    out: dict[tuple[str, str], list[int]] = {}
    for row in state["participations"]:
        seen: list[int] = []
        for i in sorted(row["interactions"], key=lambda i: i["recorded_at"]):
            if i["occurred_at"] not in seen:
                seen.append(i["occurred_at"])
        out[(events[row["object_id"]], f"email:{contacts[row['vid']]}")] = seen
    return out


def test_requests_in_flight_keep_each_persons_order_through_storm_rebalance_and_sigkill(
        topics: Any, producer_factory: Any, tmp_path: Any) -> None:
    """HubSpot answers in 0.1 s + 1 ms per input, so each sink has many requests in flight;
    a second sink joins mid-way (a revoke with requests in the air), the first is SIGKILLed
    mid-flight, and a 429 storm hits. Every person's commands reach HubSpot in their order,
    and the final state is the fold of the commands."""
    t = topics(4)
    work = flipping_workload(events=6, people=60, seed=21)
    faults = {"latency_model": {"base_seconds": 0.1, "per_input_seconds": 0.001, "jitter": 0.2},
              "storm": {"start_in": 0.5, "duration": 3, "after_first_request": True}}
    with sandbox(window_limit=190) as running:
        admin(running, "faults", "PUT", json=faults)
        produce(producer_factory(), t.commands, work.commands)
        total = len(work.attendance)
        env = _sink_env(t, running, tmp_path)
        first = subprocess.Popen(SINK_COMMAND, env=env)
        second: subprocess.Popen[bytes] | None = None
        try:
            wait_until(lambda: len(interactions(running)) > total // 5, 60,
                       "the first sink a fifth of the way")
            second = subprocess.Popen(SINK_COMMAND, env=env)
            wait_until(lambda: len(interactions(running)) > total // 2, 60,
                       "both sinks half-way")
            _sigkill(first)
            wait_until(lambda: committed_all(t), 120, "the second sink to finish")
            _stop(second)
        finally:
            for process in (first, second):
                if process is not None and process.poll() is None:
                    process.kill()
        assert hubspot_state(running) == expected_state(work.commands)
        order = recorded_order(running)
        counters = admin(running, "counters")
    wanted: dict[tuple[str, str], list[int]] = {}
    for c in work.attendance:
        assert isinstance(c.body, Attendance)
        wanted.setdefault((c.externalEventId, person_key(c.body)), []).append(
            c.body.interactionDateTime)
    assert order == wanted
    assert counters["faults"].get("storm", 0) > 0, counters
    assert read_dlq(t, 0, timeout=3) == []
