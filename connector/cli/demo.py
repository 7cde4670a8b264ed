"""`connector demo`: the whole pipeline on embedded defaults, with a summary a person can read.

Starts a local Kafka broker (the real one, from Maven Central, where Java is present; else
librdkafka's mock cluster, and it says which) and the HubSpot
sandbox, creates the contacts the platform already knows, publishes a synthetic webinar, runs
normalizer and sink, waits until HubSpot shows what the input predicts, and prints a summary.

``--accounts N`` (2 or more) runs app mode instead: N HubSpot accounts in the sandbox, the
connector's public app, `connector serve` with the install flow, N platform accounts installing
the app through it, a webinar per account, and a summary per account
(connector.demo.accounts).
"""

from __future__ import annotations

import logging
import sys
import time

import click

from connector.cli.common import protect_secrets, reports_errors
from connector.cli.demo_report import print_accounts_summary, print_summary
from connector.demo.accounts import AccountsSpec, run_accounts_demo
from connector.demo.run import DemoSpec, run_demo

#: People per webinar in app mode unless --people says otherwise: small, so that the installs,
#: N samples and the per-account checks finish well under a minute.
ACCOUNTS_PEOPLE = 40


@click.command("demo")
@click.option("--webinars", type=click.IntRange(1, 50),
              help="Webinars (per account with --accounts).  [default: 2; 1 with --accounts]")
@click.option("--people", type=click.IntRange(1, 5000),
              help=f"People per webinar.  [default: 150; {ACCOUNTS_PEOPLE} with --accounts]")
@click.option("--seed", default=7, show_default=True,
              help="Seed of the synthetic input (account i of --accounts gets seed + i).")
@click.option("--accounts", type=click.IntRange(2, 20),
              help="App mode: this many platform accounts install the connector's HubSpot app "
                   "(the OAuth install flow through `connector serve`), each into its own "
                   "HubSpot account of the sandbox, and each one's webinars must show there "
                   "and only there.")
@click.option("--timeout", default=120.0, show_default=True,
              help="Seconds to wait for HubSpot to show the prediction.")
@click.option("--broker", type=click.Choice(["auto", "kafka", "mock"]), default="auto",
              show_default=True,
              help="kafka: a real local broker (needs Java); mock: librdkafka's mock cluster; "
                   "auto: kafka where Java is present, else mock.")
@reports_errors
def demo_command(webinars: int | None, people: int | None, seed: int, accounts: int | None,
                 timeout: float, broker: str) -> None:
    """Run the whole pipeline locally (Kafka, sandbox, normalizer, sink) on a synthetic webinar
    and show HubSpot's result next to what the input predicts."""
    started = time.monotonic()
    logging.getLogger("connector").setLevel(logging.WARNING)  # the summary says it all
    if accounts is not None:
        app_spec = AccountsSpec(accounts=accounts, webinars=webinars or 1,
                                people=people or ACCOUNTS_PEOPLE, seed=seed, timeout=timeout,
                                broker=broker)
        with run_accounts_demo(app_spec, click.echo, started=started,
                               on_settings=protect_secrets) as app_result:
            print_accounts_summary(app_result)
        if not app_result.matched:
            sys.exit(1)  # HubSpot differs from the prediction: a failure a script can see
        return
    spec = DemoSpec(webinars=webinars or 2, people=people or 150, seed=seed, timeout=timeout,
                    broker=broker)
    with run_demo(spec, click.echo, started=started, on_settings=protect_secrets) as result:
        print_summary(result)
