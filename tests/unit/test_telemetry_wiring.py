"""How the workers use telemetry, without a broker: the normalizer's per-record path and commit
(stand-in producer), the sink's operation names, and retry counting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from connector.config import load_settings
from connector.hubspot.errors import HubSpotTimeoutError, ServerError
from connector.normalize.normalizer import AttendanceNormalizer
from connector.runtime.assemble import normalizer_worker
from connector.runtime.normalizer_state import TransactionWrites
from connector.runtime.sink import ObservedRetryPolicy, retry_labels
from connector.sample import SampleSpec, generate
from connector.sample.oracle import person_key
from connector.serde.catalog import ACTIVITY_SCHEMA, SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.topic import TopicFormat, build_codec
from connector.telemetry import Telemetry
from tests.fakes import FakeMessage

TOPIC = "webinar.activity"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01".encode()


class _Producer:
    def __init__(self) -> None:
        self.produced: list[dict[str, Any]] = []

    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None:
        """confluent_kafka.Producer.produce's arguments, positional ones named."""
        named = dict(zip(("value", "key", "partition", "on_delivery", "timestamp", "headers"),
                         args, strict=False))
        self.produced.append({"topic": topic, **named, **kwargs})

    def begin_transaction(self) -> None: ...

    def commit_transaction(self, timeout: float) -> None: ...


class _Consumer:
    def assignment(self) -> list[Any]:
        return []

    def position(self, _partitions: list[Any]) -> list[Any]:
        return []


def _normalize(telemetry: Telemetry) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                              _Producer]:
    """One webinar's activities through _handle_batch and _commit; the first activity of a person
    and the first of a guest carry TRACEPARENT."""
    sample = generate(SampleSpec(seed=17, webinars=1, people_per_webinar=100))
    codec = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a",
                        SchemaCatalog.from_directory())
    activities = [r for k, r in sample.publish_order() if k == "activity"]
    traced = {next(a["activityId"] for a in activities if person_key(a["participant"])),
              next(a["activityId"] for a in activities if not person_key(a["participant"]))}
    worker = normalizer_worker(load_settings({"CONNECTOR_TOPICS__ACTIVITY": TOPIC}),
                               threading.Event(), telemetry)
    for webinar in sample.webinars:
        worker.table.put(webinar)
    worker.normalizers = {0: AttendanceNormalizer(worker.table.get, worker.rules)}
    messages = []
    for offset, activity in enumerate(activities):
        parent = activity["activityId"] in traced
        messages.append(FakeMessage(TOPIC, 0, offset, b"web", codec.encode(activity),
                                    [("traceparent", TRACEPARENT)] if parent else None))
        traced.discard(activity["activityId"])
    pending = TransactionWrites()
    worker.parts.records.handle_batch(messages, pending)
    producer = _Producer()
    worker.parts.commits.commit(_Consumer(), producer, pending)  # type: ignore[arg-type]
    return activities, sample.webinars, producer


def _headers(message: dict[str, Any]) -> dict[str, str]:
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in message["headers"]}


def _trace_of(message: dict[str, Any]) -> str | None:
    value = _headers(message).get("traceparent")
    return value.split("-")[1] if value else None


def test_normalizer_carries_the_trace_into_commands_and_dead_letters() -> None:
    with Telemetry.for_tests(sample_ratio=0.0) as telemetry:
        activities, _, producer = _normalize(telemetry)
        commands = [m for m in producer.produced if m["topic"] == "connector.commands"]
        letters = [m for m in producer.produced if m["topic"] == f"{TOPIC}.dlq"]
        assert [_trace_of(m) for m in commands if _trace_of(m)] == [TRACE]
        assert all(_headers(m)["connector.source"].startswith(f"{TOPIC}/0/")
                   for m in commands)
        assert [_trace_of(m) for m in letters if _trace_of(m)] == [TRACE]
        names = sorted({s.name for s in telemetry.finished_spans()})
        assert names == sorted({f"consume {TOPIC}", "decode", "normalize",
                                "send connector.commands", f"send {TOPIC}.dlq"})

        assert telemetry.metric_value("connector.records.in", topic=TOPIC) == len(activities)
        assert telemetry.metric_value("connector.records.out", topic="connector.commands") == \
            len(commands)
        guests = sum(1 for a in activities if not person_key(a["participant"]))
        assert telemetry.metric_value("connector.dead_letters", topic=TOPIC,
                                      reason="no-contact-identifier") == guests == len(letters)


def test_normalizer_with_telemetry_off_writes_the_same_records() -> None:
    _, _, off = _normalize(Telemetry.disabled())
    with Telemetry.for_tests(sample_ratio=1.0) as telemetry:
        _, _, on = _normalize(telemetry)
    assert [(m["topic"], m.get("value")) for m in off.produced] == \
        [(m["topic"], m.get("value")) for m in on.produced]
    assert not any(_trace_of(m) for m in off.produced if m["topic"] == "connector.commands")


class _ErrorMessage(FakeMessage):
    def error(self) -> Any:
        return "broker says no"


