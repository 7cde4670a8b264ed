"""Requests in flight together keep order (property): the batcher's lift / land rules.

A model of the sink with many requests in the air: commands arrive, work is taken whenever the
test likes, and flying work lands in any order. A work item's commands are applied at some
moment while it flies, so the worst case is that any two flying items are applied in either
order. The property: whatever the interleaving, each person's commands are applied in the order
they arrived, and each event command is applied after every attendance of its event that
arrived before it and before every one that arrived after it.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.normalize.command import Attendance, Command, EventComplete
from connector.serde.record import SourceRecord
from connector.sink.batch import Batcher
from connector.sink.work import AttendanceBatch, EventWork, PendingCommand, Work


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pending(offset: int, event: str, body: Any) -> PendingCommand:
    return PendingCommand(SourceRecord("cmds", 0, offset, event.encode(), b"v"),
                          Command(event, "acct", body))


# One step: add an attendance (event, person, state), add an event command, take, land one.
_add = st.tuples(st.just("add"), st.integers(0, 2), st.integers(0, 5),
                 st.sampled_from(["REGISTERED", "CANCELLED", "ATTENDED"]))
_event = st.tuples(st.just("event"), st.integers(0, 2), st.just(0), st.just(""))
_take = st.tuples(st.just("take"), st.booleans(), st.just(0), st.just(""))
_land = st.tuples(st.just("land"), st.integers(0, 50), st.just(0), st.just(""))
_steps = st.lists(st.one_of(_add, _add, _event, _take, _take, _land, _land), max_size=250)


@settings(max_examples=300, deadline=None)
@given(steps=_steps, max_inputs=st.integers(1, 4))
def test_flying_work_never_reorders_a_person_or_an_event_command(
        steps: list[tuple[str, Any, int, str]], max_inputs: int) -> None:
    clock = Clock()
    batcher = Batcher(max_inputs=max_inputs, linger_seconds=0.1, clock=clock,
                      max_wait_seconds=1.0)
    arrived: list[PendingCommand] = []
    flying: list[Work] = []
    applied: list[PendingCommand] = []

    def land(index: int) -> None:
        work = flying.pop(index % len(flying))
        applied.extend(work.items)  # applied at some moment while it flew: now, in any order
        batcher.landed(work)

    for kind, a, b, state in steps:
        clock.now += 0.05
        if kind == "add":
            offset = len(arrived)
            arrived.append(_pending(offset, f"w{a}", Attendance(state, None, f"p{b}@x.io",
                                                                offset)))
            batcher.add(arrived[-1])
        elif kind == "event":
            offset = len(arrived)
            arrived.append(_pending(offset, f"w{a}", EventComplete(offset, offset + 1)))
            batcher.add(arrived[-1])
        elif kind == "take":
            work = batcher.take(spare=True, everything=bool(a))
            if work is not None:
                flying.append(work)
        elif flying:
            land(a)
    while flying or len(batcher):  # drain: take everything that may go, land in turn
        work = batcher.take(everything=True)
        if work is not None:
            flying.append(work)
            continue
        assert flying, "held work that can never go"
        land(len(flying) // 2)

    assert sorted(p.offset for p in applied) == list(range(len(arrived)))
    position = {p.offset: i for i, p in enumerate(applied)}
    for p in arrived:
        for q in arrived:
            if p.offset < q.offset and _ordered(p, q):
                assert position[p.offset] < position[q.offset], (p.command, q.command)


def _ordered(earlier: PendingCommand, later: PendingCommand) -> bool:
    """Whether these two must be applied in arrival order: same event, and the same person or
    one of them an event command."""
    if earlier.command.externalEventId != later.command.externalEventId:
        return False
    a, b = earlier.command.body, later.command.body
    if isinstance(a, Attendance) and isinstance(b, Attendance):
        return a.email == b.email
    return True


def test_a_flying_persons_next_command_waits_but_other_persons_go() -> None:
    clock = Clock()
    batcher = Batcher(max_inputs=2, linger_seconds=0.0, clock=clock)
    for offset, who in enumerate(["a", "b", "a", "c", "d", "e"]):
        batcher.add(_pending(offset, "w", Attendance("REGISTERED", None, f"{who}@x.io", offset)))
    first = batcher.take()  # a, b
    assert isinstance(first, AttendanceBatch)
    second = batcher.take()  # a, c: a is in the air, so nothing of this lane goes yet
    assert second is None
    batcher.landed(first)
    second = batcher.take()
    third = batcher.take()  # d, e: nobody of theirs flies
    assert second is not None and third is not None
    assert [p.offset for p in second.items] == [2, 3]
    assert [p.offset for p in third.items] == [4, 5]


def test_an_event_command_flies_alone_in_its_lane() -> None:
    clock = Clock()
    batcher = Batcher(max_inputs=1, linger_seconds=0.0, clock=clock)
    batcher.add(_pending(0, "w", Attendance("REGISTERED", None, "a@x.io", 0)))
    batcher.add(_pending(1, "w", EventComplete(1, 2)))
    batcher.add(_pending(2, "w", Attendance("ATTENDED", None, "b@x.io", 2)))
    batcher.add(_pending(3, "other", Attendance("ATTENDED", None, "b@x.io", 3)))
    first = batcher.take()
    assert isinstance(first, AttendanceBatch) and first.event.event == "w"
    other = batcher.take()  # another event's lane is independent
    assert other is not None and other.event.event == "other"
    assert batcher.take() is None  # the event command waits for the attendance before it
    batcher.landed(first)
    event = batcher.take()
    assert isinstance(event, EventWork)
    assert batcher.take() is None  # and nothing after it goes while it flies
    batcher.landed(event)
    last = batcher.take()
    assert last is not None and [p.offset for p in last.items] == [2]
