"""Batcher: grouping, size and linger limits, per-person order, event barriers (no sleeping)."""

from __future__ import annotations

from typing import Any

import pytest

from connector.hubspot import SubscriberState
from connector.normalize.command import Attendance, Command, EventComplete, EventUpsert
from connector.serde import SourceRecord
from connector.sink.batch import AttendanceBatch, Batcher, EventWork, Pending, Work
from connector.sink.offsets import OffsetTracker
from connector.sink.request import EventKey, IdentifierKind


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


_offsets: dict[int, int] = {}


def pending(body: Any, event: str = "w1", partition: int = 0) -> Pending:
    offset = _offsets[partition] = _offsets.get(partition, -1) + 1
    return Pending(SourceRecord("cmds", partition, offset, event.encode(), b"v"),
                   Command(event, "acct", body))


def att(state: str, who: str | int, t: int = 1) -> Attendance:
    if isinstance(who, int):
        return Attendance(state, who, None, t)
    return Attendance(state, None, who, t)


def drain(batcher: Batcher) -> list[Work]:
    out = []
    while (work := batcher.pop_ready()) is not None:
        out.append(work)
    return out


def test_groups_by_event_state_and_identifier_kind() -> None:
    b = Batcher(max_inputs=10, linger_seconds=1, clock=Clock())
    for p in [pending(att("REGISTERED", "a@x.io")), pending(att("REGISTERED", 7)),
              pending(att("ATTENDED", "b@x.io")), pending(att("REGISTERED", "c@x.io")),
              pending(att("REGISTERED", "d@x.io"), event="w2")]:
        b.add(p)
    b.seal_all()
    keys = [(w.key.event.event, w.key.state, w.key.kind, len(w.items)) for w in drain(b)
            if isinstance(w, AttendanceBatch)]
    assert sorted(keys) == sorted([
        ("w1", SubscriberState.REGISTER, IdentifierKind.EMAIL, 2),
        ("w1", SubscriberState.REGISTER, IdentifierKind.VID, 1),
        ("w1", SubscriberState.ATTEND, IdentifierKind.EMAIL, 1),
        ("w2", SubscriberState.REGISTER, IdentifierKind.EMAIL, 1),
    ])


def test_a_full_group_is_sealed_at_max_inputs() -> None:
    b = Batcher(max_inputs=3, linger_seconds=60, clock=Clock())
    for n in range(7):
        b.add(pending(att("REGISTERED", f"p{n}@x.io")))
    ready = drain(b)
    assert [len(w.items) for w in ready] == [3, 3]
    assert len(b) == 1


def test_linger_seals_a_partial_group_only_when_due() -> None:
    clock = Clock()
    b = Batcher(max_inputs=100, linger_seconds=0.2, clock=clock)
    b.add(pending(att("REGISTERED", "a@x.io")))
    assert b.next_due() == pytest.approx(1000.2)
    clock.now += 0.1
    b.seal_due()
    assert drain(b) == []
    clock.now += 0.1
    b.seal_due()
    assert [len(w.items) for w in drain(b)] == [1]
    assert b.next_due() is None


def _order_of(ready: list[Work]) -> list[tuple[str, str]]:
    out = []
    for work in ready:
        for p in work.items:
            body = p.command.body
            if isinstance(body, Attendance):
                out.append((body.email or str(body.vid), body.state))
            else:
                out.append(("event", type(body).__name__))
    return out


def test_a_persons_newer_command_never_precedes_the_older_one() -> None:
    b = Batcher(max_inputs=3, linger_seconds=60, clock=Clock())
    b.add(pending(att("REGISTERED", "a@x.io", 1)))
    b.add(pending(att("REGISTERED", "b@x.io", 1)))
    b.add(pending(att("CANCELLED", "a@x.io", 2)))   # a's register group is still open
    b.add(pending(att("REGISTERED", "a@x.io", 3)))  # deferred behind the cancel
    assert b.deferred_count == 2
    assert drain(b) == []  # nothing forced out early: conflicts do not make small batches
    b.add(pending(att("REGISTERED", "c@x.io", 1)))  # register group full -> sealed
    b.seal_all()
    order = [x for x in _order_of(drain(b)) if x[0] == "a@x.io"]
    assert order == [("a@x.io", "REGISTERED"), ("a@x.io", "CANCELLED"),
                     ("a@x.io", "REGISTERED")]
    assert len(b) == 0


