"""The attendance writes' fast path gives the bytes the pydantic + httpx path gives.

Hand-built inputs (:func:`plain_subscriber_wire`) against ``to_wire``, orjson
(:func:`plain_json`) against httpx's ``json=`` encoding, the sent request (body, headers and
their order) against one built with ``json=``, the instant format against ``isoformat``, and
:class:`FromJson` answers against ``json.loads`` + ``model_validate`` (values and errors).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector import __version__
from connector.hubspot import (
    AttendanceProperties,
    BatchResult,
    HubSpotClient,
    MarketingEventEmailSubscriber,
    MarketingEventSubscriber,
    SubscriberEmailResponse,
    SubscriberState,
    UnexpectedResponseError,
)
from connector.hubspot.attendance import plain_subscriber_wire
from connector.hubspot.models import format_instant, to_wire
from connector.hubspot.wire import FromJson, JsonContent, plain_json

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
BASE = "https://api.hubapi.com"
PREFIX = "/marketing/v3/marketing-events"


def httpx_json(body: Any) -> bytes:
    """What httpx's ``json=`` sends (httpx._content.encode_json)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def isoformat_ms(value: datetime) -> str:
    """The former instant format, the reference."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


zones = st.one_of(st.just(UTC), st.integers(-14 * 60, 14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))))
instants = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                        timezones=zones)
text = st.text(max_size=12)


def validated(model: Any) -> Any:
    """Builds ``model`` from keyword arguments (``st.builds`` would add its camelCase aliases)."""
    return lambda kwargs: model(**kwargs)


properties = st.one_of(st.none(), st.fixed_dictionaries({
    "joined_at": st.none() | instants, "left_at": st.none() | instants,
}).map(validated(AttendanceProperties)))
by_vid = st.fixed_dictionaries({
    "vid": st.integers(-2**70, 2**70), "interaction_date_time": st.integers(-2**64, 2**64),
    "properties": properties,
}).map(validated(MarketingEventSubscriber))
by_email = st.fixed_dictionaries({
    "email": text, "interaction_date_time": st.integers(0, 2**63 - 1), "properties": properties,
    "contact_properties": st.none() | st.dictionaries(text, text, max_size=3),
}).map(validated(MarketingEventEmailSubscriber))
subscribers = st.one_of(by_vid, by_email)


# --------------------------------------------------------------------------- instants


@given(instants)
def test_format_instant_is_isoformat_in_milliseconds(value: datetime) -> None:
    assert format_instant(value) == isoformat_ms(value)


def test_format_instant_truncates_and_pads() -> None:
    assert format_instant(datetime(2026, 1, 1, 10, 0, 0, 999_999, tzinfo=UTC)) == \
        "2026-01-01T10:00:00.999Z"
    assert format_instant(datetime(7, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))) == \
        "0007-02-03T02:05:06.000Z"


def test_a_datetime_subclass_formats_itself() -> None:
    class Shifted(datetime):
        def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
            return "custom+00:00"

    value = Shifted(2026, 1, 1, tzinfo=UTC)
    assert format_instant(value) == isoformat_ms(value) == "customZ"


# --------------------------------------------------------------------------- inputs


@settings(max_examples=300)
@given(subscribers)
def test_plain_inputs_are_to_wire_key_for_key(subscriber: Any) -> None:
    wire = plain_subscriber_wire(subscriber)
    assert wire is not None
    assert json.dumps(wire) == json.dumps(to_wire(subscriber))  # same keys, same order


def test_empty_properties_of_an_unvalidated_input_stay_an_empty_object() -> None:
    subscriber = MarketingEventSubscriber.model_construct(
        vid=1, interaction_date_time=2, properties=AttendanceProperties())
    assert plain_subscriber_wire(subscriber) == to_wire(subscriber) == {
        "interactionDateTime": 2, "properties": {}, "vid": 1}


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic warns of the unexpected types
@pytest.mark.parametrize("subscriber", [
    MarketingEventSubscriber.model_construct(vid="12", interaction_date_time=1),
    MarketingEventSubscriber.model_construct(vid=12, interaction_date_time=1.5),
    MarketingEventSubscriber.model_construct(vid=True, interaction_date_time=1),
    MarketingEventEmailSubscriber.model_construct(email="a@b.c", interaction_date_time=1,
                                                  contact_properties={"n": 1e16}),
    MarketingEventEmailSubscriber.model_construct(email="a@b.c", interaction_date_time=1,
                                                  properties={"joinedAt": "x"}),
], ids=["str-vid", "float-time", "bool-vid", "float-property", "dict-properties"])
def test_inputs_holding_other_types_are_left_to_pydantic(subscriber: Any) -> None:
    assert plain_subscriber_wire(subscriber) is None


def test_a_subclass_is_left_to_pydantic() -> None:
    class Tagged(MarketingEventSubscriber):
        tag: str = "t"

    subscriber = Tagged(vid=1, interaction_date_time=2)
    assert plain_subscriber_wire(subscriber) is None
    assert to_wire(subscriber) == {"interactionDateTime": 2, "vid": 1, "tag": "t"}


# --------------------------------------------------------------------------- encoding

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**66, 2**66) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children,
                                                                      max_size=4),
    max_leaves=20)


@settings(max_examples=300)
@given(json_values)
def test_plain_json_is_httpxs_encoding_or_left_to_httpx(body: Any) -> None:
    encoded = plain_json(body)
    if isinstance(encoded, JsonContent):
        assert encoded.content == httpx_json(body)
    else:
        assert encoded is body


def test_every_character_is_escaped_as_httpx_escapes_it() -> None:
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    encoded = plain_json({every: [every]})
    assert isinstance(encoded, JsonContent)
    assert encoded.content == httpx_json({every: [every]})


@pytest.mark.parametrize("body", [
    {"big": 2**64}, {1: "int key"}, {"lone": "\ud800"}, {"when": datetime(2026, 1, 1)},
    {"sub": type("S", (str,), {})("x")},
], ids=["int-beyond-64-bits", "int-key", "lone-surrogate", "datetime", "str-subclass"])
def test_what_orjson_would_write_otherwise_is_left_to_httpx(body: Any) -> None:
    assert plain_json(body) is body


# --------------------------------------------------------------------------- requests


class Recorder:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        request.read()
        return httpx.Response(200, json={"status": "COMPLETE", "results": []})


def reference(path: str, body: Any) -> httpx.Request:
    """The request the client sent before the fast path: httpx's ``json=``, then the token."""
    client = httpx.Client(base_url=BASE, headers={
        "Accept": "application/json", "User-Agent": f"webinar-hubspot-connector/{__version__}"})
    request = client.build_request("POST", PREFIX + path, json=body)
    request.headers["Authorization"] = f"Bearer {TOKEN}"
    return request


