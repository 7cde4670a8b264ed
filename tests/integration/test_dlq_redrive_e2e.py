"""Redrive end to end: the sink dead-letters attendance for an event HubSpot does not have; a
redrive before the fix fails again and keeps its history; after the fix, a redrive empties the
dead-letter topic into HubSpot (the sandbox on loopback, the real broker, `connector dlq` via
CliRunner).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from connector.cli import main
from connector.cli.dlq import dlq_group
from connector.config import load_settings
from connector.dlq import header_map
from connector.dlq.history import read_history
from connector.kafka.reader import read_all
from connector.normalize.command import COMMAND_SCHEMA, Attendance, Command, EventUpsert
from connector.runtime.assemble import run_normalizer
from connector.runtime.sink import run_sink
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.server import RunningSandbox, serve_in_thread
from connector.serde.catalog import SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.topic import TopicFormat, build_codec
from tests.pipeline_helpers import WorkerThread, pipeline_env, wait_for

pytestmark = pytest.mark.integration

if "dlq" not in main.commands:
    main.add_command(dlq_group)

TOKEN = SandboxConfig.default().apps[0].token
T0 = 1_767_261_600_000
WEBINAR = "web-redrive"
ATTENDED = Command(WEBINAR, "acct-1", Attendance(
    "ATTENDED", None, "ada@example.com", T0 + 60_000, {"firstname": "Ada"},
    joinedAt=T0 + 60_000, leftAt=T0 + 1_800_000))
UPSERT = Command(WEBINAR, "acct-1", EventUpsert("Redrive webinar", "Org", "WEBINAR",
                                                startDateTime=T0))


def produce(bootstrap: str, topic: str, commands: list[Command], producer_factory: Any) -> None:
    codec = build_codec(TopicFormat(Framing.SINGLE_OBJECT, COMMAND_SCHEMA), topic,
                        SchemaCatalog.from_directory())
    producer = producer_factory()
    for command in commands:
        producer.produce(topic, key=command.key, value=codec.encode(command.to_avro()),
                         headers=[("traceparent", b"00-e2e")])
    assert producer.flush(30) == 0


def committed_all(bootstrap: str, group: str, topic: str) -> bool:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        for tp in consumer.committed([TopicPartition(topic, 0)], timeout=10):
            _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high > 0 and tp.offset < high:
                return False
        return True
    finally:
        consumer.close()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def run_sink_until_done(env: dict[str, str], bootstrap: str, topic: str) -> None:
    """run_sink in a thread until its group has committed the whole commands topic."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run_sink(load_settings(env), stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        wait_until(lambda: bool(errors) or committed_all(bootstrap, env["CONNECTOR_SINK__GROUP_ID"],
                                                         topic), 30, "the sink to commit")
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors
    assert not thread.is_alive()


