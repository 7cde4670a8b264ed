"""Batcher: grouping, size and linger limits, per-person order, event barriers (no sleeping)."""

from __future__ import annotations

from typing import Any

import pytest

from connector.hubspot import SubscriberState
from connector.normalize.command import Attendance, Command, EventComplete, EventUpsert
from connector.serde.record import SourceRecord
from connector.sink.batch import Batcher
from connector.sink.offsets import OffsetTracker
from connector.sink.request import EventKey, IdentifierKind
from connector.sink.work import H_PLAN_SEAL, AttendanceBatch, EventWork, PendingCommand, Work


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


_offsets: dict[int, int] = {}


def pending(body: Any, event: str = "w1", partition: int = 0) -> PendingCommand:
    offset = _offsets[partition] = _offsets.get(partition, -1) + 1
    return PendingCommand(SourceRecord("cmds", partition, offset, event.encode(), b"v"),
                          Command(event, "acct", body))


def att(state: str, who: str | int, t: int = 1) -> Attendance:
    if isinstance(who, int):
        return Attendance(state, who, None, t)
    return Attendance(state, None, who, t)


def take(batcher: Batcher, **kwargs: Any) -> Work | None:
    """Take a work item and land it at once (applied one at a time)."""
    work = batcher.take(**kwargs)
    if work is not None:
        batcher.landed(work)
    return work


def drain(batcher: Batcher) -> list[Work]:
    out = []
    while (work := batcher.pop_ready()) is not None:
        batcher.landed(work)
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


def test_a_group_is_sealed_after_the_command_a_backfills_plan_marks_as_its_last() -> None:
    b = Batcher(max_inputs=100, linger_seconds=60, clock=Clock())
    for n in range(3):
        b.add(pending(att("REGISTERED", f"p{n}@x.io")))
    last = pending(att("REGISTERED", "p3@x.io"))
    last.source.headers.append((H_PLAN_SEAL, b"1"))
    b.add(last)
    b.add(pending(att("REGISTERED", "p4@x.io")))
    assert [len(w.items) for w in drain(b)] == [4]  # sealed at the mark, not at 100
    assert len(b) == 1


def test_an_open_group_is_taken_once_it_has_lingered() -> None:
    clock = Clock()
    b = Batcher(max_inputs=100, linger_seconds=0.2, clock=clock)
    b.add(pending(att("REGISTERED", "a@x.io")))
    assert b.next_due() == pytest.approx(1000.2)
    clock.now += 0.1
    assert take(b) is None  # idle traffic waits its linger, not longer
    clock.now += 0.1
    work = take(b)
    assert work is not None and len(work.items) == 1
    assert b.next_due() is None and len(b) == 0


def test_a_lingered_group_is_not_sealed_until_it_is_taken() -> None:
    clock = Clock()
    b = Batcher(max_inputs=3, linger_seconds=0.2, clock=clock)
    b.add(pending(att("REGISTERED", "a@x.io")))
    clock.now += 5  # the budget was spent all along: nobody asked
    b.add(pending(att("REGISTERED", "b@x.io")))
    b.add(pending(att("REGISTERED", "c@x.io")))
    assert [len(w.items) for w in drain(b)] == [3]  # it kept filling


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
    b = Batcher(max_inputs=5, linger_seconds=1, clock=(clock := Clock()), max_wait_seconds=3)
    sent: dict[tuple[str, str], list[int]] = {}
    taken: list[Work] = []
    for n in range(2000):
        event, who = f"w{rng.randrange(4)}", f"p{rng.randrange(20)}@x.io"
        if rng.random() < 0.02:
            b.add(pending(EventComplete(n, n + 1), event=event))
            sent.setdefault((event, "event"), []).append(n)
        else:
            state = rng.choice(["REGISTERED", "CANCELLED", "ATTENDED"])
            b.add(pending(att(state, who, n), event=event))
            sent.setdefault((event, who), []).append(n)
        clock.now += rng.random() * 0.3
        if rng.random() < 0.3:  # the budget frees a slot now and then
            work = take(b)
            if work is not None:
                taken.append(work)
    while (work := take(b, everything=True)) is not None:
        taken.append(work)
    assert len(b) == 0
    applied: dict[tuple[str, str], list[int]] = {}
    for work in taken:
        if isinstance(work, EventWork):
            body = work.pending.command.body
            assert isinstance(body, EventComplete)
            applied.setdefault((work.event.event, "event"), []).append(body.startDateTime)
            continue
        persons = [p.command.body.email for p in work.items]  # type: ignore[union-attr]
        assert len(persons) == len(set(persons)) <= 5  # one input per person per request
        for p in work.items:
            body = p.command.body
            assert isinstance(body, Attendance) and body.email is not None
            applied.setdefault((p.command.externalEventId, body.email), []).append(
                body.interactionDateTime)
    assert applied == sent
    # and every event command sits between its event's earlier and later attendance
    position = {id(p): i for i, w in enumerate(taken) for p in w.items}
    for i, work in enumerate(taken):
        if isinstance(work, EventWork):
            for other in taken:
                for p in other.items:
                    if p.event == work.event and p is not work.pending:
                        assert (p.offset < work.pending.offset) == (position[id(p)] < i)


