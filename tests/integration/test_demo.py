"""`connector demo`, the README's main-job command, as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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
