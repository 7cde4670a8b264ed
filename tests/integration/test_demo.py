"""`connector demo`, the README's main-job command, as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli.demo import demo_command
from connector.cli.demo_report import print_accounts_summary
from connector.demo.accounts import AccountsSpec, run_accounts_demo
from connector.sandbox.config import FIRST_EXTRA_HUB_ID

pytestmark = pytest.mark.integration

#: A line librdkafka writes itself when a client has no logger: ``%4|1700000000.123|CONFWARN|..``.
RAW_LIBRDKAFKA = re.compile(r"^%\d\|", re.MULTILINE)


def test_demo_shows_hubspot_matching_the_prediction_and_leaves_nothing_running() -> None:
    done = subprocess.run([sys.executable, "-m", "connector", "demo", "--people", "60"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "OK: HubSpot shows what the input predicts" in out
    assert "people as predicted:" in out and "dead letters:" in out
    assert "no-contact-identifier" in out  # the guests, with their reason
    assert "marketing event web-7-0" in out
    assert "starting a local Apache Kafka broker" in out  # Java is here: the real one
    assert not RAW_LIBRDKAFKA.search(done.stderr), done.stderr[-2000:]  # all in our log format
    assert _orphaned_brokers() == [], "the demo left a broker behind"


def test_demo_without_java_falls_back_to_the_mock_cluster_and_says_so(tmp_path: Path) -> None:
    # An empty PATH: no java to be found (the interpreter is called by its full path).
    done = subprocess.run([sys.executable, "-m", "connector", "demo", "--people", "40"],
                          capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PATH": str(tmp_path)})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "Java not found: using librdkafka's built-in mock cluster" in out
    assert "starting a local Apache Kafka broker" not in out
    assert "OK: HubSpot shows what the input predicts" in out
    assert "Disconnected" not in done.stderr  # no client outlived the cluster
    assert not RAW_LIBRDKAFKA.search(done.stderr), done.stderr[-2000:]


def test_demo_refuses_a_real_broker_without_java(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "connector", "demo", "--broker", "kafka"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": str(tmp_path)})
    assert done.returncode == 1
    assert "needs Java 17+" in done.stderr and "--broker mock" in done.stderr


def test_demo_with_three_accounts_sends_each_accounts_webinars_to_its_own_hubspot(
        capsys: pytest.CaptureFixture[str]) -> None:
    said: list[str] = []
    spec = AccountsSpec(accounts=3, webinars=1, people=40, seed=7, timeout=90, broker="kafka")
    with run_accounts_demo(spec, said.append) as result:
        print_accounts_summary(result)
    out = capsys.readouterr().out
    accounts = [o.account for o in result.outcomes]
    hubs = [o.hub_id for o in result.outcomes]
    assert accounts == ["acct-1", "acct-2", "acct-3"]
    assert hubs == [FIRST_EXTRA_HUB_ID, FIRST_EXTRA_HUB_ID + 1, FIRST_EXTRA_HUB_ID + 2]
    # each account was installed through the real flow, into its own HubSpot account
    for account, hub in zip(accounts, hubs, strict=True):
        assert any(line.startswith(f"{account} installed the app into HubSpot account {hub} ")
                   for line in said), said

    for outcome in result.outcomes:
        # the oracle's outcome for this account's input, and exactly it
        assert outcome.predicted, f"{outcome.account}: nothing predicted"
        assert outcome.shown == outcome.predicted, outcome.account
        # this HubSpot account holds this platform account's webinar only
        events = [(e["external_account_id"], e["external_event_id"])
                  for e in outcome.state["events"]]
        assert events == [(outcome.account, w) for w in outcome.webinar_ids], outcome.account
        assert outcome.foreign_events == [] and outcome.matched
    webinars = [w for o in result.outcomes for w in o.webinar_ids]
    assert len(set(webinars)) == 3  # distinct seeds: distinct webinars
    assert result.default_hub_events == []  # nothing went to the account nobody installed into
    assert result.matched

    # the summary names each account with its hub, matched
    for outcome in result.outcomes:
        [line] = [x for x in out.splitlines() if x.startswith(outcome.account + " ")]
        assert str(outcome.hub_id) in line and " yes " in line, line
        assert f"{len(outcome.shown)}{len(outcome.predicted):>11}" in line, line
    assert "OK: each of 3 HubSpot accounts shows its own platform account's webinars" in out
    assert _orphaned_brokers() == [], "the demo left a broker behind"


def test_demo_accounts_needs_two_at_least() -> None:
    done = CliRunner().invoke(demo_command, ["--accounts", "1"])
    assert done.exit_code == 2
    assert "--accounts" in done.output


def _orphaned_brokers() -> list[int]:
    """Kafka JVMs whose parent is gone (reparented to init)."""
    orphans = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"kafka.Kafka" in cmdline and ppid == 1:
            orphans.append(int(proc.name))
    return orphans
