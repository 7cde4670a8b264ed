"""Replay and backfill into the HubSpot sandbox: re-sending what HubSpot holds changes nothing,
and a bounded backfill sends exactly its range (temporary topics and groups cleaned up)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.cli.replay import replay_group
from connector.config import Settings
from connector.dlq.envelope import H_BACKFILL, H_OFFSET, H_PARTITION, H_TOPIC, header_map
from connector.kafka.reader import read_all
from connector.normalize.rules import Identity, identify
from connector.replay.cluster import Cluster, read_ranges
from connector.replay.spec import format_ms
from connector.runtime.assemble import run_normalizer
from connector.runtime.sink import run_sink
from connector.runtime.workers import run_workers
from connector.sample import Sample, SampleSpec, generate
from connector.sample.oracle import expected_outcome
from connector.sample.view import create_known_contacts, hubspot_view
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.server import serve_in_thread
from tests.pipeline_helpers import (
    pipeline_env,
    publish,
    publish_more,
    settings_for,
    wait_for,
)

pytestmark = pytest.mark.integration

if "replay" not in main.commands:
    main.add_command(replay_group)


@pytest.fixture
def sandbox() -> Iterator[tuple[str, str, tuple[int, ...]]]:
    """A fresh sandbox: (url, token, ids of the contacts the platform already knows)."""
    config = SandboxConfig.default(window_limit=190)
    token = config.apps[0].token
    with serve_in_thread(create_app(config)) as served:
        yield served.url, token, create_known_contacts(served.url, token, 5)


def hubspot_env(bootstrap: str, url: str, token: str) -> dict[str, str]:
    return pipeline_env(bootstrap, CONNECTOR_HUBSPOT__BASE_URL=url,
                        CONNECTOR_HUBSPOT__ACCESS_TOKEN=token, CONNECTOR_SINK__LINGER_MS="100")


def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["replay", *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def predicted(samples: list[Sample]) -> dict[Any, Any]:
    activities = [r for s in samples for k, r in s.publish_order() if k == "activity"]
    ended = {w["webinarId"]: w for s in samples for w in s.webinars if w["status"] == "ENDED"}
    return expected_outcome(activities, ended)


def snapshot(url: str, by_vid: set[int]) -> dict[str, Any]:
    """What must not change: each participation's current state, joinedAt/leftAt, counters."""
    view, state = hubspot_view(url, by_vid)
    return {
        "final": view,
        "events": sorted((e["external_event_id"], json.dumps(e["counters"], sort_keys=True))
                         for e in state["events"]),
        "participations": sorted((p["object_id"], p["vid"], p["currentState"],
                                  p["attendanceDurationSeconds"])
                                 for p in state["participations"]),
        "contacts": len(state["contacts"]),
    }


def command_ends(settings: Settings) -> dict[tuple[str, int], int]:
    """Per commands partition, the offset after its last command."""
    cluster = Cluster(settings.kafka.consumer_config())
    try:
        tps = cluster.resolve_all(settings.topics.commands)
        marks = cluster.watermarks(tps)
        ends = {}
        for message in read_ranges(settings.kafka.consumer_config(),
                                   {tp: (0, marks[tp][1]) for tp in tps}):
            ends[(message.topic(), message.partition())] = message.offset() + 1
        return ends
    finally:
        cluster.close()


def sink_done(settings: Settings, ends: dict[tuple[str, int], int]) -> bool:
    cluster = Cluster(settings.kafka.consumer_config())
    try:
        committed = cluster.committed(settings.sink.group_id, list(ends))
    finally:
        cluster.close()
    return all(committed.get(tp, 0) >= end for tp, end in ends.items())


