"""Telemetry of the whole pipeline (real broker, sandbox), read from in-memory exporters.

One run (module fixture): a synthetic webinar is published where one attendee's first record and
one guest's record carry a sampled W3C ``traceparent``; the normalizer runs until every command
is written (all into one commands partition), then the sink starts on that backlog and runs until
HubSpot shows what the input predicts. Both workers share one ``Telemetry.for_tests`` with root
sampling off, so the only traces recorded are the ones the platform started.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from connector.config import Settings
from connector.dlq.envelope import H_REASON, header_map
from connector.runtime.assemble import run_normalizer
from connector.runtime.sink import run_sink
from connector.sample import Sample, SampleSpec, generate
from connector.sample.oracle import expected_outcome, person_key
from connector.sample.view import create_known_contacts, hubspot_view
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.server import serve_in_thread
from connector.serde.catalog import ACTIVITY_SCHEMA, WEBINAR_SCHEMA
from connector.serde.codec import Framing
from connector.serde.topic import TopicFormat, build_codec
from connector.telemetry import Telemetry
from tests.pipeline_helpers import (
    CATALOG,
    WorkerThread,
    email_registration,
    pipeline_env,
    read_topic,
    reference_commands,
    settings_for,
    wait_for,
)

pytestmark = pytest.mark.integration

ATTENDEE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
GUEST_TRACE = "5ce0e2f35e7a4b1c8d9e0f1a2b3c4d5e"
PARENT_SPAN = "00f067aa0ba902b7"
LAG = "connector.consumer.lag"


def _traceparent(trace_id: str) -> bytes:
    return f"00-{trace_id}-{PARENT_SPAN}-01".encode()


def _trace_id_of(headers: list[tuple[str, Any]] | None) -> str | None:
    value = header_map(headers).get("traceparent")
    return value.split("-")[1] if value else None


@dataclass
class PipelineRun:
    """What the module's one run produced, for the tests to read."""

    settings: Settings
    telemetry: Telemetry
    activities: list[dict[str, Any]]
    webinar_versions: int
    attendee: dict[str, Any]
    guest: dict[str, Any]
    expected_commands: int
    commands: list[Any]
    activity_letters: list[Any]
    #: (group, {(topic, partition): lag}) in the order the workers reported them
    lag_history: list[tuple[str, dict[tuple[str, int], int]]] = field(default_factory=list)
    #: per commands partition: (high watermark, the sink group's committed offset), at the end
    sink_offsets: dict[int, tuple[int, int]] = field(default_factory=dict)

    def spans(self, trace_id: str) -> list[ReadableSpan]:
        return [s for s in self.telemetry.finished_spans()
                if f"{s.context.trace_id:032x}" == trace_id]


def _publish(settings: Settings, sample: Sample, admin: AdminClient,
             traced: dict[str, bytes]) -> None:
    """The platform's records (raw Avro, key webinarId); ``traced``: activityId -> traceparent
    (only the first record of each such activityId gets it)."""
    for name, config in ((settings.topics.activity, {}),
                         (settings.topics.webinars, {"cleanup.policy": "compact"})):
        admin.create_topics([NewTopic(name, 3, 1, config=config)])[name].result(30)
    activity = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a", CATALOG)
    webinar = build_codec(TopicFormat(Framing.RAW, WEBINAR_SCHEMA), "w", CATALOG)
    producer = Producer({**settings.kafka.producer_config(), "enable.idempotence": True})
    pending = dict(traced)
    for kind, record in sample.publish_order():
        key = record["webinarId"].encode()
        if kind == "webinar":
            producer.produce(settings.topics.webinars, webinar.encode(record), key)
            continue
        parent = pending.pop(record["activityId"], None)
        producer.produce(settings.topics.activity, activity.encode(record), key,
                         headers=[("traceparent", parent)] if parent else None)
    assert producer.flush(30) == 0


