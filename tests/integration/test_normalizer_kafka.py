"""The normalizer on the real broker: oracle, exactly-once under rebalances and SIGKILL, replay."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from connector.dlq.envelope import H_OFFSET, H_REASON, H_STAGE, header_map
from connector.normalize.command import Attendance, Command
from connector.runtime.assemble import run_normalizer
from connector.sample import SampleSpec, generate
from connector.sample.oracle import expected_outcome, final_from_commands, person_key
from tests.pipeline_helpers import (
    WorkerThread,
    decode_commands,
    pipeline_env,
    publish,
    read_topic,
    reference_commands,
    settings_for,
    wait_for,
)

pytestmark = pytest.mark.integration


def _command_ids(bootstrap: str, topic: str) -> Counter[str]:
    return Counter(cid for _, _, cid in decode_commands(read_topic(bootstrap, topic)))


def _wait_for_commands(bootstrap: str, topic: str, expected: Counter[str],
                       timeout: float) -> None:
    """Wait until `topic` holds exactly `expected`; on timeout say what is missing or extra."""
    got: Counter[str] = Counter()

    def reached() -> bool:
        nonlocal got
        got = _command_ids(bootstrap, topic)
        return got == expected

    try:
        wait_for(reached, timeout, "the reference command set")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {sum((expected - got).values())} missing, "
                             f"{sum((got - expected).values())} extra or duplicated, "
                             f"of {sum(expected.values())}") from None


def test_commands_match_the_oracle_and_bad_records_are_dead_lettered(
        kafka_bootstrap: str, create_topic: Any) -> None:
    env = pipeline_env(kafka_bootstrap)
    settings = settings_for(env)
    sample = generate(SampleSpec(seed=21, webinars=3, people_per_webinar=80))
    publish(settings, sample, create_topic)
    worker = WorkerThread(run_normalizer, settings)
    expected = reference_commands(settings)
    try:
        _wait_for_commands(kafka_bootstrap, settings.topics.commands, expected, 90)
    finally:
        worker.join()
    commands = [c for _, c, _ in decode_commands(read_topic(kafka_bootstrap,
                                                            settings.topics.commands))]
    activities = [r for k, r in sample.publish_order() if k == "activity"]
    webinars = {w["webinarId"]: w for w in sample.webinars if w["status"] == "ENDED"}
    assert final_from_commands(commands) == expected_outcome(activities, webinars)
    kinds = Counter(c.kind for c in commands)
    # SCHEDULED -> LIVE -> ENDED changes no upsert field: one upsert, then one complete each.
    assert kinds["EventUpsert"] == 3 and kinds["EventComplete"] == 3
    letters = read_topic(kafka_bootstrap, settings.topics.dlq_for(settings.topics.activity))
    unusable = sorted({a["activityId"] for a in activities if person_key(a["participant"]) is None})
    assert unusable, "the sample must contain guests without email"
    assert len(letters) == len([a for a in activities
                                if person_key(a["participant"]) is None])  # duplicates too
    for letter in letters:
        headers = header_map(letter.headers())
        assert headers[H_REASON] == "no-contact-identifier"
        assert headers[H_STAGE] == "TRANSFORMATION" and int(headers[H_OFFSET]) >= 0
        assert letter.key() is not None and letter.value()  # the original record, untouched


def test_two_instances_with_rebalances_emit_exactly_the_reference(
        kafka_bootstrap: str, create_topic: Any) -> None:
    env = pipeline_env(kafka_bootstrap, CONNECTOR_NORMALIZER__MAX_RECORDS_PER_TRANSACTION="50")
    settings_a = settings_for(env)
    settings_b = settings_for(env, CONNECTOR_NORMALIZER__INSTANCE_ID="i2")
    publish(settings_a, generate(SampleSpec(seed=5, webinars=6, people_per_webinar=120)),
            create_topic)
    expected = reference_commands(settings_a)
    topic = settings_a.topics.commands
    a = WorkerThread(run_normalizer, settings_a)
    wait_for(lambda: sum(_command_ids(kafka_bootstrap, topic).values()) > 0, 60,
             "the first commands")
    b = WorkerThread(run_normalizer, settings_b)  # joins the group mid-stream: rebalance
    time.sleep(2)
    a.join()  # leaves mid-stream: its partitions move to b with their state
    try:
        _wait_for_commands(kafka_bootstrap, topic, expected, 120)
    finally:
        b.join()
    assert _command_ids(kafka_bootstrap, topic) == expected


def _members(admin: AdminClient, group: str) -> int:
    description = admin.describe_consumer_groups([group])[group].result(10)
    return len(description.members)


def test_sigkill_at_random_points_loses_and_duplicates_nothing(
        kafka_bootstrap: str, kafka_admin: AdminClient, create_topic: Any) -> None:
    env = pipeline_env(kafka_bootstrap, CONNECTOR_NORMALIZER__MAX_RECORDS_PER_TRANSACTION="40")
    settings = settings_for(env)
    publish(settings, generate(SampleSpec(seed=9, webinars=6, people_per_webinar=120)),
            create_topic)
    expected = reference_commands(settings)
    rng = random.Random(1234)
    process_env = {**os.environ, **env}
    for _ in range(4):
        process = subprocess.Popen([sys.executable, "-m", "connector", "run", "normalizer"],
                                   env=process_env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.0, 6.0))
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    final = subprocess.Popen([sys.executable, "-m", "connector", "run", "normalizer"],
                             env=process_env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        # The last instance must really run (join the group), not just be spawned: the earlier
        # ones may already have emitted everything.
        wait_for(lambda: _members(kafka_admin, settings.normalizer.group_id) > 0, 60,
                 "the restarted normalizer to join its group")
        _wait_for_commands(kafka_bootstrap, settings.topics.commands, expected, 120)
    finally:
        final.send_signal(signal.SIGTERM)
        assert final.wait(30) == 0
    assert _command_ids(kafka_bootstrap, settings.topics.commands) == expected


def test_replay_from_offset_zero_into_fresh_state_is_identical(
        kafka_bootstrap: str, create_topic: Any) -> None:
    """Every entity's commands, in their order, are the same on replay.

    An entity is what Kafka keeps in order for the sink: one person in one webinar, or one
    webinar's event commands. Across entities the order within an output partition depends on
    how the input partitions interleave when consumed (two webinars from two input partitions,
    or a webinar's description and its activity), which no Kafka consumer fixes.
    """
    env = pipeline_env(kafka_bootstrap)
    first = settings_for(env)
    publish(first, generate(SampleSpec(seed=3, webinars=2, people_per_webinar=60)),
            create_topic)
    second = settings_for(env, CONNECTOR_TOPICS__COMMANDS=first.topics.commands + "-replay",
                          CONNECTOR_NORMALIZER__GROUP_ID=first.normalizer.group_id + "-replay")
    expected = reference_commands(first)
    streams = []
    for settings in (first, second):
        worker = WorkerThread(run_normalizer, settings)
        try:
            _wait_for_commands(kafka_bootstrap, settings.topics.commands, expected, 90)
        finally:
            worker.join()
        streams.append(_by_entity(
            decode_commands(read_topic(kafka_bootstrap, settings.topics.commands))))
    assert sum(len(ids) for ids in streams[0].values()) == sum(expected.values())
    assert streams[0] == streams[1]


def _by_entity(commands: list[tuple[int, Command, str]]) -> dict[tuple[Any, ...], list[str]]:
    """(partition, webinar, person or "event") -> that entity's commandIds in topic order."""
    entities: dict[tuple[Any, ...], list[str]] = {}
    for partition, command, command_id in commands:
        body = command.body
        who = (body.vid, body.email) if isinstance(body, Attendance) else "event"
        entities.setdefault((partition, command.externalEventId, who), []).append(command_id)
    return entities