def test_replaying_topics_into_a_sandbox_that_holds_their_data_changes_nothing(
        kafka_bootstrap: str, create_topic: Any, sandbox: Any) -> None:
    url, token, contacts = sandbox
    env = hubspot_env(kafka_bootstrap, url, token)
    settings = settings_for(env)
    sample = generate(SampleSpec(seed=51, webinars=2, people_per_webinar=50, contact_ids=contacts))
    publish(settings, sample, create_topic)
    by_vid, expected = set(contacts), predicted([sample])

    def run_pipeline(until: Callable[[], bool], what: str) -> None:
        stop = threading.Event()
        workers = threading.Thread(target=run_workers, daemon=True, args=(
            settings, {"normalizer": run_normalizer, "sink": run_sink}, stop))
        workers.start()
        try:
            wait_for(until, 90, what)
        finally:
            stop.set()
            workers.join(60)

    run_pipeline(lambda: hubspot_view(url, by_vid)[0] == expected, "HubSpot to show the sample")
    wait_for(lambda: sink_done(settings, command_ends(settings)), 30, "the sink to commit")
    before = snapshot(url, by_vid)
    first_ends = command_ends(settings)

    for group in ("normalizer", "sink"):
        code, output = cli(env, "reset", "--group", group, "--to-earliest", "--execute")
        assert code == 0, output

    def replayed() -> bool:
        ends = command_ends(settings)
        # The normalizer emitted everything again (each partition twice as long) ...
        return all(ends.get(tp, 0) >= 2 * end for tp, end in first_ends.items()) \
            and sink_done(settings, ends)  # ... and the sink applied all of it.

    run_pipeline(replayed, "the replay to go through normalizer and sink")
    assert snapshot(url, by_vid) == before


def test_backfill_sends_its_range_and_leaves_nothing_behind(
        kafka_bootstrap: str, create_topic: Any, sandbox: Any) -> None:
    url, token, contacts = sandbox
    env = hubspot_env(kafka_bootstrap, url, token)
    settings = settings_for(env)
    start = format_ms(int(time.time() * 1000) - 1000)
    first = generate(SampleSpec(seed=61, webinars=1, people_per_webinar=60, contact_ids=contacts))
    publish(settings, first, create_topic)
    time.sleep(0.1)
    boundary = format_ms(int(time.time() * 1000))
    time.sleep(0.1)
    second = generate(SampleSpec(seed=62, webinars=1, people_per_webinar=60,
                                 contact_ids=contacts))
    publish_more(settings, second)
    by_vid = set(contacts)

    code, output = cli(env, "backfill", "--from", boundary, "--json")
    assert code == 0, output
    plan = json.loads(output)
    second_records = len(second.activities) + len(second.webinars)
    assert plan["executed"] is False and plan["records"] == second_records
    assert all(".backfill-" in t for t in plan["temporary_topics"])
    assert hubspot_view(url, by_vid)[0] == {}  # a dry run sends nothing

    code, output = cli(env, "backfill", "--from", boundary, "--execute", "--timeout", "90")
    assert code == 0, output
    assert f"re-ran {second_records} record(s)" in output and "apply: " in output
    assert hubspot_view(url, by_vid)[0] == predicted([second])  # the range, and only it

    code, output = cli(env, "backfill", "--from", start, "--to", boundary, "--execute",
                       "--timeout", "90")
    assert code == 0, output
    both = snapshot(url, by_vid)
    assert both["final"] == predicted([first, second]), output  # the plan, if it ever fails
    # Counted as records (not offsets, which also number the transactions' commit markers).
    guests = [a for a in first.activities if not isinstance(identify(a["participant"]), Identity)]
    assert f"\n{len(guests)} record(s) rejected by the normalizer" in output, output
    # ... and kept in the live dead-letter topic, naming the original records and the backfill
    backfill_id = output.split("backfill ", 1)[1].split(":", 1)[0]
    letters = [(header_map(m.headers()), m.value()) for m in read_all(
        settings.kafka.consumer_config(), settings.topics.dlq_for(settings.topics.activity),
        timeout=10)]
    ours = [(h, value) for h, value in letters if h.get(H_BACKFILL) == backfill_id]
    assert len(ours) == len(guests) > 0
    assert {h[H_TOPIC] for h, _ in ours} == {settings.topics.activity}
    originals = {(m.partition(), m.offset()): m.value() for m in read_all(
        settings.kafka.consumer_config(), settings.topics.activity, timeout=10)}
    assert all(originals.get((int(h[H_PARTITION]), int(h[H_OFFSET]))) == value
               for h, value in ours)  # each names its original record, offset and all

    for roles in (["--topic", "activity"], ["--topic", "webinars"], []):
        code, output = cli(env, "backfill", "--from", start, *roles, "--execute",
                           "--timeout", "90")
        assert code == 0, output
        assert snapshot(url, by_vid) == both  # what HubSpot holds already: nothing changes

    cluster = Cluster(settings.kafka.consumer_config())
    try:
        assert not [t for t in cluster.topics() if ".backfill-" in t]
        assert not [g for g in cluster.group_ids() if ".backfill-" in g]
        assert settings.normalizer.group_id not in cluster.group_ids()  # live groups untouched
        assert settings.sink.group_id not in cluster.group_ids()
    finally:
        cluster.close()