def _offsets(settings: Settings) -> dict[int, tuple[int, int]]:
    """(high watermark, the sink group's committed offset) per commands partition."""
    consumer = Consumer({**settings.kafka.consumer_config(), "group.id": settings.sink.group_id,
                         "enable.auto.commit": False})
    try:
        topic = settings.topics.commands
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], 10)
        return {tp.partition: (consumer.get_watermark_offsets(tp, 10)[1], tp.offset)
                for tp in committed}
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, kafka_admin: AdminClient) -> Iterator[PipelineRun]:
    config = SandboxConfig.default(window_limit=190)
    token = config.apps[0].token
    with serve_in_thread(create_app(config)) as sandbox, \
            Telemetry.for_tests(sample_ratio=0.0, lag_interval_seconds=0.0) as telemetry:
        contact_ids = create_known_contacts(sandbox.url, token, 5)
        env = pipeline_env(kafka_bootstrap,
                           CONNECTOR_HUBSPOT__BASE_URL=sandbox.url,
                           CONNECTOR_HUBSPOT__ACCESS_TOKEN=token,
                           CONNECTOR_NORMALIZER__IDLE_PUNCTUATION_SECONDS="2",
                           CONNECTOR_NORMALIZER__PARTITIONS="1",  # one commands partition
                           CONNECTOR_SINK__LINGER_MS="100")
        settings = settings_for(env)
        sample = generate(SampleSpec(seed=17, webinars=2, people_per_webinar=200,
                                     contact_ids=contact_ids))
        activities = [r for k, r in sample.publish_order() if k == "activity"]
        attendee = email_registration(activities)
        guest = next(a for a in activities if person_key(a["participant"]) is None)
        _publish(settings, sample, kafka_admin, {
            attendee["activityId"]: _traceparent(ATTENDEE_TRACE),
            guest["activityId"]: _traceparent(GUEST_TRACE)})
        expected = sum(reference_commands(settings).values())

        run = PipelineRun(settings, telemetry, activities, len(sample.webinars), attendee, guest,
                          expected, [], [])
        metrics: Any = telemetry.metrics
        report = metrics.set_consumer_lag
        history_lock = threading.Lock()

        def record_lag(group: str, lags: dict[tuple[str, int], int]) -> None:
            with history_lock:
                run.lag_history.append((group, dict(lags)))
            report(group, lags)

        metrics.set_consumer_lag = record_lag

        normalizer = WorkerThread(functools.partial(run_normalizer, telemetry=telemetry),
                                  settings)
        sink: WorkerThread | None = None
        try:
            wait_for(lambda: len(read_topic(kafka_bootstrap, settings.topics.commands, 10))
                     >= expected, 120, f"the normalizer to write {expected} commands")
            sink = WorkerThread(functools.partial(run_sink, telemetry=telemetry), settings)
            predicted = expected_outcome(activities, {
                w["webinarId"]: w for w in sample.webinars if w["status"] == "ENDED"})
            wait_for(lambda: hubspot_view(sandbox.url, set(contact_ids))[0] == predicted, 150,
                     "HubSpot to show the predicted outcome")
            wait_for(lambda: all(high - committed <= 1 for high, committed in
                                 _offsets(settings).values()), 60,
                     "the sink to commit every command")
        finally:
            if sink is not None:
                sink.join(60)
            normalizer.join(60)
        run.sink_offsets = _offsets(settings)
        run.commands = read_topic(kafka_bootstrap, settings.topics.commands)
        run.activity_letters = read_topic(kafka_bootstrap,
                                          settings.topics.dlq_for(settings.topics.activity))
        yield run


# -- one attendee's chain ---------------------------------------------------------------------


def test_the_attendees_command_carries_the_platforms_trace(pipeline: PipelineRun) -> None:
    traced = [m for m in pipeline.commands if _trace_id_of(m.headers()) == ATTENDEE_TRACE]
    assert traced, "no command carries the attendee's trace"
    source = f"{pipeline.settings.topics.activity}/"
    for message in traced:  # next to connector.source, which names the platform record
        assert header_map(message.headers())["connector.source"].startswith(source)
        assert pipeline.attendee["participant"]["email"].strip().lower().encode() \
            in message.value().lower()
    others = [m for m in pipeline.commands if _trace_id_of(m.headers()) not in (None,)]
    assert len(others) == len(traced), "only records that came with a trace carry one"


def test_one_trace_from_the_platform_record_to_the_hubspot_request(
        pipeline: PipelineRun) -> None:
    spans = pipeline.spans(ATTENDEE_TRACE)
    by_id = {s.context.span_id: s for s in spans}
    names = [s.name for s in spans]
    activity, commands = pipeline.settings.topics.activity, pipeline.settings.topics.commands

    consume = next(s for s in spans if s.name == f"consume {activity}")
    assert consume.kind is SpanKind.CONSUMER
    assert consume.parent is not None and f"{consume.parent.span_id:016x}" == PARENT_SPAN
    assert consume.attributes is not None
    assert consume.attributes["messaging.destination.name"] == activity
    for child in ("decode", "normalize", f"send {commands}"):
        assert any(s.name == child and s.parent and s.parent.span_id == consume.context.span_id
                   for s in spans), (child, names)

    send = next(s for s in spans if s.name == f"send {commands}")
    sink_consume = next(s for s in spans if s.name == f"consume {commands}")
    assert sink_consume.parent is not None and sink_consume.parent.span_id == \
        send.context.span_id
    batch = next(s for s in spans if s.name.startswith("sink batch "))
    assert batch.parent is not None and batch.parent.span_id == sink_consume.context.span_id

    requests = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert requests, names
    attendance = [s for s in requests if s.attributes and "attendance" in str(
        s.attributes["url.template"])]
    assert attendance, [s.name for s in requests]
    for span in requests:
        assert span.parent is not None and span.parent.span_id in by_id
        attrs = span.attributes or {}
        assert attrs["http.request.method"] in ("GET", "POST", "PUT")
        assert attrs["server.address"] == "127.0.0.1"
        assert "@" not in str(attrs["url.full"]) or "***@" in str(attrs["url.full"])
    assert any((s.attributes or {}).get("http.response.status_code") == 200 for s in attendance)
    assert batch.attributes and batch.attributes["hubspot.operation"] == \
        attendance[0].attributes["hubspot.operation"]  # type: ignore[index]