def test_normalizer_traces_the_picked_records_and_follows_headers() -> None:
    """Roots are picked once a batch; records with a traceparent follow it, picked or not."""
    sample = generate(SampleSpec(seed=17, webinars=1, people_per_webinar=10))
    codec = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a",
                        SchemaCatalog.from_directory())
    values = [codec.encode(r) for k, r in sample.publish_order() if k == "activity"][:12]
    unsampled = f"00-{TRACE}-00f067aa0ba902b7-00".encode()
    headers: dict[int, list[tuple[str, bytes]]] = {
        2: [("traceparent", unsampled)],   # picked, but its upstream said no
        4: [("traceparent", TRACEPARENT)],  # not picked, but its upstream said yes
        6: [("other", b"x")]}               # picked, headers without trace context
    messages: list[FakeMessage] = [
        FakeMessage(TOPIC, 0, offset, b"web", value, headers.get(offset))
        for offset, value in enumerate(values)]
    messages[8] = _ErrorMessage(TOPIC, 0, 8, b"web", b"")  # a pick lost on an error...
    with Telemetry.for_tests(sample_ratio=0.0) as telemetry:
        worker = normalizer_worker(load_settings({"CONNECTOR_TOPICS__ACTIVITY": TOPIC}),
                                   threading.Event(), telemetry)
        for webinar in sample.webinars:
            worker.table.put(webinar)
        worker.normalizers = {0: AttendanceNormalizer(worker.table.get, worker.rules)}
        asked: list[int] = []

        def picks(count: int) -> Iterator[int]:
            asked.append(count)
            return iter([0, 2, 6, 8, 10])

        telemetry.tracing.root_picks = picks  # type: ignore[method-assign]
        worker.parts.records.handle_batch(messages, TransactionWrites())
        consumed = sorted(dict(s.attributes or {})["messaging.kafka.offset"]
                          for s in telemetry.finished_spans() if s.name == f"consume {TOPIC}")
    assert asked == [12]
    assert consumed == [0, 4, 6, 10]  # ...does not hold back the next one


def test_normalizer_reports_open_attendances_and_state_size() -> None:
    with Telemetry.for_tests(lag_interval_seconds=0.0) as telemetry:
        worker = normalizer_worker(load_settings({}), threading.Event(), telemetry)
        normalizer = AttendanceNormalizer(worker.table.get, worker.rules)
        worker.normalizers = {0: normalizer}
        from connector.normalize.person import Participation

        inside, left = Participation(1, None), Participation(2, None)
        inside.merge_joined("s1", 10)
        left.merge_joined("s1", 10)
        left.merge_left("s1", 20)
        normalizer.people = {("w", "vid:1"): inside, ("w", "vid:2"): left}
        worker._report(_Consumer())  # type: ignore[arg-type]
        assert telemetry.metric_value("connector.normalizer.attendances.open") == 1
        assert telemetry.metric_value("connector.normalizer.state.size") == 2


def test_retries_are_counted_by_operation_and_reason() -> None:
    with Telemetry.for_tests() as telemetry:
        now = [0.0]

        def sleep(seconds: float) -> None:
            now[0] += seconds

        policy = ObservedRetryPolicy(budget_seconds=60, clock=lambda: now[0], sleep=sleep,
                                     metrics=telemetry.metrics)
        failures: list[Exception] = [
            ServerError(status=503, message="x", method="PUT",
                        path="/marketing/v3/marketing-events/events/e1?externalAccountId=a"),
            HubSpotTimeoutError("slow", method="PUT",
                                path="/marketing/v3/marketing-events/events/e1"),
        ]

        def call() -> str:
            if failures:
                raise failures.pop(0)
            return "ok"

        assert policy.run(call) == "ok"
        retries = telemetry.metric_points("connector.hubspot.retries")
        assert {tuple(sorted(dict(k).items())): v for k, v in retries.items()} == {
            (("operation", "upsert_event"), ("reason", "503")): 1,
            (("operation", "upsert_event"), ("reason", "timeout")): 1,
        }


def test_a_failure_that_is_not_retried_is_not_counted() -> None:
    with Telemetry.for_tests() as telemetry:
        now = [0.0]

        def sleep(seconds: float) -> None:
            now[0] += seconds

        policy = ObservedRetryPolicy(budget_seconds=0.1, clock=lambda: now[0], sleep=sleep,
                                     metrics=telemetry.metrics)

        def call() -> str:
            raise ServerError(status=503, message="x", method="GET", path="/x")

        with pytest.raises(ServerError):
            policy.run(call)  # the first backoff already overshoots the budget
        assert telemetry.metric_points("connector.hubspot.retries") == {}


@pytest.mark.parametrize(("error", "labels"), [
    (ServerError(status=502, message="", method="POST",
                 path="/marketing/v3/marketing-events/123/attendance/attend/email-create"),
     ("record_attendance_by_email", "502")),
    (HubSpotTimeoutError("t", method="GET", path="/nowhere"), ("other", "timeout")),
    (ValueError("no request"), ("other", "ValueError")),
])
def test_retry_labels(error: Exception, labels: tuple[str, str]) -> None:
    assert retry_labels(error) == labels
