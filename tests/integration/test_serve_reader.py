"""connector serve on the real broker: webinars published by connector.sample are read into the
table by serve's own reader and answered, signed, from it; `connector serve` as an operator runs
it (a process, /readyz, SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from starlette.testclient import TestClient

from connector.config import Settings
from connector.sample import SampleSpec, generate
from connector.sandbox.signature import sign_v3
from connector.serde.catalog import WEBINAR_SCHEMA
from connector.serde.codec import Framing
from connector.serde.topic import TopicFormat, build_codec
from connector.serve import build_serve, event_details
from tests.pipeline_helpers import CATALOG, pipeline_env, publish, settings_for

pytestmark = pytest.mark.integration

SECRET = "serve-it-secret"
APP_ID = 1001


def creator(admin: AdminClient) -> Callable[[str, int, dict[str, str]], None]:
    def create(name: str, partitions: int, config: dict[str, str]) -> None:
        admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name].result(30)

    return create


def serve_settings(bootstrap: str) -> Settings:
    return settings_for(pipeline_env(bootstrap), CONNECTOR_HUBSPOT__CLIENT_SECRET=SECRET,
                        CONNECTOR_HUBSPOT__APP_ID=str(APP_ID),
                        CONNECTOR_SERVE__KAFKA_CHECK_SECONDS="1",
                        CONNECTOR_TELEMETRY__METRICS="none")


def signed_get(client: Any, base: str, webinar_id: str, account: str) -> Any:
    path = f"/events/{webinar_id}?appId={APP_ID}&externalAccountId={account}"
    timestamp = str(int(time.time() * 1000))  # serve's clock is the real one here
    return client.get(path, headers={
        "X-HubSpot-Signature-v3": sign_v3(SECRET, "GET", base + path, "", timestamp),
        "X-HubSpot-Request-Timestamp": timestamp})


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def latest(webinars: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for w in webinars:
        if w["webinarId"] not in out or w["updatedAt"] >= out[w["webinarId"]]["updatedAt"]:
            out[w["webinarId"]] = w
    return out


def publish_webinar(settings: Settings, webinar: dict[str, Any]) -> None:
    codec = build_codec(TopicFormat(Framing.RAW, WEBINAR_SCHEMA), "w", CATALOG)
    producer = Producer(settings.kafka.producer_config())
    producer.produce(settings.topics.webinars, key=webinar["webinarId"].encode(),
                     value=codec.encode(webinar))
    assert producer.flush(30) == 0


def test_serve_answers_from_the_webinars_topic(kafka_bootstrap: str,
                                               kafka_admin: AdminClient) -> None:
    settings = serve_settings(kafka_bootstrap)
    sample = generate(SampleSpec(webinars=3, people_per_webinar=5, seed=11))
    publish(settings, sample, creator(kafka_admin))
    final = latest(sample.webinars)
    stop = threading.Event()
    served = build_serve(settings, stop)
    client = TestClient(served.app, base_url="http://serve.test")
    assert client.get("/readyz").status_code == 503  # nothing read yet
    served.feeder.start()
    try:
        wait_until(lambda: client.get("/readyz").status_code == 200, 60, "serve to be ready")
        assert client.get("/readyz").json()["checks"] == {
            "webinar_table": True, "kafka": True, "reader": True}
        assert len(served.table) == 3
        for webinar_id, webinar in final.items():
            response = signed_get(client, "http://serve.test", webinar_id, webinar["accountId"])
            assert response.status_code == 200, response.text
            assert response.json() == event_details(webinar)
            assert response.json()["eventName"] == webinar["title"]
        assert signed_get(client, "http://serve.test", "web-nope", "acct-1").status_code == 404

        # a newer description of one webinar reaches the answer
        webinar_id, webinar = next(iter(final.items()))
        renamed = {**webinar, "title": "Renamed", "updatedAt": webinar["updatedAt"] + 1}
        publish_webinar(settings, renamed)
        wait_until(lambda: signed_get(client, "http://serve.test", webinar_id,
                                      webinar["accountId"]).json()["eventName"] == "Renamed",
                   30, "the renamed webinar")
    finally:
        stop.set()
        served.feeder.join(30)
    assert not served.feeder.checks()["reader"]


def test_serve_is_not_ready_while_the_topic_is_missing(kafka_bootstrap: str) -> None:
    settings = serve_settings(kafka_bootstrap)
    stop = threading.Event()
    served = build_serve(settings, stop)
    served.feeder.start()
    try:
        client = TestClient(served.app)
        wait_until(lambda: served.feeder.last_error is not None, 60, "the reader to fail")
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["webinar_table"] is False
    finally:
        stop.set()
        served.feeder.join(30)


def test_connector_serve_process_stops_cleanly_on_sigterm(kafka_bootstrap: str,
                                                          kafka_admin: AdminClient) -> None:
    settings = serve_settings(kafka_bootstrap)
    sample = generate(SampleSpec(webinars=1, people_per_webinar=3, seed=5))
    publish(settings, sample, creator(kafka_admin))
    webinar = latest(sample.webinars)[sample.webinars[0]["webinarId"]]
    env = {**os.environ,
           "CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
           "CONNECTOR_TOPICS__WEBINARS": settings.topics.webinars,
           "CONNECTOR_HUBSPOT__CLIENT_SECRET": SECRET,
           "CONNECTOR_HUBSPOT__APP_ID": str(APP_ID),
           "CONNECTOR_TELEMETRY__METRICS": "prometheus"}
    code = ("import sys; from connector.cli.serve import serve_command; "
            "serve_command(['--port', '0'], prog_name='connector serve')")
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("connector serve listening on http://"), first
        url = first.split()[-1]
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/healthz").status_code == 200
            wait_until(lambda: http.get("/readyz").status_code == 200, 60, "ready")
            response = signed_get(http, url, webinar["webinarId"], webinar["accountId"])
            assert response.status_code == 200, response.text
            assert response.json()["eventName"] == webinar["title"]
            assert http.get("/metrics").status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
        if process.stderr is not None:
            process.stderr.close()
