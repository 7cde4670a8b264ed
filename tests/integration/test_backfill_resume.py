"""A backfill killed mid-sending (SIGKILL: no cleanup) and resumed with `--resume <id>` leaves
HubSpot exactly as one uninterrupted run does, every contact's interactions in the same order,
without sending again what HubSpot had acknowledged; and a dry run with --requests counts what
a run sends.

Two sandboxes, the same platform records: the first gets an uninterrupted backfill, the second
one that is killed once HubSpot acknowledged part of it and its sink committed, then resumed.
The rate budget (10 requests / 10 s) makes the kill land mid-sending whatever the machine's
speed: the backfill needs several windows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connector.kafka import TopicSpec, ensure_topics
from connector.replay.backfill_plan import Names, plan_backfill
from connector.replay.cluster import Cluster
from connector.replay.journal import PLAN, write_entry
from connector.replay.spec import format_ms
from connector.sample import SampleSpec, generate
from connector.sample.view import create_known_contacts, hubspot_view
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.server import serve_in_thread
from tests.integration.test_replay_sandbox import cli, hubspot_env, predicted
from tests.pipeline_helpers import publish, settings_for, wait_for

pytestmark = pytest.mark.integration

LIMIT = 10  # requests per 10 s: the backfill below needs several windows


@pytest.fixture
def two_sandboxes() -> Iterator[list[tuple[str, str, tuple[int, ...]]]]:
    config = SandboxConfig.default(window_limit=LIMIT)
    with serve_in_thread(create_app(config)) as first, \
            serve_in_thread(create_app(SandboxConfig.default(window_limit=LIMIT))) as second:
        token = config.apps[0].token
        yield [(s.url, token, create_known_contacts(s.url, token, 5)) for s in (first, second)]


def timelines(url: str) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """Each (event, contact)'s interactions, in the order HubSpot holds them."""
    state = httpx.get(f"{url}/_sandbox/state", timeout=10).json()
    events = {str(e["object_id"]): e["external_event_id"] for e in state["events"]}
    emails = {int(c["vid"]): c["email"] for c in state["contacts"]}
    return {(events[str(row["object_id"])], emails.get(int(row["vid"])) or str(row["vid"])): [
        (i["state"], i["occurred_at"], i["joined_at"], i["left_at"])
        for i in row["interactions"]] for row in state["participations"]}


def attendance_requests(url: str) -> int:
    """Attendance requests HubSpot applied (a 429 or a fault applies nothing)."""
    log = httpx.get(f"{url}/_sandbox/requests", timeout=10).json()
    return sum(1 for r in log if "attendance" in str(r.get("operation"))
               and r.get("status") == 200)