def test_every_ready_item_respects_per_person_order_under_random_traffic() -> None:
    import random

    rng = random.Random(4)
    b = Batcher(max_inputs=5, linger_seconds=1, clock=(clock := Clock()))
    sent: dict[str, list[int]] = {}
    for n in range(500):
        who = f"p{rng.randrange(20)}@x.io"
        state = rng.choice(["REGISTERED", "CANCELLED", "ATTENDED"])
        b.add(pending(att(state, who, n)))
        sent.setdefault(who, []).append(n)
        clock.now += rng.random() * 0.3
        b.seal_due()
    b.seal_all()
    applied: dict[str, list[int]] = {}
    for work in drain(b):
        persons = [p.command.body.email for p in work.items]  # type: ignore[union-attr]
        assert len(persons) == len(set(persons)) <= 5  # one input per person per request
        for p in work.items:
            body = p.command.body
            assert isinstance(body, Attendance) and body.email is not None
            applied.setdefault(body.email, []).append(body.interactionDateTime)
    assert applied == sent


def test_event_commands_split_the_events_attendance_around_them() -> None:
    b = Batcher(max_inputs=100, linger_seconds=60, clock=Clock())
    b.add(pending(att("REGISTERED", "a@x.io", 1)))
    b.add(pending(att("REGISTERED", "b@x.io", 1)))
    b.add(pending(att("ATTENDED", "a@x.io", 2)))  # deferred
    b.add(pending(att("REGISTERED", "z@x.io", 1), event="other"))
    b.add(pending(EventComplete(1, 2)))
    b.add(pending(att("ATTENDED", "b@x.io", 3)))
    ready = drain(b)
    assert _order_of(ready) == [("a@x.io", "REGISTERED"), ("b@x.io", "REGISTERED"),
                                ("a@x.io", "ATTENDED"), ("event", "EventComplete")]
    assert isinstance(ready[-1], EventWork)
    b.seal_all()
    assert _order_of(drain(b)) == [("z@x.io", "REGISTERED"), ("b@x.io", "ATTENDED")]


def test_extract_event_keeps_upserts_and_returns_offset_order() -> None:
    b = Batcher(max_inputs=2, linger_seconds=60, clock=Clock())
    first = pending(att("REGISTERED", "a@x.io", 1))
    b.add(first)
    b.add(pending(att("REGISTERED", "b@x.io", 1)))  # sealed (full)
    b.add(pending(att("CANCELLED", "a@x.io", 2)))
    upsert = pending(EventUpsert("W", "O", "WEBINAR"))
    b.add(upsert)
    b.add(pending(att("REGISTERED", "c@x.io", 1), event="other"))
    taken = b.extract_event(EventKey("acct", "w1"))
    assert [p.offset for p in taken] == sorted(p.offset for p in taken)
    assert len(taken) == 3 and taken[0] is first
    b.seal_all()
    assert next(w.items[0] for w in drain(b)) is upsert
    assert len(b) == 0


def test_drop_partition_forgets_only_that_partition() -> None:
    b = Batcher(max_inputs=100, linger_seconds=60, clock=Clock())
    b.add(pending(att("REGISTERED", "a@x.io"), event="w1", partition=0))
    b.add(pending(att("REGISTERED", "a@x.io"), event="w9", partition=1))
    assert len(b.drop_partition(("cmds", 0))) == 1
    b.seal_all()
    assert [w.items[0].partition for w in drain(b)] == [("cmds", 1)]


def test_an_attendance_without_contact_is_rejected_before_it_is_held() -> None:
    b = Batcher(max_inputs=100, linger_seconds=60, clock=Clock())
    with pytest.raises(ValueError, match="neither vid nor email"):
        b.add(pending(Attendance("REGISTERED", None, None, 1)))
    assert len(b) == 0


def test_offsets_commit_only_up_to_the_lowest_unfinished() -> None:
    tracker = OffsetTracker()
    assert tracker.position() is None
    for offset in range(10, 15):
        tracker.seen(offset)
    for offset in (10, 11, 13, 14):
        tracker.finished(offset)
    assert tracker.to_commit() == 12
    tracker.committed = 12
    assert tracker.to_commit() is None
    tracker.finished(12)
    assert tracker.to_commit() == 15
