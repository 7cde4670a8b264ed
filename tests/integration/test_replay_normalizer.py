"""Resetting the normalizer group replaces its state: a replay emits what it must, no less."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.cli.replay import replay_group
from connector.config import Settings
from connector.kafka.reader import read_all
from connector.normalize.normalizer import AttendanceNormalizer
from connector.replay.cluster import Cluster
from connector.runtime.assemble import rules_from, run_normalizer
from connector.runtime.changelog import changelog_topic
from connector.runtime.table import WebinarTable
from connector.sample import SampleSpec, generate
from connector.serde.catalog import ACTIVITY_SCHEMA, WEBINAR_SCHEMA
from connector.serde.codec import Framing
from connector.serde.record import Decoded, SourceRecord
from connector.serde.topic import TopicDecoder, TopicFormat, build_codec
from tests.pipeline_helpers import (
    CATALOG,
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

if "replay" not in main.commands:
    main.add_command(replay_group)


def command_ids(settings: Settings) -> Counter[str]:
    messages = read_topic(settings.kafka.bootstrap_servers, settings.topics.commands)
    return Counter(cid for _, _, cid in decode_commands(messages))


def run_until(settings: Settings, expected: Counter[str]) -> None:
    worker = WorkerThread(run_normalizer, settings)
    try:
        wait_for(lambda: command_ids(settings) == expected, 90, "the expected commands")
    finally:
        worker.join()


def changelog_state(settings: Settings, source: str) -> dict[tuple[int, str], Any]:
    """The compacted view of a changelog: latest value per (partition, key), tombstones gone."""
    topic = changelog_topic(settings.normalizer.group_id, source)
    state: dict[tuple[int, str], Any] = {}
    for message in read_all(settings.kafka.consumer_config(), topic):
        state[(message.partition(), message.key().decode())] = message.value()
    return {k: v for k, v in state.items() if v is not None}


def replay(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(main, ["replay", "reset", "--group", "normalizer", *args],
                                env=env)
    assert result.exit_code == 0, result.output
    return result.output


def activity_reference(settings: Settings, ends: dict[int, int]) -> Counter[str]:
    """Commands the activity records below `ends` (per partition) emit, the whole table known."""
    bootstrap = settings.kafka.bootstrap_servers
    activity = TopicDecoder(build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a", CATALOG))
    webinars = TopicDecoder(build_codec(TopicFormat(Framing.RAW, WEBINAR_SCHEMA), "w", CATALOG))
    table = WebinarTable()
    for message in read_topic(bootstrap, settings.topics.webinars):
        result = webinars.decode(SourceRecord.from_message(message))
        assert isinstance(result, Decoded)
        table.put(result.value)
    normalizers: dict[int, AttendanceNormalizer] = {}
    ids: Counter[str] = Counter()
    for message in read_topic(bootstrap, settings.topics.activity):
        if message.offset() >= ends[message.partition()]:
            continue
        result = activity.decode(SourceRecord.from_message(message))
        assert isinstance(result, Decoded)
        normalizer = normalizers.setdefault(message.partition(),
                                            AttendanceNormalizer(table.get, rules_from(settings)))
        ids.update(c.to_avro()["commandId"] for c in
                   normalizer.on_activity(result.value, result.source).commands)
    return ids


def test_reset_to_earliest_re_emits_every_command_and_rebuilds_the_same_state(
        kafka_bootstrap: str, create_topic: Any) -> None:
    env = pipeline_env(kafka_bootstrap)
    settings = settings_for(env)
    publish(settings, generate(SampleSpec(seed=31, webinars=2, people_per_webinar=60)),
            create_topic)
    reference = reference_commands(settings)
    run_until(settings, reference)
    before = {source: changelog_state(settings, source)
              for source in (settings.topics.activity, settings.topics.webinars)}
    assert before[settings.topics.activity], "the first run must have written state"

    running = WorkerThread(run_normalizer, settings)  # a running instance holds the state
    try:
        cluster = Cluster(settings.kafka.consumer_config())
        wait_for(lambda: cluster.describe_group(settings.normalizer.group_id).is_active, 30,
                 "the normalizer to join its group")
        cluster.close()
        result = CliRunner().invoke(main, ["replay", "reset", "--group", "normalizer",
                                           "--to-earliest", "--execute", "--force"], env=env)
        assert result.exit_code == 1, result.output
        assert "active member(s)" in result.output and "--force does not apply" in result.output
    finally:
        running.join()

    output = replay(env, "--to-earliest", "--execute")
    assert "replaced the state of 6 changelog partition(s)" in output
    # emptied, not tombstoned: only the "stream time 0" entry that marks an empty state is left
    assert set(changelog_state(settings, settings.topics.activity).values()) == {b"0"}

    run_until(settings, reference + reference)  # every command again, nothing else
    after = {source: changelog_state(settings, source) for source in before}
    for source, entries in after.items():  # the marker of an empty state stays where no input is
        for key in [k for k, v in entries.items() if k[1] == "t" and v == b"0"]:
            assert key not in before[source]
            del entries[key]
        assert set(entries) == set(before[source])
        assert {k: v for k, v in entries.items() if v != before[source][k]} == {}


def test_reset_back_by_some_records_rebuilds_the_state_as_of_there(
        kafka_bootstrap: str, create_topic: Any) -> None:
    env = pipeline_env(kafka_bootstrap)
    settings = settings_for(env)
    publish(settings, generate(SampleSpec(seed=32, webinars=2, people_per_webinar=60)),
            create_topic)
    reference = reference_commands(settings)
    run_until(settings, reference)
    output = replay(env, "--topic", settings.topics.activity, "--shift-by", "-40", "--execute",
                    "--json")
    assert '"executed": true' in output
    highs = {}
    for message in read_topic(kafka_bootstrap, settings.topics.activity):
        highs[message.partition()] = message.offset() + 1
    targets = {p: max(0, high - 40) for p, high in highs.items()}
    # What the last 40 records of each partition emit, given the state before them: only that.
    again = activity_reference(settings, highs) - activity_reference(settings, targets)
    assert sum(again.values()) > 0
    run_until(settings, reference + again)