def test_the_guests_dead_letter_carries_its_trace(pipeline: PipelineRun) -> None:
    letters = [m for m in pipeline.activity_letters
               if _trace_id_of(m.headers()) == GUEST_TRACE]
    assert len(letters) == 1
    assert header_map(letters[0].headers())[H_REASON] == "no-contact-identifier"
    consume = next(s for s in pipeline.spans(GUEST_TRACE)
                   if s.name == f"consume {pipeline.settings.topics.activity}")
    assert [e.name for e in consume.events] == ["dead_letter"]
    assert not consume.status.is_ok
    # the dead letter's context is the dead-lettering record's, not the platform's parent
    send = next(s for s in pipeline.spans(GUEST_TRACE) if s.name.startswith("send "))
    assert header_map(letters[0].headers())["traceparent"].split("-")[2] == \
        f"{send.context.span_id:016x}"


# -- counters -----------------------------------------------------------------------------------


def test_counters_match_the_records_processed(pipeline: PipelineRun) -> None:
    t, topics = pipeline.telemetry, pipeline.settings.topics
    assert t.metric_value("connector.records.in", topic=topics.activity) == \
        len(pipeline.activities)
    assert t.metric_value("connector.records.in", topic=topics.webinars) == \
        pipeline.webinar_versions
    assert len(pipeline.commands) == pipeline.expected_commands
    assert t.metric_value("connector.records.out", topic=topics.commands) == \
        len(pipeline.commands)
    assert t.metric_value("connector.records.in", topic=topics.commands) == \
        len(pipeline.commands)

    guests = [a for a in pipeline.activities if person_key(a["participant"]) is None]
    reasons: dict[str, int] = {}
    for message in pipeline.activity_letters:
        reason = header_map(message.headers())[H_REASON]
        reasons[reason] = reasons.get(reason, 0) + 1
    assert reasons == {"no-contact-identifier": len(guests)}
    dead = {dict(k)["reason"]: v for k, v in t.metric_points("connector.dead_letters").items()
            if dict(k)["topic"] == topics.activity}
    assert dead == reasons
    assert t.metric_value("connector.records.out", topic=topics.dlq_for(topics.activity)) == \
        len(guests)
    assert t.metric_points("connector.dead_letters").keys() == {
        frozenset({("topic", topics.activity), ("reason", "no-contact-identifier")})}


def test_hubspot_requests_batches_and_budget_are_measured(pipeline: PipelineRun) -> None:
    t = pipeline.telemetry
    durations = t.metric_points("connector.hubspot.request.duration")
    operations = {dict(k)["operation"] for k in durations}
    assert {"upsert_event", "record_attendance_by_email"} <= operations, operations
    assert all(dict(k)["status"] in ("200", "201", "204", "404") for k in durations), durations
    fill = t.metric_points("connector.sink.batch.fill_ratio")
    count, total = fill[frozenset({("operation", "record_attendance_by_email")})]
    assert count > 0 and 0 < total <= count
    budget = {dict(k)["window"]: v for k, v in
              t.metric_points("connector.hubspot.rate_budget.remaining").items()}
    assert set(budget) == {"10s", "daily"}
    assert 0 <= budget["10s"] <= 190 and 0 < budget["daily"] <= 250_000
    assert t.metric_value("connector.normalizer.state.size") > 0
    assert t.metric_value("connector.normalizer.attendances.open") is not None


# -- lag ---------------------------------------------------------------------------------------


def test_lag_shows_the_backlog_then_reaches_zero(pipeline: PipelineRun) -> None:
    topics, groups = pipeline.settings.topics, pipeline.settings
    sink_group, normalizer_group = groups.sink.group_id, groups.normalizer.group_id
    sink = [lags for group, lags in pipeline.lag_history if group == sink_group and lags]
    assert sink, "the sink reported no lag"
    high, committed = pipeline.sink_offsets[0]
    # The sink started on a backlog of every command (more than one poll takes): it shows.
    first = sink[0][(topics.commands, 0)]
    assert 0 < first < high
    # Once caught up it is 0. The group's committed offset stops before the commit marker of
    # the normalizer's last transaction; the consumer's position is past it.
    last = sink[-1]
    assert last == {(topics.commands, 0): 0}
    assert high - committed == 1
    points = pipeline.telemetry.metric_points(LAG)
    assert points[frozenset({("group", sink_group), ("topic", topics.commands),
                             ("partition", "0")})] == last[(topics.commands, 0)]

    normalizer = [lags for group, lags in pipeline.lag_history
                  if group == normalizer_group and lags]
    final = normalizer[-1]
    assert {tp for tp in final if tp[0] == topics.activity} == {
        (topics.activity, p) for p in range(3)}
    assert all(final[(topics.activity, p)] == 0 for p in range(3)), final