def test_an_attendance_write_sends_what_json_would_send() -> None:
    recorder = Recorder()
    client = HubSpotClient(TOKEN, transport=httpx.MockTransport(recorder))
    when = datetime(2026, 1, 1, 10, 0, 0, 123_000, tzinfo=UTC)
    subscribers = [
        MarketingEventEmailSubscriber(email="Zoë@example.com", interaction_date_time=1,
                                      contact_properties={"firstname": "Zoë \"Z\"\n"},
                                      properties=AttendanceProperties(joined_at=when)),
        MarketingEventEmailSubscriber(email="b@example.com", interaction_date_time=2),
    ]
    client.record_attendance_by_email("9 01", SubscriberState.ATTEND, subscribers)
    sent = recorder.requests[-1]
    expected = reference("/9%2001/attendance/attend/email-create",
                         {"inputs": [to_wire(s) for s in subscribers]})
    assert sent.content == expected.content
    assert sent.headers.raw == expected.headers.raw  # the same headers, in the same order
    assert sent.url == expected.url


@pytest.mark.parametrize("subscriber", [
    MarketingEventSubscriber(vid=2**64, interaction_date_time=1),
    MarketingEventSubscriber.model_construct(vid=1, interaction_date_time=1.5),
], ids=["int-beyond-64-bits", "float"])
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_inputs_off_the_fast_path_are_sent_as_before(subscriber: Any) -> None:
    recorder = Recorder()
    client = HubSpotClient(TOKEN, transport=httpx.MockTransport(recorder))
    client.record_attendance("1", SubscriberState.REGISTER, [subscriber])
    expected = reference("/1/attendance/register/create", {"inputs": [to_wire(subscriber)]})
    assert recorder.requests[-1].content == expected.content
    assert recorder.requests[-1].headers.raw == expected.headers.raw


def test_a_lone_surrogate_fails_as_it_did() -> None:
    client = HubSpotClient(TOKEN, transport=httpx.MockTransport(Recorder()))
    subscriber = MarketingEventEmailSubscriber(email="a\ud800@b.c", interaction_date_time=1)
    with pytest.raises(UnicodeEncodeError):
        client.record_attendance_by_email("1", SubscriberState.REGISTER, [subscriber])


# --------------------------------------------------------------------------- answers

BATCH = FromJson(BatchResult[SubscriberEmailResponse])


@pytest.mark.parametrize("body", [
    b'{"status":"COMPLETE","results":[{"email":"a@b.c","vid":1,"extra":1.5}]}',
    b'{"status":"CANCELED","results":[],"errors":[{"subCategory":{"x":[1,2.5e300]},'
    b'"context":{"emails":["a"]},"errors":[{"message":"m","in":"email"}]}],"numErrors":1,'
    b'"startedAt":"2026-01-01T00:00:00.000Z"}',
    b'{"results":[{"email":"x","vid":"12"}],"x":1e400,"y":NaN,"z":123456789012345678901234567890}',
])
def test_from_json_reads_what_json_loads_reads(body: bytes) -> None:
    value, loaded = BATCH.from_json(body), BATCH(json.loads(body))
    assert repr(value) == repr(loaded)  # (NaN is not equal to itself: compared as text)
    assert value.model_dump_json() == loaded.model_dump_json()


@pytest.mark.parametrize(("body", "error"), [
    (b"not json", "JSONDecodeError"),
    (b"", "ValidationError"),
    (b'{"results": 3}', "ValidationError"),
    (b'{"results": []} trailing', "JSONDecodeError"),
])
def test_a_body_from_json_refuses_gets_the_former_verdict(body: bytes, error: str) -> None:
    client = HubSpotClient(TOKEN, transport=httpx.MockTransport(
        lambda request: httpx.Response(200, content=body)))
    subscriber = MarketingEventEmailSubscriber(email="a@b.c", interaction_date_time=1)
    with pytest.raises(UnexpectedResponseError, match=rf"unexpected body \({error}\)"):
        client.record_attendance_by_email("1", SubscriberState.REGISTER, [subscriber])


def test_a_body_with_a_byte_order_mark_is_read_as_before() -> None:
    body = b'\xef\xbb\xbf{"status":"COMPLETE","results":[{"email":"a@b.c","vid":7}]}'
    client = HubSpotClient(TOKEN, transport=httpx.MockTransport(
        lambda request: httpx.Response(200, content=body)))
    subscriber = MarketingEventEmailSubscriber(email="a@b.c", interaction_date_time=1)
    answer = client.record_attendance_by_email("1", SubscriberState.REGISTER, [subscriber])
    assert answer.value == BATCH(json.loads(body))
