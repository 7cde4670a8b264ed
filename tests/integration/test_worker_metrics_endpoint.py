"""`connector run` serves its own /metrics and /healthz when a metrics port is configured."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from typing import Any

import httpx
import pytest

from connector.sample import SampleSpec, generate
from tests.pipeline_helpers import pipeline_env, publish, settings_for, wait_for

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_worker_process_exposes_its_metrics(kafka_bootstrap: str, kafka_admin: Any) -> None:
    from confluent_kafka.admin import NewTopic

    port = _free_port()
    env = pipeline_env(kafka_bootstrap, CONNECTOR_TELEMETRY__METRICS_PORT=str(port),
                       CONNECTOR_TELEMETRY__METRICS_HOST="127.0.0.1")
    settings = settings_for(env)

    def create(name: str, partitions: int, config: dict[str, str]) -> None:
        kafka_admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name].result(30)

    sample = generate(SampleSpec(seed=4, people_per_webinar=30))
    publish(settings, sample, create)
    activities = sum(1 for kind, _ in sample.publish_order() if kind == "activity")
    process = subprocess.Popen([sys.executable, "-m", "connector", "run", "normalizer"],
                               env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    metrics = ""
    try:
        def counted() -> bool:
            nonlocal metrics
            try:
                metrics = httpx.get(f"{url}/metrics", timeout=5).text
            except httpx.TransportError:
                return False
            return f'topic="{settings.topics.activity}"}} {activities}' in metrics.replace(
                ".0", "")

        wait_for(counted, 60, "the activity count on /metrics")
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    assert "connector_records_in" in metrics
