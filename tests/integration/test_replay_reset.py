"""`connector replay reset` on the real broker: dry run, execute, active groups, bad input."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, TopicPartition

from connector.cli import main
from connector.cli.replay import replay_group
from tests.conftest import ConsumerFactory, ProducerFactory, TopicFactory

pytestmark = pytest.mark.integration

if "replay" not in main.commands:
    main.add_command(replay_group)


def replay(bootstrap: str, *args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["replay", *args], env={
        "CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": bootstrap, **env})
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def fill(producer_factory: ProducerFactory, topic: str, partitions: int, count: int) -> None:
    producer = producer_factory()
    for partition in range(partitions):
        for n in range(count):
            producer.produce(topic, value=f"{n}".encode(), partition=partition)
    producer.flush(10)


def commit(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Commit like a consumer of `group` that has stopped (the group stays EMPTY)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                    asynchronous=False)
    consumer.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return [tp.offset for tp in consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=10)]
    finally:
        consumer.close()


@pytest.fixture
def group_on_topic(kafka_bootstrap: str, topic_factory: TopicFactory,
                   producer_factory: ProducerFactory) -> tuple[str, str]:
    """A topic of 2 partitions x 10 records and an empty group committed at 8 and 10."""
    topic = topic_factory("replay", partitions=2)
    fill(producer_factory, topic, 2, 10)
    group = f"g-{uuid.uuid4().hex[:8]}"
    commit(kafka_bootstrap, group, {(topic, 0): 8, (topic, 1): 10})
    return topic, group


def test_dry_run_shows_current_and_target_and_changes_nothing(
        kafka_bootstrap: str, group_on_topic: tuple[str, str]) -> None:
    topic, group = group_on_topic
    code, output = replay(kafka_bootstrap, "reset", "--group", group, "--to-earliest")
    assert code == 0, output
    assert "dry run, add --execute to apply" in output
    lines = output.splitlines()
    assert lines[2].split()[:7] == ["TOPIC", "PARTITION", "CURRENT", "TARGET", "LAG", "BEFORE",
                                    "LAG"]
    assert lines[3].split() == [topic, "0", "8", "0", "2", "10", "+8"]
    assert lines[4].split() == [topic, "1", "10", "0", "0", "10", "+10"]
    code, output = replay(kafka_bootstrap, "reset", "--group", group, "--topic", f"{topic}:1",
                          "--shift-by", "-3", "--json")
    assert code == 0, output
    plan = json.loads(output)
    assert plan["executed"] is False and plan["state"] == "EMPTY"
    assert [(p["partition"], p["current"], p["target"], p["lag_change"])
            for p in plan["partitions"]] == [(1, 10, 7, 3)]
    assert committed(kafka_bootstrap, group, topic, 2) == [8, 10]


def test_execute_moves_the_committed_offsets(kafka_bootstrap: str, topic_factory: TopicFactory,
                                             producer_factory: ProducerFactory) -> None:
    topic = topic_factory("replay", partitions=2)
    fill(producer_factory, topic, 2, 5)
    time.sleep(0.05)
    boundary = int(time.time() * 1000)
    time.sleep(0.05)
    fill(producer_factory, topic, 2, 5)  # offsets 5..9 are after `boundary`
    group = f"g-{uuid.uuid4().hex[:8]}"
    commit(kafka_bootstrap, group, {(topic, 0): 10, (topic, 1): 10})
    moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(boundary // 1000)) + \
        f".{boundary % 1000:03d}Z"
    code, output = replay(kafka_bootstrap, "reset", "--group", group, "--to-datetime", moment,
                          "--execute")
    assert code == 0, output
    assert committed(kafka_bootstrap, group, topic, 2) == [5, 5]
    code, output = replay(kafka_bootstrap, "reset", "--group", group, "--topic", f"{topic}:0",
                          "--shift-by", "-100", "--execute")
    assert code == 0 and "clamped to earliest" in output, output
    assert committed(kafka_bootstrap, group, topic, 2) == [0, 5]
    code, output = replay(kafka_bootstrap, "reset", "--group", group, "--by-duration", "1d",
                          "--execute")
    assert code == 0, output
    assert committed(kafka_bootstrap, group, topic, 2) == [0, 0]
    code, output = replay(kafka_bootstrap, "reset", "--group", group, "--to-latest", "--execute")
    assert code == 0 and "committed new offsets for 2 partition(s)" in output
    assert committed(kafka_bootstrap, group, topic, 2) == [10, 10]


def test_from_file_and_the_sink_alias(kafka_bootstrap: str, group_on_topic: tuple[str, str],
                                      tmp_path: Any) -> None:
    topic, group = group_on_topic
    offsets = tmp_path / "offsets.csv"
    offsets.write_text(f"topic,partition,offset\n{topic},1,4\n")
    code, output = replay(kafka_bootstrap, "reset", "--group", "sink", "--from-file",
                          str(offsets), "--execute", CONNECTOR_SINK__GROUP_ID=group)
    assert code == 0, output
    assert f"group {group} (sink, EMPTY)" in output
    assert committed(kafka_bootstrap, group, topic, 2) == [8, 4]


def test_an_active_group_is_refused_unless_forced_and_then_kafka_refuses(
        kafka_bootstrap: str, group_on_topic: tuple[str, str],
        consumer_factory: ConsumerFactory) -> None:
    topic, group = group_on_topic
    member = consumer_factory({"group.id": group, "client.id": "live-sink"})
    member.subscribe([topic])
    deadline = time.monotonic() + 30
    while not member.assignment() and time.monotonic() < deadline:
        member.poll(0.2)
    assert member.assignment()
    code, output = replay(kafka_bootstrap, "reset", "--group", group, "--to-earliest")
    assert code == 0 and "active member: live-sink" in output  # a dry run still shows the plan
    code, output = replay(kafka_bootstrap, "reset", "--group", group, "--to-earliest",
                          "--execute")
    assert code == 1, output
    assert "is STABLE with 1 active member(s)" in output and "live-sink on" in output
    assert "stop its consumers" in output
    code, output = replay(kafka_bootstrap, "reset", "--group", group, "--to-earliest",
                          "--execute", "--force")
    assert code == 1, output
    assert "Kafka rejected the new offsets" in output and "UNKNOWN_MEMBER_ID" in output
    assert committed(kafka_bootstrap, group, topic, 2) == [8, 10]
    member.close()
    code, output = replay(kafka_bootstrap, "reset", "--group", group, "--to-earliest",
                          "--execute")
    assert code == 0, output
    assert committed(kafka_bootstrap, group, topic, 2) == [0, 0]


def test_unknown_group_topic_and_partition(kafka_bootstrap: str,
                                           group_on_topic: tuple[str, str]) -> None:
    topic, group = group_on_topic
    code, output = replay(kafka_bootstrap, "reset", "--group", "no-such-group", "--to-earliest")
    # The message lists what exists (shortened on a busy shared broker, so no name is certain).
    assert code == 1 and "'no-such-group' does not exist" in output
    code, output = replay(kafka_bootstrap, "reset", "--group", group, "--topic", "no-such-topic",
                          "--to-earliest")
    assert code == 1 and "'no-such-topic' does not exist; topics:" in output
    code, output = replay(kafka_bootstrap, "reset", "--group", group, "--topic", f"{topic}:7",
                          "--to-earliest")
    assert code == 1 and "has no partition 7; it has partitions 0-1" in output
    code, output = replay(kafka_bootstrap, "reset", "--group", "normalizer", "--to-earliest",
                          CONNECTOR_NORMALIZER__GROUP_ID=group)
    assert code == 1 and "'webinar.activity' does not exist" in output
    code, output = replay(kafka_bootstrap, "reset", "--group", "normalizer", "--topic", topic,
                          "--to-earliest", CONNECTOR_NORMALIZER__GROUP_ID=group)
    assert code == 1 and "reads only webinar.activity and webinar.webinars, not" in output


def test_watermarks_tell_the_stable_end_from_the_end_of_the_log(
        kafka_bootstrap: str, topic_factory: TopicFactory) -> None:
    """A transaction's records are beyond the last stable offset until its markers are written:
    the backfill reads its commands up to the end of the log, or it may read none."""
    from confluent_kafka import Producer

    from connector.replay.cluster import Cluster

    topic = topic_factory(partitions=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap,
                         "transactional.id": f"marks-{uuid.uuid4().hex[:8]}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"v", b"k")
    producer.flush(30)  # written, not committed
    cluster = Cluster({"bootstrap.servers": kafka_bootstrap})
    try:
        assert cluster.watermarks([(topic, 0)]) == {(topic, 0): (0, 0)}
        assert cluster.watermarks([(topic, 0)], uncommitted=True) == {(topic, 0): (0, 1)}
        producer.commit_transaction(30)  # returns before the marker is surely written
        deadline = time.monotonic() + 30
        while cluster.watermarks([(topic, 0)])[(topic, 0)] != (0, 2):  # record + its marker
            assert time.monotonic() < deadline, cluster.watermarks([(topic, 0)])
            time.sleep(0.05)
    finally:
        cluster.close()
