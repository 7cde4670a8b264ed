"""A backfill's planned order (connector.replay.requests): every order HubSpot's outcome depends
on is kept, each request group is contiguous, and the request count batches as the sink does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.normalize.command import (
    Attendance,
    Command,
    EventCancel,
    EventComplete,
    EventUpsert,
)
from connector.replay.requests import RequestCount, order_event, plan_event
from connector.serde.record import SourceRecord
from connector.sink.batch import Batcher
from connector.sink.request import person_of
from connector.sink.work import H_PLAN_SEAL, AttendanceBatch, PendingCommand

STATES = ("REGISTERED", "ATTENDED", "CANCELLED")


def upsert(name: str = "w") -> Command:
    return Command("web-1", "acct", EventUpsert(name, "org", "WEBINAR"))


def attend(person: int, state: str = "REGISTERED", *, by_vid: bool = False,
           event: str = "web-1") -> Command:
    return Command(event, "acct", Attendance(state, person if by_vid else None,
                                             None if by_vid else f"p{person}@example.com", 1))


commands = st.lists(st.one_of(
    st.builds(attend, st.integers(0, 6), st.sampled_from(STATES), by_vid=st.booleans()),
    st.builds(upsert, st.sampled_from(["a", "b"])),
    st.just(Command("web-1", "acct", EventComplete(1, 2))),
    st.just(Command("web-1", "acct", EventCancel())),
    st.just(Command("web-1", "acct", Attendance("NOT-A-STATE", 1, None, 1))),
), max_size=60)


def _person(command: Command) -> str | None:
    body = command.body
    if isinstance(body, Attendance) and body.state in STATES:
        return person_of(body)
    return None


def _event_command(command: Command) -> bool:
    return not isinstance(command.body, Attendance)


@settings(max_examples=300, deadline=None)
@given(commands)
def test_planned_order_keeps_every_order_that_matters(sequence: list[Command]) -> None:
    planned = order_event(list(enumerate(sequence)))
    assert sorted(planned) == list(range(len(sequence)))  # each command once
    position = {index: at for at, index in enumerate(planned)}
    for i, first in enumerate(sequence):
        for j in range(i + 1, len(sequence)):
            second = sequence[j]
            same_person = _person(first) is not None and _person(first) == _person(second)
            if same_person or (_event_command(first) and _event_command(second)):
                assert position[i] < position[j], (first, second)


@settings(max_examples=300, deadline=None)
@given(commands)
def test_attendance_goes_after_the_first_upserts_and_before_completion(
        sequence: list[Command]) -> None:
    ordered = [sequence[i] for i in order_event(list(enumerate(sequence)))]
    kinds = ["attendance" if isinstance(c.body, Attendance) else
             "upsert" if isinstance(c.body, EventUpsert) else "end" for c in ordered]
    if "attendance" not in kinds:
        return
    first, last = kinds.index("attendance"), len(kinds) - 1 - kinds[::-1].index("attendance")
    assert set(kinds[first:last + 1]) == {"attendance"}  # contiguous
    assert "end" not in kinds[:first]  # every complete or cancel after the attendance
    originally_leading = []
    for command in sequence:
        if isinstance(command.body, EventUpsert):
            originally_leading.append(command)
        elif _event_command(command):
            break
    assert kinds[:first] == ["upsert"] * len(originally_leading)


def test_each_round_of_a_group_is_contiguous() -> None:
    # registrations and attendance of 150 people interleaved as they happen live
    live = [c for p in range(150) for c in (attend(p), attend(p, "ATTENDED"))]
    ordered = [live[i] for i in order_event(list(enumerate(live)))]
    states = [c.body.state for c in ordered if isinstance(c.body, Attendance)]
    assert states == ["REGISTERED"] * 150 + ["ATTENDED"] * 150


def test_request_count_batches_as_the_sink_does() -> None:
    count = RequestCount(max_inputs=100)
    for command in [upsert(), *[attend(p) for p in range(250)],
                    *[attend(p, by_vid=True) for p in range(30)],
                    *[attend(p, "ATTENDED") for p in range(120)], attend(0, "ATTENDED")]:
        count.add(command)
    # 3 + 1 registration requests, attendance 100 + 20 (person 0's second attendance joins
    # the 20: the plan seals a request before a person comes again, and marks no seal here)
    assert (count.event_requests, count.attendance_requests) == (1, 3 + 1 + 2)
    assert count.attendance_inputs == 401
    assert count.inputs_per_request == 401 / 6
    assert count.seconds_at(window_limit=3, window_seconds=10) == 30.0


def test_an_event_command_closes_the_events_open_requests() -> None:
    count = RequestCount(max_inputs=100)
    count.add(attend(1))
    count.add(Command("web-1", "acct", EventComplete(1, 2)))
    count.add(attend(2))
    count.add(attend(3, event="web-2"))
    assert (count.event_requests, count.attendance_requests) == (1, 3)


def test_persons_with_a_later_command_fill_the_first_requests_of_their_group() -> None:
    # 150 register; only the last 60 of them attend afterwards
    live = [attend(p) for p in range(150)] + [attend(p, "ATTENDED") for p in range(90, 150)]
    ordered = [live[i] for i in order_event(list(enumerate(live)))]
    registered = [c.body.email for c in ordered[:150] if isinstance(c.body, Attendance)]
    assert registered[:60] == [f"p{p}@example.com" for p in range(90, 150)]
    assert registered[60:] == [f"p{p}@example.com" for p in range(90)]


def test_each_full_request_and_each_groups_last_command_are_marked_to_seal() -> None:
    live = [upsert(), *[c for p in range(150) for c in (attend(p), attend(p, "ATTENDED"))],
            attend(7, by_vid=True), attend(1, "ATTENDED")]  # person 1 attends twice
    planned = plan_event(list(enumerate(live)))
    sealed = [live[i] for i, seal in planned if seal]
    assert [(c.body.state, c.body.email or c.body.vid) for c in sealed
            if isinstance(c.body, Attendance)] == [
        ("REGISTERED", "p99@example.com"), ("REGISTERED", "p149@example.com"),
        ("REGISTERED", 7), ("ATTENDED", "p99@example.com"), ("ATTENDED", "p1@example.com")]
    count = RequestCount(max_inputs=100)
    for index, seal in planned:
        count.add(live[index], seal)
    # registrations 100 + 50 by email, 1 by vid; attendance 100 + 50 + person 1's second
    # (joins the 50, later than their first); after a seal the group starts a new request
    assert (count.event_requests, count.attendance_requests) == (1, 5)


def test_a_request_is_sealed_before_a_person_in_it_comes_again() -> None:
    # the same contact registers twice (two platform people matched to one HubSpot contact)
    live = [attend(1, by_vid=True), attend(2, by_vid=True), attend(1, by_vid=True),
            attend(3, by_vid=True)]
    planned = plan_event(list(enumerate(live)))
    assert [(live[i].body.vid, seal) for i, seal in planned
            if isinstance(live[i].body, Attendance)] == [(1, False), (2, False), (3, True),
                                                         (1, True)]
    count = RequestCount(max_inputs=100)
    for index, seal in planned:
        count.add(live[index], seal)
    assert count.attendance_requests == 2


@settings(max_examples=300, deadline=None)
@given(commands, st.integers(1, 4), st.integers(0, 12))
def test_the_sink_sends_exactly_the_planned_requests_and_holds_nobody_back(
        sequence: list[Command], max_inputs: int, resumed_at: int) -> None:
    """Also when the sink starts mid-way (a resume from a committed offset: what came before
    was applied), on the plan's marks from there."""
    planned = plan_event(list(enumerate(sequence)), max_inputs)[resumed_at:]
    batcher = Batcher(max_inputs=max_inputs, linger_seconds=3600, clock=lambda: 0.0)
    count = RequestCount(max_inputs)
    sent: list[int] = []
    for at, (index, seal) in enumerate(planned):
        headers = [(H_PLAN_SEAL, b"1")] if seal else []
        pending = PendingCommand(SourceRecord("planned", 0, at, b"web-1", b"", headers),
                                 sequence[index])
        try:
            batcher.add(pending)
        except ValueError:
            continue  # invalid attendance: the sink dead-letters it
        count.add(sequence[index], seal)
        assert batcher.deferred_count == 0
        while (work := batcher.pop_ready()) is not None:
            batcher.landed(work)
            if isinstance(work, AttendanceBatch):
                sent.append(len(work.items))
    batcher.seal_all()
    while (work := batcher.pop_ready()) is not None:
        batcher.landed(work)
        if isinstance(work, AttendanceBatch):
            sent.append(len(work.items))
    assert len(sent) == count.attendance_requests
    assert sum(sent) == count.attendance_inputs


def test_a_sink_resumed_mid_request_is_back_on_the_plans_boundaries_at_the_next_mark() -> None:
    # two people register twice; a request holds two: the plan is [p1, p2] [p2', p1']
    live = [attend(1), attend(2), attend(2), attend(1)]
    planned = plan_event(list(enumerate(live)), max_inputs=2)
    batcher = Batcher(max_inputs=2, linger_seconds=3600, clock=lambda: 0.0)
    for at, (index, seal) in enumerate(planned[1:]):  # resumed after p1's first: applied
        headers = [(H_PLAN_SEAL, b"1")] if seal else []
        batcher.add(PendingCommand(SourceRecord("planned", 0, at, b"web-1", b"", headers),
                                   live[index]))
        assert batcher.deferred_count == 0  # p2's second never waits behind a partial group
