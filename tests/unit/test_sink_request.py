"""Commands -> request parts (connector.sink.request): the key tuples, groups, inputs."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.hubspot import (
    AttendanceProperties,
    MarketingEventEmailSubscriber,
    MarketingEventSubscriber,
    SubscriberState,
)
from connector.normalize.command import Attendance, Command, EventCancel
from connector.sink.request import (
    EventKey,
    GroupKey,
    IdentifierKind,
    group_key,
    identifier_kind,
    instant,
    subscriber,
)

T0 = 1_767_261_600_123


def attendance(state: str = "REGISTERED", vid: int | None = None,
               email: str | None = "a@b.c", **times: int | None) -> Command:
    return Command("w1", "acct", Attendance(state, vid, email, T0, {"firstname": "A"},
                                            joinedAt=times.get("joined"),
                                            leftAt=times.get("left")))


# --------------------------------------------------------------------------- keys


def test_event_keys_are_values() -> None:
    key = EventKey.of(attendance())
    assert key == EventKey("acct", "w1") == EventKey(account="acct", event="w1")
    assert hash(key) == hash(EventKey("acct", "w1"))
    assert (key.account, key.event) == ("acct", "w1")
    assert type(key) is EventKey
    assert repr(key) == "EventKey(account='acct', event='w1')"
    assert pickle.loads(pickle.dumps(key)) == key
    with pytest.raises(AttributeError):
        key.event = "w2"  # type: ignore[misc]


def test_a_group_is_event_state_and_kind() -> None:
    key = group_key(attendance("ATTENDED", vid=7))
    assert key == GroupKey(EventKey("acct", "w1"), SubscriberState.ATTEND, IdentifierKind.VID)
    assert type(key) is GroupKey and type(key.event) is EventKey
    assert key.event == EventKey("acct", "w1")
    assert key.state is SubscriberState.ATTEND and key.kind is IdentifierKind.VID
    assert group_key(attendance("CANCELLED")).kind is IdentifierKind.EMAIL
    assert {key: 1}[GroupKey(EventKey("acct", "w1"), SubscriberState.ATTEND,
                             IdentifierKind.VID)] == 1


def test_what_forms_no_group_is_refused() -> None:
    with pytest.raises(ValueError, match="not an attendance command"):
        group_key(Command("w1", "acct", EventCancel()))
    with pytest.raises(ValueError, match="unknown attendance state 'LEFT'"):
        group_key(attendance("LEFT"))
    with pytest.raises(ValueError, match="neither vid nor email"):
        group_key(attendance(email=""))
    with pytest.raises(ValueError, match="neither vid nor email"):
        identifier_kind(Attendance("REGISTERED", None, None, T0))


# --------------------------------------------------------------------------- inputs


@given(st.integers(-62_135_596_800_000 + 86_400_000, 253_402_300_799_999 - 86_400_000))
def test_instant_is_fromtimestamp_in_utc(epoch_ms: int) -> None:
    assert instant(epoch_ms) == datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    assert instant(epoch_ms).tzinfo is UTC


def test_an_input_by_vid() -> None:
    command = attendance("ATTENDED", vid=7, joined=T0, left=T0 + 60_000)
    assert subscriber(command.body) == MarketingEventSubscriber(  # type: ignore[arg-type]
        vid=7, interaction_date_time=T0, properties=AttendanceProperties(
            joined_at=instant(T0), left_at=instant(T0 + 60_000)))


def test_an_input_by_email_keeps_contact_properties_and_trims() -> None:
    command = Command("w1", "acct", Attendance("ATTENDED", None, "  A@B.c ", T0, {"n": "v"},
                                               joinedAt=0, leftAt=5))
    assert subscriber(command.body) == MarketingEventEmailSubscriber(  # type: ignore[arg-type]
        email="A@B.c", interaction_date_time=T0, contact_properties={"n": "v"},
        properties=AttendanceProperties(joined_at=instant(0), left_at=instant(5)))


@pytest.mark.parametrize(("state", "joined", "left"), [
    ("REGISTERED", T0, T0), ("ATTENDED", None, None), ("ATTENDED", 0, None),
])
def test_times_only_for_attended_and_only_when_set(state: str, joined: int | None,
                                                   left: int | None) -> None:
    body = Attendance(state, None, "a@b.c", T0, {}, joinedAt=joined, leftAt=left)
    made = subscriber(body)
    assert made.properties is None
    assert isinstance(made, MarketingEventEmailSubscriber) and made.contact_properties is None


def test_an_input_naming_no_contact_is_refused() -> None:
    with pytest.raises(ValueError, match="neither vid nor email"):
        subscriber(Attendance("ATTENDED", None, "", T0, {}, joinedAt=T0))
