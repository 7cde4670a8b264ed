"""`connector demo`: the whole pipeline on embedded defaults, with a summary a person can read.

Starts a local Kafka broker (the real one, from Maven Central, where Java is present; else
librdkafka's mock cluster, and it says which) and the HubSpot
sandbox, creates the contacts the platform already knows, publishes a synthetic webinar, runs
normalizer and sink, waits until HubSpot shows what the input predicts, and prints a summary.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from typing import Any

import click

from connector.cli.common import protect_secrets, reports_errors
from connector.cli.demo_report import print_summary
from connector.cli.produce_sample import platform_topics
from connector.cli.run import Worker, run_workers
from connector.config import Settings, load_settings
from connector.errors import ConnectorError
from connector.kafka import clients, ensure_topics
from connector.sample import SampleSpec, generate
from connector.sample.oracle import Expected, expected_outcome
from connector.sample.publish import publish_sample
from connector.sample.view import create_known_contacts, hubspot_view
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.server import serve_in_thread
from connector.serde.topic import TopicCodecs

log = logging.getLogger("connector.demo")


@contextlib.contextmanager
def local_kafka(broker: str) -> Iterator[str]:
    """A local cluster: the real broker where Java is present, else librdkafka's mock cluster."""
    if broker == "auto":
        broker = "kafka" if shutil.which("java") is not None else "mock"
        if broker == "mock":
            click.echo("Java not found: using librdkafka's built-in mock cluster instead of a "
                       "real broker (in memory; `make setup` installs Java for the real one)")
    if broker == "mock":
        from connector.broker.mock import mock_kafka

        click.echo("starting librdkafka's mock Kafka cluster (a test double, in memory; "
                   "topics get its default partition count) ...")
        logging.getLogger("connector.kafka.admin").setLevel(logging.ERROR)
        with mock_kafka() as bootstrap:
            yield bootstrap
        return
    if shutil.which("java") is None:
        raise ConnectorError("--broker kafka runs a real Kafka broker and needs Java 17+ "
                             "(`make setup` installs it; or use --broker mock)")
    from connector.broker import EmbeddedKafka

    click.echo("starting a local Apache Kafka broker (KRaft, from Maven Central) ...")
    with EmbeddedKafka() as kafka:
        yield kafka.bootstrap_servers


def demo_settings(bootstrap: str, url: str, token: str) -> Settings:
    return load_settings({
        "CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "CONNECTOR_HUBSPOT__BASE_URL": url,
        "CONNECTOR_HUBSPOT__ACCESS_TOKEN": token,
        "CONNECTOR_NORMALIZER__IDLE_PUNCTUATION_SECONDS": "2",
        "CONNECTOR_NORMALIZER__INSTANCE_ID": "demo",
        "CONNECTOR_SINK__LINGER_MS": "100",
    })


def _workers() -> dict[str, Worker]:
    from connector.runtime.assemble import run_normalizer
    from connector.runtime.sink import run_sink

    return {"normalizer": run_normalizer, "sink": run_sink}


@click.command("demo")
@click.option("--webinars", default=2, show_default=True, type=click.IntRange(1, 50))
@click.option("--people", default=150, show_default=True, type=click.IntRange(1, 5000),
              help="People per webinar.")
@click.option("--seed", default=7, show_default=True)
@click.option("--timeout", default=120.0, show_default=True,
              help="Seconds to wait for HubSpot to show the prediction.")
@click.option("--broker", type=click.Choice(["auto", "kafka", "mock"]), default="auto",
              show_default=True,
              help="kafka: a real local broker (needs Java); mock: librdkafka's mock cluster; "
                   "auto: kafka where Java is present, else mock.")
@reports_errors
def demo_command(webinars: int, people: int, seed: int, timeout: float, broker: str) -> None:
    """Run the whole pipeline locally (Kafka, sandbox, normalizer, sink) on a synthetic webinar
    and show HubSpot's result next to what the input predicts."""
    started = time.monotonic()
    logging.getLogger("connector").setLevel(logging.WARNING)  # the summary says it all
    sandbox_config = SandboxConfig.default(window_limit=190)
    token = sandbox_config.apps[0].token
    with local_kafka(broker) as bootstrap, serve_in_thread(create_app(sandbox_config)) as sandbox:
        click.echo(f"HubSpot sandbox at {sandbox.url} (190 requests / 10 s, like a paid portal)")
        settings = demo_settings(bootstrap, sandbox.url, token)
        protect_secrets(settings)
        contact_ids = create_known_contacts(sandbox.url, token, 10)
        sample = generate(SampleSpec(seed=seed, webinars=webinars, people_per_webinar=people,
                                     contact_ids=contact_ids))
        _publish(settings, sample)
        activities = [r for k, r in sample.publish_order() if k == "activity"]
        final = {w["webinarId"]: w for w in sample.webinars if w["status"] == "ENDED"}
        predicted = expected_outcome(activities, final)
        click.echo(f"published {len(activities)} activities for {webinars} webinar(s); "
                   f"running normalizer and sink ...")
        stop = threading.Event()
        runner = threading.Thread(target=run_workers, args=(settings, _workers(), stop),
                                  daemon=True)
        runner.start()
        shown = _wait(sandbox.url, set(contact_ids), predicted, timeout, runner)
        stop.set()
        runner.join(60)
        _, state = hubspot_view(sandbox.url, set(contact_ids))
        print_summary(settings, sample, predicted, shown, state, time.monotonic() - started)


def _publish(settings: Settings, sample: Any) -> None:
    ensure_topics(settings.kafka, platform_topics(settings, 3))
    codecs = TopicCodecs.from_settings(settings)
    producer = clients.producer(settings.kafka, {"linger.ms": 20})
    publish_sample(
        producer, sample, activity_topic=settings.topics.activity,
        webinar_topic=settings.topics.webinars,
        activity_encoder=codecs.codec(settings.topics.activity),
        webinar_encoder=codecs.codec(settings.topics.webinars))


def _wait(url: str, by_vid: set[int], predicted: dict[tuple[str, str], Expected],
          timeout: float, runner: threading.Thread) -> dict[tuple[str, str], Expected]:
    deadline = time.monotonic() + timeout
    shown: dict[tuple[str, str], Expected] = {}
    while time.monotonic() < deadline and runner.is_alive():
        shown, _ = hubspot_view(url, by_vid)
        if shown == predicted:
            break
        time.sleep(1.0)
    return shown