def interleaved(events: int, per_event: int) -> list[PendingCommand]:
    """Registrations of distinct people, webinars interleaved record by record."""
    return [pending(att("REGISTERED", f"p{n}@x.io", n), event=f"w{e}")
            for n in range(per_event) for e in range(events)]


def test_interleaved_webinars_under_a_tight_budget_send_full_batches() -> None:
    clock = Clock()
    b = Batcher(max_inputs=100, linger_seconds=0.2, clock=clock, max_wait_seconds=10)
    sizes = []
    for n, p in enumerate(interleaved(events=200, per_event=300)):
        b.add(p)
        clock.now += 1 / 20_000  # records arrive at 20k/s ...
        if n % 1000 == 999:  # ... and the budget frees one slot every 50 ms (20 requests/s)
            work = take(b, spare=False)
            if work is not None:
                sizes.append(len(work.items))
    # 200 groups fill at 5 records per slot; the linger (0.2 s) passed long before, yet none
    # goes before it ranks like a full batch (95 % after 0.95 s), then one goes at every slot
    assert len(sizes) == 42 and min(sizes) >= 95 and sizes.count(100) == 41


def test_without_slots_to_spare_a_partial_group_waits_until_it_ranks_like_a_full_one() -> None:
    clock = Clock()
    b = Batcher(max_inputs=100, linger_seconds=0.2, clock=clock, max_wait_seconds=10)
    for n in range(40):
        b.add(pending(att("REGISTERED", f"p{n}@x.io")))
    assert b.next_due(spare=True) == pytest.approx(1000.2)
    assert b.next_due(spare=False) == pytest.approx(1006.0)  # 0.4 full + 6 s / 10 s = 1
    clock.now += 5.9
    assert take(b, spare=False) is None
    clock.now += 0.1
    work = take(b, spare=False)
    assert work is not None and len(work.items) == 40


def test_budget_to_spare_sends_lingered_groups_fullest_first() -> None:
    clock = Clock()
    b = Batcher(max_inputs=100, linger_seconds=0.2, clock=clock, max_wait_seconds=10)
    for n in range(30):
        b.add(pending(att("REGISTERED", f"p{n}@x.io"), event="busy"))
    b.add(pending(att("REGISTERED", "q@x.io"), event="quiet"))
    assert take(b) is None  # nothing full, nothing lingered
    clock.now += 0.2
    sizes = [len(w.items) for w in iter(b.take, None)]
    assert sizes == [30, 1]


def test_a_small_group_is_not_starved_by_busy_ones() -> None:
    clock = Clock()
    b = Batcher(max_inputs=10, linger_seconds=0.2, clock=clock, max_wait_seconds=10)
    b.add(pending(att("REGISTERED", "q@x.io"), event="quiet"))
    waited = None
    for n in range(10_000):
        b.add(pending(att("REGISTERED", f"p{n}@x.io"), event="busy"))
        clock.now += 0.01
        if n % 10 == 9:  # a full busy batch is ready every time a slot frees
            work = take(b, spare=False)
            assert work is not None
            if work.event.event == "quiet":
                waited = clock.now - 1000.0
                break
    assert waited is not None and 9.0 <= waited <= 11.0  # about max_wait, then it goes


def test_an_event_command_and_what_it_sealed_go_before_fuller_batches() -> None:
    clock = Clock()
    b = Batcher(max_inputs=100, linger_seconds=0.2, clock=clock, max_wait_seconds=10)
    for n in range(100):
        b.add(pending(att("REGISTERED", f"p{n}@x.io"), event="busy"))  # one full batch
    b.add(pending(att("REGISTERED", "a@x.io"), event="w1"))
    b.add(pending(EventComplete(1, 2), event="w1"))
    b.add(pending(att("ATTENDED", "a@x.io"), event="w1"))
    order = [(w.event.event, type(w).__name__, len(w.items))
             for w in iter(lambda: take(b, everything=True), None)]
    assert order == [("w1", "AttendanceBatch", 1), ("w1", "EventWork", 1),
                     ("busy", "AttendanceBatch", 100), ("w1", "AttendanceBatch", 1)]


def test_work_put_back_goes_first_in_its_lane() -> None:
    clock = Clock()
    b = Batcher(max_inputs=2, linger_seconds=0.2, clock=clock)
    b.add(pending(att("REGISTERED", "a@x.io", 1)))
    b.add(pending(att("REGISTERED", "b@x.io", 1)))  # sealed: full
    b.add(pending(att("ATTENDED", "a@x.io", 2)))
    first = take(b)
    assert first is not None and len(b) == 1
    b.push_front(first)  # interrupted: it is retried before a's newer command
    assert len(b) == 3
    clock.now += 1
    assert take(b) is first
    rest = take(b)
    assert rest is not None and _order_of([rest]) == [("a@x.io", "ATTENDED")]


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
    b.seal_all()  # lanes of different events are independent: any order between them
    assert sorted(_order_of(drain(b))) == [("b@x.io", "ATTENDED"), ("z@x.io", "REGISTERED")]


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