def test_a_killed_backfill_resumes_to_the_same_hubspot_without_sending_again(
        kafka_bootstrap: str, create_topic: Any, two_sandboxes: Any) -> None:
    (url_a, token, contacts), (url_b, _, contacts_b) = two_sandboxes
    assert contacts == contacts_b  # the same known contacts in both HubSpots
    env_a = hubspot_env(kafka_bootstrap, url_a, token) | {
        "CONNECTOR_SINK__WINDOW_LIMIT": str(LIMIT)}
    env_b = env_a | {"CONNECTOR_HUBSPOT__BASE_URL": url_b}  # the same topics, HubSpot B
    settings = settings_for(env_a)
    start = format_ms(int(time.time() * 1000) - 60_000)
    sample = generate(SampleSpec(seed=91, webinars=2, people_per_webinar=100,
                                 contact_ids=contacts))
    publish(settings, sample, create_topic)

    code, output = cli(env_a, "backfill", "--from", start, "--requests")
    assert code == 0, output
    planned = next(line for line in output.splitlines() if line.startswith("planned "))
    assert "at 10 / 10 s: about " in output
    assert not [t for t in _topics(settings) if ".backfill-" in t]  # counted, cleaned up

    code, output = cli(env_a, "backfill", "--from", start, "--execute", "--timeout", "300")
    assert code == 0, output
    assert planned in output  # the dry run counted what the run planned
    whole = attendance_requests(url_a)
    assert f"{whole:,} attendance request(s)" in planned  # ... and sent
    expected = timelines(url_a)
    assert len(expected) > 100 and any(len(t) > 1 for t in expected.values())
    assert hubspot_view(url_a, set(contacts))[0] == predicted([sample])

    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "replay", "backfill", "--from", start,
         "--execute", "--timeout", "300"], env={**os.environ, **env_b},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        seen: list[str] = []
        for line in iter(process.stdout.readline, ""):
            seen.append(line)
            if line.startswith("backfill "):
                break
        first_line = seen[-1] if seen else ""
        assert first_line.startswith("backfill "), "".join(seen)
        backfill_id = first_line.split("backfill ", 1)[1].split(":", 1)[0]
        sink_group = Names.for_id(settings, backfill_id).sink_group
        wait_for(lambda: attendance_requests(url_b) >= 3 and _committed(settings, sink_group),
                 120, "the backfill to send and commit part of its requests")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()
    before_kill = attendance_requests(url_b)
    assert 0 < before_kill < whole  # killed mid-sending
    assert Names.for_id(settings, backfill_id).journal in _topics(settings)  # left behind

    code, output = cli(env_b, "backfill", "--resume", backfill_id, "--execute",
                       "--timeout", "300")
    assert code == 0, output
    assert f"resumed backfill {backfill_id}" in output
    assert timelines(url_b) == expected  # every contact's interactions, in the same order
    # what HubSpot acknowledged and the sink committed was not sent again: at most what was
    # in the air or not yet committed at the kill (within one window of the budget)
    assert attendance_requests(url_b) <= whole + LIMIT
    assert attendance_requests(url_b) - before_kill < whole
    assert not [t for t in _topics(settings) if ".backfill-" in t]

    code, output = cli(env_b, "backfill", "--resume", backfill_id, "--execute")
    assert code == 1 and f"no backfill {backfill_id} to resume" in output


def _topics(settings: Any) -> list[str]:
    cluster = Cluster(settings.kafka.consumer_config())
    try:
        return list(cluster.topics())
    finally:
        cluster.close()


def _committed(settings: Any, group: str) -> bool:
    cluster = Cluster(settings.kafka.consumer_config())
    try:
        tps = [tp for topic in cluster.topics() if topic.endswith("-planned")
               for tp in cluster.resolve_all(topic)]
        return any(offset > 0 for offset in cluster.committed(group, tps).values())
    finally:
        cluster.close()



def test_a_backfill_killed_before_sending_runs_its_plan_again_under_a_new_id(
        kafka_bootstrap: str, create_topic: Any, two_sandboxes: Any) -> None:
    """The journal says only what was planned (killed while copying or normalizing): nothing
    reached HubSpot, so --resume deletes the leftovers and runs the same plan afresh."""
    url, token, contacts = two_sandboxes[0]
    env = hubspot_env(kafka_bootstrap, url, token) | {"CONNECTOR_SINK__WINDOW_LIMIT": str(LIMIT)}
    settings = settings_for(env)
    start = int(time.time() * 1000) - 60_000
    # (a sample whose every attendance closes within the range: a backfill leaves one still
    # open at the range's end, within the rejoin grace, to the live normalizer)
    sample = generate(SampleSpec(seed=61, webinars=1, people_per_webinar=60,
                                 contact_ids=contacts))
    publish(settings, sample, create_topic)
    cluster = Cluster(settings.kafka.consumer_config())
    try:
        plan = plan_backfill(settings, cluster, start, None, ("activity", "webinars"),
                             backfill_id="killed01")
    finally:
        cluster.close()
    ensure_topics(settings.kafka, [TopicSpec(plan.names.journal, 1,
                                             config={"cleanup.policy": "compact"}),
                                   TopicSpec(plan.names.activity, 1)])  # what it left behind
    write_entry(settings.kafka, plan.names.journal, PLAN, plan.to_journal())

    code, output = cli(env, "backfill", "--resume", "killed01", "--execute", "--timeout", "120")
    assert code == 0, output
    assert "backfill killed01 had not started sending: its plan runs again as backfill " in output
    assert hubspot_view(url, set(contacts))[0] == predicted([sample])
    assert not [t for t in _topics(settings) if ".backfill-" in t]
