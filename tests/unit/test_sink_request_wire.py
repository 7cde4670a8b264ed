"""The sink builds attendance inputs straight from its commands (:func:`subscriber_wire`): the
request body is byte for byte the one the model path (:func:`subscriber`, then the client's own
encoding) gives, for any attendance a command can carry, and it fails the same way."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.hubspot import HubSpotClient, SubscriberState, WireInputs
from connector.normalize.command import Attendance
from connector.sink.request import attendance_inputs, subscriber, subscriber_wire

#: Epoch milliseconds from year 1 to 9999 (what a datetime holds).
EPOCH_MS = st.integers(-62_135_596_800_000 + 86_400_000, 253_402_214_400_000 - 86_400_000)


def body(inputs: Any) -> bytes:
    """The bytes the client sends for these inputs (an email-create request)."""
    sent: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.read())
        return httpx.Response(200, json={"status": "COMPLETE", "results": []})

    with HubSpotClient("pat-na1-test", transport=httpx.MockTransport(answer)) as client:
        client.record_attendance_by_email("555", SubscriberState.ATTEND, inputs)
    return sent[0]


attendances = st.builds(
    Attendance,
    state=st.sampled_from(["REGISTERED", "CANCELLED", "ATTENDED"]),
    vid=st.one_of(st.none(), st.integers(1, 2**53)),
    email=st.one_of(st.none(), st.just(""), st.emails(), st.text(max_size=8).map(
        lambda t: f"  {t}@X.example ")),
    interactionDateTime=EPOCH_MS,
    contactProperties=st.dictionaries(st.sampled_from(["firstname", "lastname", "company"]),
                                      st.text(max_size=10), max_size=3),
    joinedAt=st.one_of(st.none(), st.just(0), EPOCH_MS),
    leftAt=st.one_of(st.none(), st.just(0), EPOCH_MS),
).filter(lambda a: a.vid is not None or bool(a.email))


@settings(max_examples=400, deadline=None)
@given(st.lists(attendances, min_size=1, max_size=5))
def test_direct_inputs_send_the_bytes_the_models_send(listed: list[Attendance]) -> None:
    direct = attendance_inputs(listed)
    assert isinstance(direct, WireInputs)
    assert body(direct) == body([subscriber(a) for a in listed])


def test_an_attendance_naming_no_contact_fails_as_the_model_path_does() -> None:
    nobody = Attendance("REGISTERED", None, "", 1_700_000_000_000)
    with pytest.raises(ValueError, match="neither vid nor email") as direct:
        subscriber_wire(nobody)
    with pytest.raises(ValueError, match="neither vid nor email") as model:
        subscriber(nobody)
    assert str(direct.value) == str(model.value)


def test_values_of_unexpected_types_take_the_model_path() -> None:
    class Name(str):
        pass

    odd = Attendance("REGISTERED", None, "a@example.com", 1_700_000_000_000,
                     contactProperties={"firstname": Name("Ada")})
    plain = Attendance("REGISTERED", 5, None, 1_700_000_000_000)
    assert subscriber_wire(odd) is None
    inputs = attendance_inputs([plain, odd])
    assert not isinstance(inputs, WireInputs)
    assert [type(s).__name__ for s in inputs] == ["MarketingEventSubscriber",
                                                   "MarketingEventEmailSubscriber"]
    assert body(inputs[1:]) == body(WireInputs([{"interactionDateTime": 1_700_000_000_000,
                                                 "email": "a@example.com",
                                                 "contactProperties": {"firstname": "Ada"}}]))


def test_attended_times_are_sent_as_hubspot_instants_and_only_for_attended() -> None:
    attended = Attendance("ATTENDED", 9, None, 1_700_000_000_123, joinedAt=1_700_000_000_123,
                          leftAt=1_700_000_360_999)
    registered = Attendance("REGISTERED", 9, None, 1_700_000_000_123,
                            joinedAt=1_700_000_000_123)
    assert subscriber_wire(attended) == {
        "interactionDateTime": 1_700_000_000_123,
        "properties": {"joinedAt": "2023-11-14T22:13:20.123Z",
                       "leftAt": "2023-11-14T22:19:20.999Z"},
        "vid": 9,
    }
    assert subscriber_wire(registered) == {"interactionDateTime": 1_700_000_000_123, "vid": 9}
