"""List associations end to end: commands on a real broker, run_sink against the sandbox on
loopback; after the sink applied an EventUpsert the event is associated with its configured
lists (the sandbox creates unknown lists on first association, per its README), and a list that
does not exist dead-letters the upsert without losing the event.

``run_sink`` builds its Applier in ``connector.runtime.sink``; until that passes
``lists=ListTargets.from_settings(settings.hubspot.list_associations)`` itself, the test hands
the lists in by wrapping the Applier the runner builds.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from connector.config import Settings, load_settings
from connector.dlq import header_map
from connector.dlq.envelope import H_HTTP_STATUS, H_REASON
from connector.kafka.reader import read_all
from connector.normalize.command import COMMAND_SCHEMA, Attendance, Command, EventUpsert
from connector.runtime import sink as runner
from connector.runtime.sink import run_sink
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.server import RunningSandbox, serve_in_thread
from connector.serde.catalog import SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.topic import TopicFormat, build_codec
from connector.sink import apply
from connector.sink.request import ListTargets

pytestmark = pytest.mark.integration

TOKEN = SandboxConfig.default().apps[0].token
T0 = 1_767_261_600_000


@contextlib.contextmanager
def sandbox(**overrides: Any) -> Iterator[RunningSandbox]:
    config = SandboxConfig.default(window_limit=None, daily_limit=None, **overrides)
    with serve_in_thread(create_app(config)) as running:
        yield running


def admin(running: RunningSandbox, path: str, method: str = "GET", **kwargs: Any) -> Any:
    response = httpx.request(method, f"{running.url}/_sandbox/{path}", timeout=10, **kwargs)
    response.raise_for_status()
    return response.json()


def lists_by_event(running: RunningSandbox) -> dict[str, set[str]]:
    return {e["external_event_id"]: set(e["list_ids"]) for e in admin(running, "events")}


def settings(bootstrap: str, url: str, topic_factory: Any,
             associations: list[dict[str, Any]]) -> Settings:
    return load_settings({
        "CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "CONNECTOR_TOPICS__COMMANDS": topic_factory("commands", 2),
        "CONNECTOR_TOPICS__COMMANDS_DLQ": topic_factory("commands-dlq", 1),
        "CONNECTOR_SINK__GROUP_ID": f"sink-{uuid.uuid4().hex[:8]}",
        "CONNECTOR_SINK__LINGER_MS": "20",
        "CONNECTOR_SINK__RETRY_BUDGET_SECONDS": "30",
        "CONNECTOR_HUBSPOT__BASE_URL": url,
        "CONNECTOR_HUBSPOT__ACCESS_TOKEN": TOKEN,
        "CONNECTOR_HUBSPOT__REQUEST_TIMEOUT_SECONDS": "5",
        "CONNECTOR_HUBSPOT__LIST_ASSOCIATIONS": json.dumps(associations),
    })


def produce(config: Settings, commands: list[Command]) -> None:
    topic = config.topics.commands
    codec = build_codec(TopicFormat(Framing.SINGLE_OBJECT, COMMAND_SCHEMA), topic,
                        SchemaCatalog.from_directory())
    producer = Producer(config.kafka.producer_config())
    for command in commands:
        producer.produce(topic, key=command.key, value=codec.encode(command.to_avro()))
    assert producer.flush(30) == 0


def committed_all(config: Settings) -> bool:
    consumer = Consumer({**config.kafka.consumer_config(), "group.id": config.sink.group_id})
    try:
        topic = config.topics.commands
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        for tp in consumer.committed([TopicPartition(topic, p) for p in parts], timeout=10):
            _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high > 0 and tp.offset < high:
                return False
        return True
    finally:
        consumer.close()


def run_until_committed(config: Settings, monkeypatch: pytest.MonkeyPatch,
                        timeout: float = 90) -> None:
    targets = ListTargets.from_settings(config.hubspot.list_associations)
    monkeypatch.setattr(runner, "Applier", functools.partial(apply.Applier, lists=targets))
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run_sink(config, stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        wait_until(lambda: committed_all(config) or bool(errors), timeout, "every commit")
    finally:
        stop.set()
        thread.join(60)
    assert not errors, errors
    assert not thread.is_alive()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.25)


def upsert(webinar: str, account: str, name: str = "Webinar") -> Command:
    return Command(webinar, account, EventUpsert(eventName=name, eventOrganizer="Org",
                                                 eventType="WEBINAR", startDateTime=T0))


def register(webinar: str, account: str, n: int) -> Command:
    return Command(webinar, account, Attendance("REGISTERED", vid=None, interactionDateTime=T0 - n,
                                                email=f"p{n}@example.com",
                                                contactProperties={"firstname": f"P{n}"}))


def test_events_are_associated_with_their_lists(kafka_bootstrap: str, topic_factory: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    associations = [{"webinar_id": "w1", "list_ids": ["101"]},
                    {"account_id": "acct-1", "list_ids": ["102"]},
                    {"account_id": "acct-2", "list_ids": ["201", "202"]}]
    with sandbox() as running:
        config = settings(kafka_bootstrap, running.url, topic_factory, associations)
        produce(config, [upsert("w1", "acct-1"), register("w1", "acct-1", 1),
                         upsert("w2", "acct-2"), upsert("w3", "acct-3"),
                         upsert("w1", "acct-1", name="Webinar, renamed")])
        run_until_committed(config, monkeypatch)

        assert lists_by_event(running) == {"w1": {"101", "102"}, "w2": {"201", "202"},
                                           "w3": set()}
        assert {x["list_id"] for x in admin(running, "lists")} == {"101", "102", "201", "202"}
        puts = admin(running, "requests", params={"operation": "lists.associate_by_object_id"})
        assert len(puts) == 4  # once per (event, list): the second w1 upsert sent none
        assert all(r["status"] == 204 for r in puts)
        assert read_all(config.kafka.consumer_config(), config.topics.commands_dlq, 5) == []
        with httpx.Client(base_url=running.url,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            object_id = next(e["object_id"] for e in admin(running, "events")
                             if e["external_event_id"] == "w1")
            linked = http.get(f"/marketing/v3/marketing-events/associations/{object_id}/lists")
            assert {x["listId"] for x in linked.json()["results"]} == {"101", "102"}


def test_a_missing_list_dead_letters_the_upsert_and_keeps_the_event(
        kafka_bootstrap: str, topic_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    associations = [{"account_id": "acct-1", "list_ids": ["301", "999"]}]
    with sandbox(auto_create_lists=False) as running:
        admin(running, "lists", "POST", json={"listId": "301", "name": "Existing"})
        config = settings(kafka_bootstrap, running.url, topic_factory, associations)
        produce(config, [upsert("w1", "acct-1"), register("w1", "acct-1", 1),
                         register("w1", "acct-1", 2)])
        run_until_committed(config, monkeypatch)

        assert lists_by_event(running) == {"w1": {"301"}}  # the event, and the list that exists
        assert len(admin(running, "participations")) == 2  # attendance was not held back
        letters = read_all(config.kafka.consumer_config(), config.topics.commands_dlq, 10)
        assert len(letters) == 1
        headers = header_map(letters[0].headers())
        assert headers[H_REASON] == "list-association-failed"
        assert headers[H_HTTP_STATUS] == "404"
        assert letters[0].key() == b"w1"
