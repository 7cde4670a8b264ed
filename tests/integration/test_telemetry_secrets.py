"""Nothing the connector prints or logs holds the HubSpot token, the client secret or an email.

``connector --log-level DEBUG run all`` runs as a child process on the session's broker against
the sandbox, with every record traced and spans and metrics printed to stdout by the console
exporters. The sandbox throws 429s, 503s, dropped connections and per-input rejections at it (so
error, retry and dead-letter paths log too) until the sink has committed every command; then
SIGTERM. Everything the child wrote to stdout and stderr (logs, spans, metrics, librdkafka) is
searched.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from connector.sample import SampleSpec, generate
from connector.sample.view import create_known_contacts
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.faults import FaultConfig, Window
from connector.sandbox.server import serve_in_thread
from connector.telemetry import redact
from tests.pipeline_helpers import (
    pipeline_env,
    publish,
    reference_commands,
    settings_for,
    sink_caught_up,
    wait_for,
)

pytestmark = pytest.mark.integration

CLIENT_SECRET = "hubspot-client-secret-5f0c2a9e-7d41-4b8e-a3c6-0e9d8b7a6f51"
#: An email-shaped text left unmasked: a character of the local part right before the "@"
#: (masking keeps only the first one and writes j***@example.com).
RAW_EMAIL = re.compile(r"[A-Za-z0-9._%+-](?:@|%40)(?:[A-Za-z0-9-]+\.)*example\.com",
                       re.IGNORECASE)


def _child_env(env: dict[str, str]) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    return {**inherited, **env, "PYTHONUNBUFFERED": "1"}


def test_the_search_sees_raw_emails_and_not_masked_ones() -> None:
    assert RAW_EMAIL.search("Jane.Doe@example.com")
    assert RAW_EMAIL.search("known.1%40customer.example.com")
    masked = redact("Jane.Doe@example.com path=/x/known.1%40customer.example.com")
    assert masked == "J***@example.com path=/x/k***%40customer.example.com"
    assert not RAW_EMAIL.search(masked)


def _creator(admin: AdminClient) -> Any:
    def create(name: str, partitions: int, config: dict[str, str]) -> None:
        admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name].result(30)

    return create


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_run_all_never_writes_the_token_the_secret_or_an_email(
        log_format: str, kafka_bootstrap: str, kafka_admin: AdminClient,
        tmp_path: Path) -> None:
    config = SandboxConfig.default(window_limit=190)
    token = config.apps[0].token
    with serve_in_thread(create_app(config)) as sandbox:
        hubspot = sandbox.app.sandbox
        contact_ids = create_known_contacts(sandbox.url, token, 5)
        env = pipeline_env(
            kafka_bootstrap,
            CONNECTOR_HUBSPOT__BASE_URL=sandbox.url,
            CONNECTOR_HUBSPOT__ACCESS_TOKEN=token,
            CONNECTOR_HUBSPOT__CLIENT_SECRET=CLIENT_SECRET,
            CONNECTOR_NORMALIZER__IDLE_PUNCTUATION_SECONDS="2",
            CONNECTOR_SINK__LINGER_MS="100",
            CONNECTOR_TELEMETRY__TRACES="console",
            CONNECTOR_TELEMETRY__METRICS="console",
            CONNECTOR_TELEMETRY__METRIC_EXPORT_INTERVAL_SECONDS="1",
            CONNECTOR_TELEMETRY__TRACE_SAMPLE_RATIO="1",
            CONNECTOR_TELEMETRY__PROPAGATE_TO_HUBSPOT="true",
            CONNECTOR_TELEMETRY__LOG_JSON="true" if log_format == "json" else "false",
        )
        settings = settings_for(env)
        sample = generate(SampleSpec(seed=5, webinars=1, people_per_webinar=60,
                                     contact_ids=contact_ids))
        create = _creator(kafka_admin)
        publish(settings, sample, create)
        create(settings.topics.commands_dlq, 3, {})  # nothing creates the sink's (yet)
        activities = [r for k, r in sample.publish_order() if k == "activity"]
        expected = sum(reference_commands(settings).values())
        hubspot.set_faults(FaultConfig(seed=11, storm=Window(0, 3, after_first_request=True),
                                       error_rate=0.1, error_status=503, drop_rate=0.03,
                                       batch_input_failure_rate=0.05))

        stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            child = subprocess.Popen(
                [sys.executable, "-m", "connector", "--log-level", "DEBUG", "run", "all"],
                env=_child_env(env), stdout=out, stderr=err)
            try:
                wait_for(lambda: child.poll() is None and sink_caught_up(settings, expected), 150,
                         "the sink to commit every command")
            finally:
                child.send_signal(signal.SIGTERM)
                code = child.wait(90)
    printed = stdout.read_text("utf-8", "replace") + stderr.read_text("utf-8", "replace")
    assert code == 0, printed[-3000:]

    # What was searched is the real thing: logs at DEBUG, spans and metrics.
    assert "sink.started" in printed and "partitions_assigned" in printed
    assert '"name": "consume ' in printed and "connector.records.in" in printed
    assert '"url.full": "http://127.0.0.1:' in printed
    assert "hubspot.error" in printed and "sink.dead_letter" in printed
    assert sum(hubspot.stats()["faults"].values()) > 0
    if log_format == "json":
        assert '"event": "sink.started"' in printed
    # librdkafka's own lines come through the connector's logger, in its format.
    assert not re.search(r"^%\d\|", printed, re.MULTILINE), printed[-3000:]

    assert token not in printed
    assert CLIENT_SECRET not in printed
    emails = {a["participant"]["email"] for a in activities if a["participant"]["email"]}
    emails |= {f"known.{n}@customer.example.com" for n in range(5)}
    for email in emails:
        for form in (email, email.strip(), email.strip().lower(), email.replace("@", "%40")):
            assert form not in printed, "an email in clear"
    leaks = sorted({m.group(0) for m in RAW_EMAIL.finditer(printed)})
    assert not leaks, leaks[:5]
