"""`connector demo`: the whole pipeline on embedded defaults, with a summary a person can read.

Starts a local Kafka broker (the real one, from Maven Central, where Java is present; else
librdkafka's mock cluster, and it says which) and the HubSpot
sandbox, creates the contacts the platform already knows, publishes a synthetic webinar, runs
normalizer and sink, waits until HubSpot shows what the input predicts, and prints a summary.
"""

from __future__ import annotations

import logging
import time

import click

from connector.cli.common import protect_secrets, reports_errors
from connector.cli.demo_report import print_summary
from connector.demo.run import DemoSpec, run_demo


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
    spec = DemoSpec(webinars=webinars, people=people, seed=seed, timeout=timeout, broker=broker)
    with run_demo(spec, click.echo, started=started, on_settings=protect_secrets) as result:
        print_summary(result)
