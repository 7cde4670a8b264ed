"""The whole pipeline on embedded defaults: a local Kafka cluster and the HubSpot sandbox, the
contacts the platform already knows, a synthetic webinar published, normalizer and sink run
until HubSpot shows what the input predicts (or the timeout), and what it shows read back."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from connector.config import Settings, load_settings
from connector.demo.cluster import Say, local_kafka
from connector.demo.publish import publish_to_platform
from connector.dlq.account import account_lookup
from connector.dlq.record import DeadLetterRecord
from connector.kafka.reader import read_all
from connector.runtime.workers import pipeline_workers, run_workers
from connector.sample import Sample, SampleSpec, generate
from connector.sample.oracle import expected_outcome
from connector.sample.view import View, create_known_contacts, hubspot_view
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.server import serve_in_thread

#: Requests per rolling 10 s the sandbox allows (a paid portal's limit).
WINDOW_LIMIT = 190
KNOWN_CONTACTS = 10
TOPIC_PARTITIONS = 3


@dataclass(frozen=True)
class DemoSpec:
    """What to run: the synthetic input, how long to wait for HubSpot, which broker."""

    webinars: int = 2
    people: int = 150
    seed: int = 7
    timeout: float = 120.0
    broker: str = "auto"


@dataclass(frozen=True)
class DemoResult:
    """What the demo found: the prediction, what HubSpot shows, the dead letters by topic."""

    settings: Settings
    sample: Sample
    predicted: View
    shown: View
    #: The sandbox's state document (its marketing events among it).
    state: dict[str, Any]
    #: Seconds from the start to the moment HubSpot was read back.
    elapsed: float
    #: Each dead-letter topic with its records counted by reason (and HTTP status).
    dead_letters: list[tuple[str, Counter[str]]]


def demo_env(bootstrap: str, url: str) -> dict[str, str]:
    """The settings (as ``CONNECTOR_*`` variables) every demo shares: a local cluster and a
    sandbox, tuned to react quickly."""
    return {
        "CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "CONNECTOR_HUBSPOT__BASE_URL": url,
        "CONNECTOR_NORMALIZER__IDLE_PUNCTUATION_SECONDS": "2",
        "CONNECTOR_NORMALIZER__INSTANCE_ID": "demo",
        "CONNECTOR_SINK__LINGER_MS": "100",
    }


def demo_settings(bootstrap: str, url: str, token: str) -> Settings:
    """The connector's settings for a local cluster and a sandbox (private-app mode, one token),
    tuned to react quickly."""
    return load_settings({**demo_env(bootstrap, url), "CONNECTOR_HUBSPOT__ACCESS_TOKEN": token})


@contextlib.contextmanager
def run_demo(spec: DemoSpec, say: Say, *, started: float | None = None,
             on_settings: Callable[[Settings], None] | None = None) -> Iterator[DemoResult]:
    """Run the demo; the result is yielded while the cluster and the sandbox still run.

    ``say``: told what the demo does as it goes. ``started``: the monotonic start the result's
    ``elapsed`` counts from (default: now). ``on_settings``: called with the settings before
    anything uses them (the command registers their secrets with the log filter).
    """
    started = time.monotonic() if started is None else started
    sandbox_config = SandboxConfig.default(window_limit=WINDOW_LIMIT)
    token = sandbox_config.apps[0].token
    with local_kafka(spec.broker, say) as bootstrap, \
            serve_in_thread(create_app(sandbox_config)) as sandbox:
        say(f"HubSpot sandbox at {sandbox.url} ({WINDOW_LIMIT} requests / 10 s, like a paid "
            "portal)")
        settings = demo_settings(bootstrap, sandbox.url, token)
        if on_settings is not None:
            on_settings(settings)
        contact_ids = create_known_contacts(sandbox.url, token, KNOWN_CONTACTS)
        sample = generate(SampleSpec(seed=spec.seed, webinars=spec.webinars,
                                     people_per_webinar=spec.people, contact_ids=contact_ids))
        publish_to_platform(settings, sample, partitions=TOPIC_PARTITIONS)
        activities = [r for k, r in sample.publish_order() if k == "activity"]
        final = {w["webinarId"]: w for w in sample.webinars if w["status"] == "ENDED"}
        predicted = expected_outcome(activities, final)
        say(f"published {len(activities)} activities for {spec.webinars} webinar(s); "
            f"running normalizer and sink ...")
        shown = _run_pipeline(settings, sandbox.url, set(contact_ids), predicted, spec.timeout)
        _, state = hubspot_view(sandbox.url, set(contact_ids))
        elapsed = time.monotonic() - started
        yield DemoResult(settings, sample, predicted, shown, state, elapsed,
                         dead_letter_reasons(settings))


def _run_pipeline(settings: Settings, url: str, by_vid: set[int], predicted: View,
                  timeout: float) -> View:
    """Normalizer and sink in threads until HubSpot shows ``predicted`` (or the timeout, or a
    worker fails); returns what it shows last."""
    shown: list[View] = [{}]

    def matches() -> bool:
        shown[0] = hubspot_view(url, by_vid)[0]
        return shown[0] == predicted

    run_pipeline_until(settings, matches, timeout)
    return shown[0]


def run_pipeline_until(settings: Settings, done: Callable[[], bool], timeout: float) -> bool:
    """Normalizer and sink in threads, ``done`` asked about once a second, until it answers
    True (then True), or ``timeout`` seconds have passed, or a worker has failed (then False);
    the workers are stopped either way."""
    stop = threading.Event()
    runner = threading.Thread(target=run_workers, args=(settings, pipeline_workers(), stop),
                              daemon=True)
    runner.start()
    finished = wait_until(done, timeout, runner)
    stop.set()
    runner.join(60)
    return finished


def wait_until(done: Callable[[], bool], timeout: float, runner: threading.Thread) -> bool:
    """Whether ``done`` answered True (asked once a second) before ``timeout`` seconds passed
    and while ``runner`` (the workers) was alive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and runner.is_alive():
        if done():
            return True
        time.sleep(1.0)
    return False


def dead_letter_topics(settings: Settings) -> list[str]:
    """The dead-letter topics: the platform topics' and the commands'."""
    return [settings.topics.dlq_for(settings.topics.activity),
            settings.topics.dlq_for(settings.topics.webinars), settings.topics.commands_dlq]


def dead_letter_reasons(settings: Settings) -> list[tuple[str, Counter[str]]]:
    """Each dead-letter topic (the platform topics' and the commands') with its records counted
    by reason, ``(HTTP <status>)`` added where HubSpot answered one."""
    found = []
    for topic, counted in dead_letters_by_account(settings):
        reasons: Counter[str] = Counter()
        for (_, reason), n in counted.items():
            reasons[reason] += n
        found.append((topic, reasons))
    return found


def dead_letters_by_account(settings: Settings) -> list[tuple[str, Counter[tuple[str, str]]]]:
    """Each dead-letter topic with its records counted by (platform account, reason): the
    account as `connector dlq --account` finds it (the header the stage wrote, else the original
    value decoded; ``?`` when neither names one), the reason with ``(HTTP <status>)`` added where
    HubSpot answered one."""
    found = []
    with account_lookup(settings) as account_of:
        for topic in dead_letter_topics(settings):
            counted: Counter[tuple[str, str]] = Counter()
            for message in read_all(settings.kafka, topic, timeout=10):
                record = DeadLetterRecord.from_message(message)
                status = record.http_status
                reason = (record.reason or "?") + (f" (HTTP {status})" if status else "")
                counted[(account_of(record) or "?", reason)] += 1
            found.append((topic, counted))
    return found
