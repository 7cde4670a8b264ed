"""Platform records to HubSpot's final state, through normalizer and sink, under HubSpot faults."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from connector.demo.run import demo_settings
from connector.dlq.envelope import H_CATEGORY, H_REASON, header_map
from connector.kafka.reader import read_all
from connector.runtime.assemble import run_normalizer
from connector.runtime.sink import run_sink
from connector.runtime.workers import run_workers
from connector.sample import SampleSpec, generate
from connector.sample.oracle import expected_outcome, person_key
from connector.sample.view import create_known_contacts, hubspot_view
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.faults import FaultConfig, Window
from connector.sandbox.server import serve_in_thread
from tests.pipeline_helpers import decode_commands, publish, wait_for

pytestmark = pytest.mark.integration

FAULTS: dict[str, Callable[[float], FaultConfig]] = {
    "none": lambda now: FaultConfig(),
    # From the sink's first request: a window timed from now can pass before a loaded machine's
    # pipeline sends anything.
    "outage": lambda now: FaultConfig(outage=Window(0, 5, after_first_request=True)),
    "429-storm": lambda now: FaultConfig(storm=Window(0, 5, after_first_request=True)),
    "5xx-slow-dropped": lambda now: FaultConfig(seed=3, error_rate=0.15, error_status=503,
                                                latency_seconds=0.02, drop_rate=0.03),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_hubspot_ends_as_the_contract_says(fault: str, kafka_bootstrap: str,
                                           create_topic: Any) -> None:
    config = SandboxConfig.default(window_limit=190)
    token = config.apps[0].token
    with serve_in_thread(create_app(config)) as sandbox:
        contact_ids = create_known_contacts(sandbox.url, token, 5)
        hubspot = sandbox.app.sandbox
        before = hubspot.stats()["requests"]
        settings, activities, predicted = _published(kafka_bootstrap, create_topic, sandbox.url,
                                                     token, contact_ids, fault, seed=17)
        stop = threading.Event()
        workers = threading.Thread(target=run_workers, daemon=True, args=(
            settings, {"normalizer": run_normalizer, "sink": run_sink}, stop))
        workers.start()
        try:  # the faults start with the sink's first request, so that it meets all of them
            _wait_for_first_request(hubspot, before)
            hubspot.set_faults(FAULTS[fault](time.time()))
            wait_for(lambda: hubspot_view(sandbox.url, set(contact_ids))[0] == predicted, 150,
                     f"HubSpot to show the contract's outcome under {fault}")
        finally:
            stop.set()
            workers.join(60)
    if fault != "none":
        assert sum(hubspot.stats()["faults"].values()) > 0, hubspot.stats()
    client = settings.kafka.consumer_config()
    assert read_all(client, settings.topics.commands_dlq, timeout=5) == []
    letters = read_all(client, settings.topics.dlq_for(settings.topics.activity))
    unusable = [a for a in activities if person_key(a["participant"]) is None]
    assert len(letters) == len(unusable) > 0
    assert {header_map(m.headers())[H_REASON] for m in letters} == {"no-contact-identifier"}


def _wait_for_first_request(hubspot: Any, before: int, timeout: float = 60.0) -> None:
    """Polls every few ms, not wait_for's 0.5 s: the normalizer hands the sink the whole sample
    within a transaction or two, and the sink can send all its requests within half a second."""
    deadline = time.monotonic() + timeout
    while hubspot.stats()["requests"] <= before:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for the first request")
        time.sleep(0.005)


def _published(bootstrap: str, create_topic: Any, url: str, token: str,
               contact_ids: tuple[int, ...], tag: str, seed: int) -> tuple[Any, list[Any], Any]:
    """Settings on fresh topics, a published sample, its activities and the oracle's outcome."""
    settings = demo_settings(bootstrap, url, token)
    settings = settings.model_copy(update={"topics": settings.topics.model_copy(update={
        name: f"{value}-{tag}-{int(time.time())}" for name, value in
        settings.topics.model_dump().items() if name != "dlq_suffix"})})
    sample = generate(SampleSpec(seed=seed, webinars=2, people_per_webinar=80,
                                 contact_ids=contact_ids))
    publish(settings, sample, create_topic)
    activities = [r for k, r in sample.publish_order() if k == "activity"]
    predicted = expected_outcome(
        activities, {w["webinarId"]: w for w in sample.webinars if w["status"] == "ENDED"})
    return settings, activities, predicted


def test_partly_failed_batches_dead_letter_exactly_the_failed_inputs(
        kafka_bootstrap: str, create_topic: Any) -> None:
    config = SandboxConfig.default(window_limit=190)
    token = config.apps[0].token
    with serve_in_thread(create_app(config)) as sandbox:
        contact_ids = create_known_contacts(sandbox.url, token, 5)
        hubspot = sandbox.app.sandbox
        hubspot.set_faults(FaultConfig(seed=5, batch_input_failure_rate=0.05))
        settings, _, predicted = _published(kafka_bootstrap, create_topic, sandbox.url, token,
                                            contact_ids, "partial", seed=23)
        client = settings.kafka.consumer_config()
        stop = threading.Event()
        workers = threading.Thread(target=run_workers, daemon=True, args=(
            settings, {"normalizer": run_normalizer, "sink": run_sink}, stop))
        workers.start()
        try:
            def settled() -> bool:
                failed = hubspot.stats()["batchInputFailures"]
                letters = read_all(client, settings.topics.commands_dlq, timeout=5)
                shown = hubspot_view(sandbox.url, set(contact_ids))[0]
                return failed > 0 and len(letters) == failed and all(
                    shown.get(k) == v or k in _dead_lettered(letters)
                    for k, v in predicted.items())

            wait_for(settled, 150, "every person applied or dead-lettered")
        finally:
            stop.set()
            workers.join(60)
        letters = read_all(client, settings.topics.commands_dlq, timeout=5)
        assert len(letters) == hubspot.stats()["batchInputFailures"]
        for letter in letters:
            headers = header_map(letter.headers())
            assert headers[H_REASON] and headers[H_CATEGORY]


def _dead_lettered(letters: list[Any]) -> set[tuple[str, str]]:
    """(webinar, person) of each dead-lettered attendance command."""
    people = set()
    for _, command, _ in decode_commands(letters):
        body = command.body
        vid = getattr(body, "vid", None)
        key = f"vid:{vid}" if vid is not None else f"email:{getattr(body, 'email', None)}"
        people.add((command.externalEventId, key))
    return people
