"""One attendee's trace, sent over OTLP/HTTP to a real Jaeger and read back from Jaeger's API.

``connector run all`` runs as a child process on the session's broker against the sandbox, with
``CONNECTOR_TELEMETRY__TRACES=otlp`` pointed at a Jaeger v2 (``scripts/jaeger``: OTLP receiver,
memory storage, query API, all on loopback ports picked here) and root sampling off. One
platform record, the attendee's registration, carries a sampled ``traceparent`` with a trace id
made up for the run. After the sink has committed every command the child gets SIGTERM (its
exit flushes the span processor), and the test asks Jaeger for that trace: it must hold the
whole chain, platform record -> command -> HubSpot request, under the one trace id, across both
Kafka hops.

Runs when ``.cache/jaeger`` exists (``scripts/jaeger --build``, or ``JAEGER_BIN`` names a jaeger
v2 binary), or with ``CONNECTOR_TEST_JAEGER=1``, which builds it first (several minutes, needs
Go). Needs the ``otlp`` extra.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from connector.config import Settings
from connector.sample import Sample, SampleSpec, generate
from connector.sample.view import create_known_contacts
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.server import serve_in_thread
from connector.serde.catalog import ACTIVITY_SCHEMA, WEBINAR_SCHEMA
from connector.serde.codec import Framing
from connector.serde.topic import TopicFormat, build_codec
from tests.pipeline_helpers import (
    CATALOG,
    email_registration,
    pipeline_env,
    settings_for,
    sink_caught_up,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "jaeger"
BINARY = Path(os.environ.get("JAEGER_BIN") or ROOT / ".cache" / "jaeger")
BUILD_WANTED = os.environ.get("CONNECTOR_TEST_JAEGER") == "1"
HAS_OTLP = importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http") is not None
PARENT_SPAN = "00f067aa0ba902b7"  # the platform's span, never sent to Jaeger

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (BINARY.exists() or BUILD_WANTED),
        reason=f"no Jaeger binary at {BINARY}: build it with `scripts/jaeger --build` (Go, "
               f"several minutes) or set CONNECTOR_TEST_JAEGER=1 to build it here"),
    pytest.mark.skipif(not HAS_OTLP, reason="needs the otlp extra: "
                       "pip install -e '.[otlp]' (opentelemetry-exporter-otlp-proto-http)"),
    # The run itself takes well under a minute; building Jaeger first takes several.
    pytest.mark.timeout(300 if BINARY.exists() else 1800),
]


@dataclass(frozen=True)
class Jaeger:
    """A running Jaeger: its query API and its OTLP/HTTP receiver."""

    api: str
    otlp: str

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.api}{path}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    if not BINARY.exists():
        subprocess.run([str(SCRIPT), "--build"], check=True, timeout=1700)
    ui, otlp_http, otlp_grpc, query_grpc = _free_ports(4)
    env = {**os.environ, "JAEGER_UI_PORT": str(ui), "JAEGER_OTLP_HTTP_PORT": str(otlp_http),
           "JAEGER_OTLP_GRPC_PORT": str(otlp_grpc), "JAEGER_QUERY_GRPC_PORT": str(query_grpc)}
    log = tmp_path_factory.mktemp("jaeger") / "jaeger.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(SCRIPT)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        instance = Jaeger(f"http://127.0.0.1:{ui}", f"http://127.0.0.1:{otlp_http}")
        deadline = time.monotonic() + 60
        while not _answers(f"{instance.api}/api/services"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Jaeger did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield instance
    finally:
        process.terminate()
        process.wait(30)


@dataclass
class TracedRun:
    """What the one run of the pipeline left, for the tests to read."""

    settings: Settings
    service: str
    trace_id: str
    #: Jaeger's JSON of the trace (``/api/traces/<id>`` -> data[0])
    trace: dict[str, Any]
    output: str


def _publish(settings: Settings, sample: Sample, admin: AdminClient, activity_id: str,
             traceparent: bytes) -> None:
    """The platform's records (raw Avro, key webinarId); the first record with ``activity_id``
    carries ``traceparent``."""
    for name, config in ((settings.topics.activity, {}),
                         (settings.topics.webinars, {"cleanup.policy": "compact"}),
                         (settings.topics.commands_dlq, {})):
        admin.create_topics([NewTopic(name, 3, 1, config=config)])[name].result(30)
    activity = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a", CATALOG)
    webinar = build_codec(TopicFormat(Framing.RAW, WEBINAR_SCHEMA), "w", CATALOG)
    producer = Producer({**settings.kafka.producer_config(), "enable.idempotence": True})
    pending: bytes | None = traceparent
    for kind, record in sample.publish_order():
        key = record["webinarId"].encode()
        if kind == "webinar":
            producer.produce(settings.topics.webinars, webinar.encode(record), key)
            continue
        headers = None
        if pending is not None and record["activityId"] == activity_id:
            headers, pending = [("traceparent", pending)], None
        producer.produce(settings.topics.activity, activity.encode(record), key, headers=headers)
    assert producer.flush(30) == 0


def _has_hubspot_request(trace: dict[str, Any] | None) -> bool:
    return trace is not None and any(_tags(s).get("span.kind") == "client"
                                     for s in trace["spans"])


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}


def _parent_id(span: dict[str, Any]) -> str | None:
    parents = [r["spanID"] for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
    return parents[0] if parents else None


@pytest.fixture(scope="module")
def traced_run(jaeger: Jaeger, kafka_bootstrap: str, kafka_admin: AdminClient,
               tmp_path_factory: pytest.TempPathFactory) -> TracedRun:
    trace_id = uuid.uuid4().hex
    config = SandboxConfig.default(window_limit=190)
    token = config.apps[0].token
    with serve_in_thread(create_app(config)) as sandbox:
        contact_ids = create_known_contacts(sandbox.url, token, 3)
        env = pipeline_env(
            kafka_bootstrap,
            CONNECTOR_HUBSPOT__BASE_URL=sandbox.url,
            CONNECTOR_HUBSPOT__ACCESS_TOKEN=token,
            CONNECTOR_NORMALIZER__IDLE_PUNCTUATION_SECONDS="2",
            CONNECTOR_NORMALIZER__PARTITIONS="1",
            CONNECTOR_SINK__LINGER_MS="100",
            CONNECTOR_TELEMETRY__TRACES="otlp",
            CONNECTOR_TELEMETRY__OTLP_ENDPOINT=jaeger.otlp,
            CONNECTOR_TELEMETRY__TRACE_SAMPLE_RATIO="0",  # only the platform's trace
        )
        service = f"connector-test-{env['CONNECTOR_SINK__GROUP_ID']}"
        env["CONNECTOR_TELEMETRY__SERVICE_NAME"] = service
        settings = settings_for(env)
        sample = generate(SampleSpec(seed=23, webinars=1, people_per_webinar=40,
                                     contact_ids=contact_ids))
        activities = [r for k, r in sample.publish_order() if k == "activity"]
        attendee = email_registration(activities)
        _publish(settings, sample, kafka_admin, attendee["activityId"],
                 f"00-{trace_id}-{PARENT_SPAN}-01".encode())

        output = tmp_path_factory.mktemp("run") / "output.txt"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
        with output.open("wb") as out:
            child = subprocess.Popen([sys.executable, "-m", "connector", "run", "all"],
                                     env={**inherited, **env}, stdout=out,
                                     stderr=subprocess.STDOUT)
            try:
                wait_for(lambda: child.poll() is None and sink_caught_up(settings),
                         150, "the sink to commit every command")
            finally:
                child.send_signal(signal.SIGTERM)
                code = child.wait(90)  # exiting flushes the spans to Jaeger
    printed = output.read_text("utf-8", "replace")
    assert code == 0, printed[-3000:]

    found: dict[str, Any] = {}

    def in_jaeger() -> bool:
        response = httpx.get(f"{jaeger.api}/api/traces/{trace_id}", timeout=10)
        if response.status_code == 200 and response.json()["data"]:
            found["trace"] = response.json()["data"][0]
        return _has_hubspot_request(found.get("trace"))

    deadline = time.monotonic() + 30  # the tests say what is missing if it never is whole
    while not in_jaeger() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "trace" in found, f"Jaeger has no trace {trace_id}; the run printed:\n{printed[-3000:]}"
    return TracedRun(settings, service, trace_id, found["trace"], printed)


def test_jaeger_lists_the_connectors_service(jaeger: Jaeger, traced_run: TracedRun) -> None:
    assert traced_run.service in jaeger.get("/api/services")["data"]


def test_one_trace_from_the_platform_record_to_the_hubspot_request(
        traced_run: TracedRun) -> None:
    trace, topics = traced_run.trace, traced_run.settings.topics
    spans = trace["spans"]
    assert trace["traceID"] == traced_run.trace_id
    assert {s["traceID"] for s in spans} == {traced_run.trace_id}, "one trace id throughout"
    services = {p["serviceName"] for p in trace["processes"].values()}
    assert services == {traced_run.service}

    by_id = {s["spanID"]: s for s in spans}
    names = sorted(s["operationName"] for s in spans)

    def one(name: str) -> dict[str, Any]:
        matching = [s for s in spans if s["operationName"] == name]
        assert len(matching) == 1, (name, names)
        return matching[0]

    # Hop 1: the platform record, consumed by the normalizer.
    consume = one(f"consume {topics.activity}")
    assert _parent_id(consume) == PARENT_SPAN
    assert _tags(consume)["span.kind"] == "consumer"
    assert _tags(consume)["messaging.destination.name"] == topics.activity
    children = sorted(s["operationName"] for s in spans if _parent_id(s) == consume["spanID"])
    assert children == ["decode", "normalize", f"send {topics.commands}"], children
    send = one(f"send {topics.commands}")
    assert _parent_id(send) == consume["spanID"]
    assert _tags(send)["span.kind"] == "producer"

    # Hop 2: the command, consumed by the sink: a child of the producer span, through the
    # traceparent header the command carried.
    sink_consume = one(f"consume {topics.commands}")
    assert _parent_id(sink_consume) == send["spanID"]
    batch = next(s for s in spans if s["operationName"].startswith("sink batch "))
    assert sorted(s["operationName"] for s in spans
                  if _parent_id(s) == sink_consume["spanID"]) == ["decode", batch["operationName"]]

    # The HubSpot requests of that batch.
    requests = [s for s in spans if _tags(s).get("span.kind") == "client"]
    assert requests, names
    for request in requests:
        assert _parent_id(request) in by_id
    attendance = [s for s in requests if "attendance" in str(_tags(s).get("url.template"))]
    assert attendance, [s["operationName"] for s in requests]
    assert any(_tags(s).get("http.response.status_code") == 200 for s in attendance)
    assert all(_parent_id(s) == batch["spanID"] for s in attendance)
    assert _tags(batch)["hubspot.operation"] == _tags(attendance[0])["hubspot.operation"]


def test_the_trace_is_found_by_service_and_tags(jaeger: Jaeger, traced_run: TracedRun) -> None:
    """The search the README shows: the connector's service and the record's topic/offset."""
    consume = next(s for s in traced_run.trace["spans"]
                   if s["operationName"] == f"consume {traced_run.settings.topics.activity}")
    tags = {"messaging.destination.name": traced_run.settings.topics.activity,
            "messaging.kafka.offset": str(_tags(consume)["messaging.kafka.offset"])}
    found = jaeger.get("/api/traces", service=traced_run.service,
                       operation=consume["operationName"], tags=json.dumps(tags), limit=20)
    assert [t["traceID"] for t in found["data"]] == [traced_run.trace_id]
