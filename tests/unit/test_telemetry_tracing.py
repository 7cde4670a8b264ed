"""Trace context through Kafka headers and HubSpot requests, read back from in-memory exporters."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from connector.hubspot import (
    HubSpotClient,
    MarketingEventEmailSubscriber,
    RateLimitedError,
    SubscriberState,
)
from connector.serde.record import SourceRecord
from connector.telemetry import (
    NOOP_RECORD,
    NOOP_SCOPE,
    Telemetry,
    Tracing,
    TracingTransport,
    extract_context,
    inject_context,
    route_of,
    safe_url,
)

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
UPSTREAM_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
UPSTREAM_SPAN = "00f067aa0ba902b7"
SAMPLED = f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01".encode()
UNSAMPLED = f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-00".encode()
BATCH_BODY = {"status": "COMPLETE", "results": [], "startedAt": "2024-05-22T13:38:16.500Z",
              "completedAt": "2024-05-22T13:38:16.900Z"}


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    with Telemetry.for_tests() as t:
        yield t


def _record(topic: str, headers: list[tuple[str, bytes | None]], offset: int = 7
            ) -> SourceRecord:
    return SourceRecord(topic, 0, offset, b"key", b"value", headers)


def _by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


def _ok(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=BATCH_BODY)


def _get_event(telemetry: Telemetry) -> None:
    with httpx.Client(transport=telemetry.http_transport(httpx.MockTransport(_ok))) as client:
        client.get("https://api.hubapi.com/marketing/v3/marketing-events/events/e1")


def _send_attendance(client: HubSpotClient, email: str = "jane.doe@example.com") -> None:
    client.record_external_attendance_by_email(
        SubscriberState.ATTEND,
        [MarketingEventEmailSubscriber(email=email, interaction_date_time=1)],
        external_event_id="web-1", external_account_id="acct-1")


# -- propagation ---------------------------------------------------------------------------------


def test_extract_and_inject_round_trip_with_bytes_headers() -> None:
    context = extract_context([("other", b"x"), ("traceparent", SAMPLED),
                               ("tracestate", b"vendor=1")])
    span_context = trace.get_current_span(context).get_span_context()
    assert f"{span_context.trace_id:032x}" == UPSTREAM_TRACE
    assert span_context.is_remote and span_context.trace_flags.sampled

    out = inject_context([("other", b"x"), ("traceparent", b"stale"), ("tracestate", b"old")],
                         context)
    assert out[0] == ("other", b"x")
    assert dict(out)["traceparent"] == SAMPLED
    assert dict(out)["tracestate"] == b"vendor=1"
    assert [name for name, _ in out].count("traceparent") == 1


def test_extract_without_context_gives_empty_context_not_the_current_one(
        telemetry: Telemetry) -> None:
    with telemetry.tracing.span("outer"):
        context = extract_context([("other", b"x")])
        assert not trace.get_current_span(context).get_span_context().is_valid
    assert extract_context(None) is not None
    assert inject_context([("a", b"1")]) == [("a", b"1")]  # no active span: nothing added


def test_malformed_traceparent_is_ignored(telemetry: Telemetry) -> None:
    for bad in (b"garbage", b"00-" + b"0" * 32 + b"-" + b"0" * 16 + b"-01", b""):
        rt = telemetry.tracing.consume(_record("in", [("traceparent", bad)]))
        with rt:
            pass
    spans = telemetry.finished_spans()
    assert len(spans) == 3
    assert all(span.parent is None for span in spans)  # each started its own trace


# -- the chain for one attendee -------------------------------------------------------------------


def test_source_record_command_and_hubspot_request_share_one_trace(telemetry: Telemetry) -> None:
    tracing = telemetry.tracing
    # Normalizer: record A from the platform, carrying the platform's trace context.
    record_a = _record("webinar.activity", [("traceparent", SAMPLED)])
    rt = tracing.consume(record_a)
    with rt:
        with rt.decode():
            pass
        with rt.normalize():
            pass
    with rt.produce("connector.commands") as send:  # at commit time, after the record's span
        command_headers = send.inject([("connector.source", b"webinar.activity/0/7")])
    # Sink: command B consumed, batched and sent to HubSpot through the tracing transport.
    record_b = _record("connector.commands", command_headers, offset=3)
    with tracing.consume(record_b):
        pass
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=BATCH_BODY)

    transport = telemetry.http_transport(httpx.MockTransport(handler))
    assert isinstance(transport, TracingTransport)
    with HubSpotClient(TOKEN, transport=transport) as client, \
            tracing.sink_batch([record_b], operation="record_external_attendance_by_email"):
        _send_attendance(client)

    spans = _by_name(telemetry.finished_spans())
    assert set(spans) == {
        "consume webinar.activity", "decode", "normalize", "send connector.commands",
        "consume connector.commands", "sink batch record_external_attendance_by_email",
        "POST /marketing/v3/marketing-events/attendance/{externalEventId}/{subscriberState}"
        "/email-create",
    }
    assert {f"{s.context.trace_id:032x}" for s in spans.values()} == {UPSTREAM_TRACE}

    def parent_of(name: str) -> int | None:
        parent = spans[name].parent
        return parent.span_id if parent else None

    consume_a = spans["consume webinar.activity"]
    send_b = spans["send connector.commands"]
    batch = spans["sink batch record_external_attendance_by_email"]
    http = spans["POST /marketing/v3/marketing-events/attendance/{externalEventId}"
                 "/{subscriberState}/email-create"]
    assert parent_of("consume webinar.activity") == int(UPSTREAM_SPAN, 16)
    assert parent_of("decode") == parent_of("normalize") == consume_a.context.span_id
    assert parent_of("send connector.commands") == consume_a.context.span_id
    assert parent_of("consume connector.commands") == send_b.context.span_id
    assert parent_of("sink batch record_external_attendance_by_email") == send_b.context.span_id
    assert http.parent is not None and http.parent.span_id == batch.context.span_id

    assert consume_a.kind is SpanKind.CONSUMER and send_b.kind is SpanKind.PRODUCER
    assert consume_a.attributes == {
        "messaging.system": "kafka", "messaging.operation.type": "process",
        "messaging.destination.name": "webinar.activity",
        "messaging.destination.partition.id": "0", "messaging.kafka.offset": 7}
    assert http.kind is SpanKind.CLIENT
    attributes = dict(http.attributes or {})
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.response.status_code"] == 200
    assert attributes["server.address"] == "api.hubapi.com"
    assert attributes["server.port"] == 443
    assert attributes["hubspot.operation"] == "record_external_attendance_by_email"
    assert attributes["url.full"] == ("https://api.hubapi.com/marketing/v3/marketing-events/"
                                      "attendance/web-1/attend/email-create"
                                      "?externalAccountId=acct-1")
    # HubSpot is a third party: no trace headers unless asked, the token never in attributes.
    assert "traceparent" not in seen[0].headers
    assert TOKEN not in repr(attributes)


def test_chain_without_upstream_context_starts_at_the_normalizer(telemetry: Telemetry) -> None:
    rt = telemetry.tracing.consume(_record("webinar.activity", []))
    with rt:
        pass
    with rt.produce("connector.commands") as send:
        headers = send.inject([])
    with telemetry.tracing.sink_batch([_record("connector.commands", headers)], operation="op"):
        _get_event(telemetry)
    spans = telemetry.finished_spans()
    assert len(spans) == 4
    assert len({span.context.trace_id for span in spans}) == 1
    assert _by_name(spans)["consume webinar.activity"].parent is None


def test_dead_letter_carries_the_dead_lettering_span_not_the_source_one(
        telemetry: Telemetry) -> None:
    record = _record("webinar.activity", [("traceparent", SAMPLED), ("x", b"1")])
    rt = telemetry.tracing.consume(record)
    with rt:
        rt.dead_letter("malformed-avro")
    with rt.produce("webinar.activity.dlq") as send:
        headers = send.inject([*record.headers, ("connector.error.reason", b"x")])
    names = [name for name, _ in headers]
    assert names.count("traceparent") == 1 and "x" in names
    spans = _by_name(telemetry.finished_spans())
    send_span = spans["send webinar.activity.dlq"]
    assert dict(headers)["traceparent"].startswith(
        f"00-{UPSTREAM_TRACE}-{send_span.context.span_id:016x}-".encode())
    consume = spans["consume webinar.activity"]
    assert consume.status.status_code is StatusCode.ERROR
    assert [e.name for e in consume.events] == ["dead_letter"]


def test_exception_inside_a_record_span_is_recorded_and_propagates(
        telemetry: Telemetry) -> None:
    rt = telemetry.tracing.consume(_record("t", []))
    with pytest.raises(ValueError, match="boom"), rt, rt.normalize():
        raise ValueError("boom")
    spans = _by_name(telemetry.finished_spans())
    for name in ("normalize", "consume t"):
        assert spans[name].status.status_code is StatusCode.ERROR
        assert spans[name].attributes is not None
        assert spans[name].attributes["error.type"] == "ValueError"


def test_record_spans_built_whole_look_like_the_sdk_tracer_spans(telemetry: Telemetry) -> None:
    """A record's spans skip the SDK's Span object: what reaches the exporter must not show it."""
    rt = telemetry.tracing.consume(_record("t", [("traceparent", SAMPLED),
                                                 ("tracestate", b"vendor=1")]))
    error = ValueError("bad datum")
    with pytest.raises(ValueError), rt, rt.decode():
        raise error
    with telemetry.tracing.span("sdk span"):
        trace.get_current_span().record_exception(error)
    spans = _by_name(telemetry.finished_spans())
    decode, consume, sdk = spans["decode"], spans["consume t"], spans["sdk span"]
    for built in (decode, consume):
        assert built.resource == sdk.resource
        assert built.instrumentation_scope == sdk.instrumentation_scope
        assert built.context.trace_flags.sampled and not built.context.is_remote
        assert built.context.trace_state.get("vendor") == "1"  # tracestate kept, as the SDK does
        assert built.start_time is not None and built.end_time is not None
        assert built.start_time <= built.end_time
        [event] = built.events
        [sdk_event] = sdk.events
        assert event.name == sdk_event.name == "exception"
        assert event.attributes is not None and sdk_event.attributes is not None
        without_stack = {k: v for k, v in event.attributes.items() if k != "exception.stacktrace"}
        assert without_stack == {k: v for k, v in sdk_event.attributes.items()
                                 if k != "exception.stacktrace"}
        assert "ValueError: bad datum" in str(event.attributes["exception.stacktrace"])
    assert consume.parent is not None and consume.parent.is_remote
    assert decode.parent == consume.context
    assert consume.start_time <= decode.start_time and decode.end_time <= consume.end_time
    # Trace flags as the SDK sets them: sampled, plus "random trace id" on a trace it starts
    # (its RandomIdGenerator) and on children of a parent with that flag.
    assert consume.context.trace_flags == decode.context.trace_flags == 0x01  # upstream: 01
    root = telemetry.tracing.consume(_record("r", []))
    with root, root.normalize():
        pass
    with telemetry.tracing.span("sdk root"):
        pass
    spans = _by_name(telemetry.finished_spans())
    assert spans["consume r"].context.trace_flags == spans["sdk root"].context.trace_flags
    assert spans["normalize"].context.trace_flags == spans["sdk root"].context.trace_flags == 0x03


def test_record_span_ignores_changes_once_ended(telemetry: Telemetry) -> None:
    rt = telemetry.tracing.consume(_record("t", []))
    with rt:
        rt.set_attribute("during", 1)
    rt.set_attribute("after", 1)
    rt.add_event("after")
    rt.dead_letter("too-late")
    [span] = telemetry.finished_spans()
    assert span.attributes is not None and span.attributes["during"] == 1
    assert "after" not in span.attributes
    assert span.events == () and span.status.status_code is StatusCode.UNSET


def test_record_span_is_current_inside_so_sdk_spans_and_logs_see_it(
        telemetry: Telemetry) -> None:
    rt = telemetry.tracing.consume(_record("t", []))
    with rt:
        current = trace.get_current_span().get_span_context()
        with telemetry.tracing.span("inner"):
            pass
    assert not trace.get_current_span().get_span_context().is_valid
    spans = _by_name(telemetry.finished_spans())
    assert current == spans["consume t"].context
    assert spans["inner"].parent == spans["consume t"].context


# -- sampling ------------------------------------------------------------------------------------


def test_unsampled_upstream_is_forwarded_unchanged_and_records_nothing(
        telemetry: Telemetry) -> None:
    rt = telemetry.tracing.consume(_record("t", [("traceparent", UNSAMPLED),
                                                 ("tracestate", b"v=1")]))
    with rt, rt.decode(), rt.produce("out") as send:
        headers = send.inject([("a", b"1"), ("traceparent", b"stale")])
    assert headers == [("a", b"1"), ("traceparent", UNSAMPLED), ("tracestate", b"v=1")]
    with telemetry.tracing.sink_batch([_record("out", headers)], operation="op"):
        _get_event(telemetry)
    assert telemetry.finished_spans() == ()
    # ...but the request is still measured.
    assert telemetry.metric_value("connector.hubspot.request.duration",
                                  operation="get_event", status="200")[0] == 1


def test_root_sample_ratio_zero_records_nothing_and_costs_no_span() -> None:
    with Telemetry.for_tests(sample_ratio=0.0) as telemetry:
        rt = telemetry.tracing.consume(_record("t", []))
        assert rt is NOOP_RECORD
        with rt, rt.decode():
            assert rt.inject([("a", b"1")]) == [("a", b"1")]
        with telemetry.tracing.sink_batch([_record("t", [])], operation="op"):
            # The batch decided "not sampled"; requests inside follow that decision.
            assert trace.get_current_span().get_span_context().is_valid
            _get_event(telemetry)
        assert telemetry.finished_spans() == ()


def test_no_span_starts_under_an_unsampled_decision() -> None:
    """The SDK sampler is ALWAYS_ON: every not-sampled decision must be made before start_span."""
    unsampled = _record("c", [("traceparent", UNSAMPLED)])
    with Telemetry.for_tests(sample_ratio=1.0) as telemetry:
        tracing = telemetry.tracing
        with tracing.sink_batch([unsampled], operation="op"):
            with tracing.span("inner") as inner:
                assert inner is NOOP_SCOPE
            assert tracing.client_span("GET /x", {}) is None
            _get_event(telemetry)
        rt = tracing.consume(unsampled)
        with rt, rt.decode(), rt.normalize(), rt.produce("out"):
            pass
        assert telemetry.finished_spans() == ()
    with Telemetry.for_tests(sample_ratio=0.0) as telemetry:
        assert telemetry.tracing.span("root") is NOOP_SCOPE
        assert telemetry.tracing.client_span("GET /x", {}) is None
        assert telemetry.finished_spans() == ()


def test_root_sample_ratio_is_applied_once_per_trace() -> None:
    with Telemetry.for_tests(sample_ratio=0.25, rng=random.Random(7)) as telemetry:
        traced = 0
        for offset in range(2000):
            rt = telemetry.tracing.consume(_record("t", [], offset))
            with rt, rt.decode(), rt.normalize():
                pass
            traced += rt.sampled
        spans = telemetry.finished_spans()
    assert 400 < traced < 600  # 25 % of 2000, seeded
    assert len(spans) == 3 * traced  # a sampled record keeps all of its child spans


def _picks(ratio: float, count: int, batches: int, seed: int = 11) -> list[list[int]]:
    with Telemetry.for_tests(sample_ratio=ratio, rng=random.Random(seed)) as telemetry:
        return [list(telemetry.tracing.root_picks(count)) for _ in range(batches)]


@pytest.mark.parametrize("ratio", [0.01, 0.25, 0.9])
def test_root_picks_pick_each_index_with_the_sample_ratio(ratio: float) -> None:
    batches = _picks(ratio, 500, 400)  # 200,000 draws
    for picks in batches:
        assert picks == sorted(set(picks)) and all(0 <= i < 500 for i in picks)
    picked = sum(len(picks) for picks in batches)
    expected = ratio * 500 * 400
    sigma = (expected * (1 - ratio)) ** 0.5
    assert abs(picked - expected) < 5 * sigma


def test_root_picks_favour_no_position_in_the_batch() -> None:
    """A per-index Bernoulli draw: the first index and the last are picked like any other."""
    batches = _picks(0.25, 8, 20_000)
    per_index = [sum(i in picks for picks in batches) for i in range(8)]
    expected, sigma = 5000, (20_000 * 0.25 * 0.75) ** 0.5
    assert all(abs(n - expected) < 5 * sigma for n in per_index), per_index
    # and independently: both of two neighbours as often as p^2
    both = sum(0 in picks and 1 in picks for picks in batches)
    assert abs(both - 20_000 * 0.0625) < 5 * (20_000 * 0.0625 * 0.9375) ** 0.5


def test_root_picks_at_ratio_zero_and_one() -> None:
    assert _picks(0.0, 1000, 20) == [[]] * 20
    assert _picks(1.0, 7, 3) == [list(range(7))] * 3
    assert _picks(0.5, 0, 3) == [[]] * 3
    assert list(Tracing().root_picks(100)) == []  # telemetry off


def test_consume_follows_traceparent_whatever_the_root_pick(telemetry: Telemetry) -> None:
    tracing = telemetry.tracing
    for root in (True, False):
        forwarded = tracing.consume(_record("t", [("traceparent", UNSAMPLED)]), root)
        assert not forwarded.sampled and forwarded is not NOOP_RECORD
        assert forwarded.inject([]) == [("traceparent", UNSAMPLED)]
        assert tracing.consume(_record("t", [("traceparent", SAMPLED)]), root).sampled
    assert tracing.consume(_record("t", [("other", b"x")]), True).sampled
    with Telemetry.for_tests(sample_ratio=1.0) as always:
        assert always.tracing.consume(_record("t", []), False) is NOOP_RECORD
    with Telemetry.for_tests(sample_ratio=0.0) as never:
        assert never.tracing.consume(_record("t", []), True).sampled


def test_sink_batch_parents_on_first_sampled_record_and_links_the_others(
        telemetry: Telemetry) -> None:
    def traceparent(trace_id: int, flags: str) -> bytes:
        return f"00-{trace_id:032x}-{trace_id:016x}-{flags}".encode()

    records = [_record("c", []), _record("c", [("traceparent", traceparent(1, "00"))]),
               _record("c", [("traceparent", traceparent(2, "01"))]),
               _record("c", [("traceparent", traceparent(3, "01"))])]
    with telemetry.tracing.sink_batch(records, operation="op"):
        pass
    (batch,) = telemetry.finished_spans()
    assert batch.context.trace_id == 2
    assert [link.context.trace_id for link in batch.links] == [3]
    assert batch.attributes is not None
    assert batch.attributes["messaging.batch.message_count"] == 4


# -- the HTTP transport --------------------------------------------------------------------------


def test_transport_reports_429_as_error_span_and_throttle_metric(telemetry: Telemetry) -> None:
    def throttled(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"status": "error", "message": "slow down",
                                         "category": "RATE_LIMITS"},
                              headers={"Retry-After": "1"})

    transport = telemetry.http_transport(httpx.MockTransport(throttled))
    with HubSpotClient(TOKEN, transport=transport) as client, \
            telemetry.tracing.span("sink"), pytest.raises(RateLimitedError):
        _send_attendance(client)
    http = next(s for s in telemetry.finished_spans() if s.kind is SpanKind.CLIENT)
    assert http.status.status_code is StatusCode.ERROR
    assert http.attributes is not None and http.attributes["error.type"] == "429"
    assert telemetry.metric_value("connector.hubspot.throttled",
                                  operation="record_external_attendance_by_email") == 1


def test_transport_records_connection_failures(telemetry: Telemetry) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    transport = telemetry.http_transport(httpx.MockTransport(refuse))
    with telemetry.tracing.span("sink"), httpx.Client(transport=transport) as client, \
            pytest.raises(httpx.ConnectError):
        client.get("https://api.hubapi.com/marketing/v3/marketing-events/events/e1")
    http = next(s for s in telemetry.finished_spans() if s.kind is SpanKind.CLIENT)
    assert http.attributes is not None and http.attributes["error.type"] == "ConnectError"
    assert telemetry.metric_value("connector.hubspot.request.duration", operation="get_event",
                                  status="ConnectError")[0] == 1


def test_transport_propagates_trace_context_only_when_asked() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    with Telemetry.for_tests() as telemetry:
        transport = TracingTransport(httpx.MockTransport(handler), telemetry.tracing,
                                     telemetry.metrics, propagate=True)
        with httpx.Client(transport=transport) as client:
            client.get("http://sandbox.local:8080/marketing/v3/marketing-events/events/e1")
        (http,) = telemetry.finished_spans()
    sent = seen[0].headers["traceparent"]
    assert sent[:-3] == f"00-{http.context.trace_id:032x}-{http.context.span_id:016x}"
    assert int(sent[-2:], 16) & 1  # sampled (the SDK may also set the W3C "random" bit)
    assert http.attributes is not None and http.attributes["server.port"] == 8080


@pytest.mark.parametrize(("method", "path", "operation"), [
    ("POST", "/events", "create_event"),
    ("POST", "/events/upsert", "batch_upsert_events"),
    ("PUT", "/events/a%2Fb", "upsert_event"),
    ("POST", "/events/e1/complete", "complete_event"),
    ("POST", "/events/e1/attend/email-upsert", "upsert_subscriber_state_by_email"),
    ("POST", "/attendance/e1/attend/create", "record_external_attendance"),
    ("POST", "/123/attendance/attend/email-create", "record_attendance_by_email"),
    ("GET", "/participations/contacts/j%40x.com/breakdown", "get_contact_participations"),
    ("GET", "/participations/a/e1/breakdown", "get_participation_breakdown"),
    ("GET", "/participations/123", "get_participation_counters_by_object_id"),
    ("GET", "/", "list_events"),
    ("GET", "/123", "get_event_by_object_id"),
    ("DELETE", "/associations/a/e1/lists/9", "disassociate_list_by_external_id"),
    ("GET", "/42/settings", "get_app_settings"),
])
def test_route_of_names_the_client_operation(method: str, path: str, operation: str) -> None:
    assert route_of(method, "/marketing/v3/marketing-events" + path)[0] == operation


def test_route_of_unknown_path() -> None:
    assert route_of("GET", "/crm/v3/objects/contacts")[0] == "other"


def test_safe_url_masks_emails_and_secret_query_values() -> None:
    url = httpx.URL("https://user:pw@api.hubapi.com/x/jane%40example.com/y"
                    "?email=jane.doe@example.com&hapikey=s3cret&limit=10")
    text = safe_url(url)
    assert "s3cret" not in text and "jane.doe" not in text and "pw" not in text
    assert "hapikey=REDACTED" in text and "limit=10" in text
    assert text.startswith("https://api.hubapi.com/x/j***%40example.com/y?")


# -- telemetry off -------------------------------------------------------------------------------


def test_disabled_tracing_hands_out_shared_no_op_objects() -> None:
    telemetry = Telemetry.disabled()
    assert type(telemetry.tracing) is Tracing and not telemetry.enabled
    rt = telemetry.tracing.consume(_record("t", [("traceparent", SAMPLED)]))
    assert rt is NOOP_RECORD
    assert rt.decode() is rt.normalize() is rt.produce("x") is rt
    headers: list[tuple[str, Any]] = [("a", b"1")]
    assert rt.inject(headers) is headers
    assert telemetry.tracing.sink_batch([], operation="op") is NOOP_SCOPE
    assert telemetry.tracing.span("x") is NOOP_SCOPE
    inner = httpx.MockTransport(_ok)
    assert telemetry.http_transport(inner) is inner  # no wrapper at all
    assert telemetry.http_transport(None) is None
    with pytest.raises(RuntimeError):
        telemetry.finished_spans()