def test_backfill_bad_input_on_the_broker(kafka_bootstrap: str, create_topic: Any) -> None:
    env = pipeline_env(kafka_bootstrap)
    code, output = cli(env, "backfill", "--from", "1h")
    assert code == 1 and f"topic '{env['CONNECTOR_TOPICS__ACTIVITY']}' does not exist" in output
    settings = settings_for(env)
    publish(settings, generate(SampleSpec(seed=71, webinars=1, people_per_webinar=5)),
            create_topic)
    code, output = cli(env, "backfill", "--from", "1h", "--execute")
    assert code == 2 and "CONNECTOR_HUBSPOT__ACCESS_TOKEN" in output


def test_backfill_for_one_account_sends_only_its_events_and_attendance(
        kafka_bootstrap: str, create_topic: Any, sandbox: Any) -> None:
    url, token, contacts = sandbox
    env = hubspot_env(kafka_bootstrap, url, token)
    settings = settings_for(env)
    start = format_ms(int(time.time() * 1000) - 60_000)
    mine = generate(SampleSpec(seed=81, webinars=1, people_per_webinar=40, contact_ids=contacts,
                               account_id="acct-a"))
    theirs = generate(SampleSpec(seed=82, webinars=2, people_per_webinar=30,
                                 contact_ids=contacts, account_id="acct-b"))
    publish(settings, mine, create_topic)
    publish_more(settings, theirs)
    by_vid = set(contacts)
    records = sum(len(s.activities) + len(s.webinars) for s in (mine, theirs))

    code, output = cli(env, "backfill", "--from", start, "--account", "acct-a", "--json")
    assert code == 0, output
    plan = json.loads(output)
    assert plan["accounts"] == ["acct-a"] and plan["records"] == records
    assert any(t.endswith("-planned") for t in plan["temporary_topics"])

    code, output = cli(env, "backfill", "--from", start, "--account", "acct-a", "--execute",
                       "--timeout", "90")
    assert code == 0, output
    assert f"re-ran {records} record(s)" in output  # every record normalized ...
    view, state = hubspot_view(url, by_vid)
    assert view == predicted([mine])  # ... only acct-a's commands reached HubSpot
    assert {e["external_event_id"] for e in state["events"]} == {
        w["webinarId"] for w in mine.webinars}
    assert {e["external_account_id"] for e in state["events"]} == {"acct-a"}
    left_out = [line for line in output.splitlines() if line.startswith("left out ")]
    assert len(left_out) == 1 and not left_out[0].startswith("left out 0 "), output

    cluster = Cluster(settings.kafka.consumer_config())
    try:
        assert not [t for t in cluster.topics() if ".backfill-" in t]
        assert not [g for g in cluster.group_ids() if ".backfill-" in g]
    finally:
        cluster.close()