def dlq(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(main, ["dlq", *args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    return json.loads(lines[0]) if args[0] != "show" else [json.loads(x) for x in lines]


def attendance_in(running: RunningSandbox) -> list[tuple[str, str, str | None]]:
    state = httpx.get(f"{running.url}/_sandbox/state", timeout=10).json()
    events = {e["object_id"]: e["external_event_id"] for e in state["events"]}
    emails = {c["vid"]: c["email"] for c in state["contacts"]}
    return [(events[p["object_id"]], emails[p["vid"]], p["currentState"])
            for p in state["participations"]]


def test_redrive_empties_the_dead_letter_topic_into_hubspot(
        topic_factory: Any, kafka_bootstrap: str, producer_factory: Any) -> None:
    commands = topic_factory("commands", 1)
    commands_dlq = topic_factory("commands-dlq", 1)
    with serve_in_thread(create_app(SandboxConfig.default(window_limit=None))) as running:
        env = {
            "CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
            "CONNECTOR_TOPICS__COMMANDS": commands,
            "CONNECTOR_TOPICS__COMMANDS_DLQ": commands_dlq,
            "CONNECTOR_HUBSPOT__BASE_URL": running.url,
            "CONNECTOR_HUBSPOT__ACCESS_TOKEN": TOKEN,
            "CONNECTOR_SINK__GROUP_ID": f"sink-{uuid.uuid4().hex[:8]}",
            "CONNECTOR_SINK__RETRY_BUDGET_SECONDS": "1",
            "CONNECTOR_SINK__LINGER_MS": "20",
        }
        # 1. attendance for an event HubSpot does not know: dead-lettered by the sink
        produce(kafka_bootstrap, commands, [ATTENDED], producer_factory)
        run_sink_until_done(env, kafka_bootstrap, commands)
        (first,) = dlq(env, "show", commands_dlq)
        assert (first["reason"], first["status"]) == ("event-not-found", 404)

        # 2. redriven before the cause is fixed: it fails again, and keeps its history
        assert dlq(env, "redrive", commands_dlq, "--execute")["sent"] == 1
        run_sink_until_done(env, kafka_bootstrap, commands)
        letters = dlq(env, "show", commands_dlq)
        assert len(letters) == 2
        again = read_all({"bootstrap.servers": kafka_bootstrap}, commands_dlq)[1]
        headers = header_map(again.headers())
        assert headers["connector.errors.reason"] == "event-not-found"  # fresh error headers
        assert headers["__connect.errors.offset"] == "1"  # ... of the redriven record
        assert headers["connector.redrive.attempt"] == "1"  # redrive headers kept by the sink
        assert headers["traceparent"] == "00-e2e"
        assert [(h["reason"], h["offset"]) for h in read_history(again.headers())] == [
            ("event-not-found", 0)]
        assert [r["redriven"] for r in letters] == [True, False]
        assert attendance_in(running) == []

        # 3. the cause is fixed (the event exists); a redrive sends only the pending letter
        produce(kafka_bootstrap, commands, [UPSERT], producer_factory)
        summary = dlq(env, "redrive", commands_dlq, "--execute")
        assert (summary["selected"], summary["sent"], summary["skipped_redriven"]) == (1, 1, 1)
        assert summary["records"][0]["attempt"] == 2
        run_sink_until_done(env, kafka_bootstrap, commands)

        assert attendance_in(running) == [(WEBINAR, "ada@example.com", "ATTENDED")]
        assert len(read_all({"bootstrap.servers": kafka_bootstrap}, commands_dlq)) == 2
        listed = {s["topic"]: s for s in dlq(env, "list")["topics"]}
        assert listed[commands_dlq]["pending"] == 0
        final = read_all({"bootstrap.servers": kafka_bootstrap}, commands)[-1]
        assert [(h["reason"], h["offset"]) for h in read_history(final.headers())] == [
            ("event-not-found", 0), ("event-not-found", 1)]
        assert header_map(final.headers())["connector.redrive.attempt"] == "2"


def test_a_redriven_platform_record_that_fails_again_keeps_its_history(
        kafka_bootstrap: str, kafka_admin: Any) -> None:
    """The normalizer, too, keeps the redrive headers when it dead-letters a record again."""
    env = pipeline_env(kafka_bootstrap)
    settings = load_settings(env)
    activity, webinars = settings.topics.activity, settings.topics.webinars
    created = [activity, webinars]
    for name in created:
        kafka_admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    dlq_topic = settings.topics.dlq_for(activity)
    try:
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        producer.produce(activity, key=b"web-x", value=b"\x01\x02not avro",
                         headers=[("origin", b"platform")])
        assert producer.flush(30) == 0

        def letters(count: int) -> list[Any]:
            worker = WorkerThread(run_normalizer, settings)
            try:
                wait_for(lambda: len(read_all({"bootstrap.servers": kafka_bootstrap},
                                              dlq_topic)) >= count, 30, f"{count} dead letter(s)")
            finally:
                worker.join()
            return read_all({"bootstrap.servers": kafka_bootstrap}, dlq_topic)

        (first,) = letters(1)
        assert dlq(env, "redrive", dlq_topic, "--execute")["sent"] == 1
        second = letters(2)[1]
        headers = header_map(second.headers())
        assert headers["__connect.errors.offset"] == "1"  # the redriven record's own failure
        assert headers["connector.errors.reason"] == header_map(first.headers())[
            "connector.errors.reason"]
        assert headers["origin"] == "platform"
        assert headers["connector.redrive.attempt"] == "1"
        assert headers["connector.redrive.from"] == f"{dlq_topic}/0/0"
        assert [(h["topic"], h["offset"], h["stage"]) for h in read_history(second.headers())] \
            == [(activity, 0, "VALUE_CONVERTER")]
        plan = dlq(env, "redrive", dlq_topic)
        assert plan["selected"] == 1 and plan["records"][0]["attempt"] == 2
    finally:
        created.append(dlq_topic)
        kafka_admin.delete_topics(created)
