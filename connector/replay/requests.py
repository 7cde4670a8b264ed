"""A backfill's requests, planned: its commands put in the order that lets the sink fill each
request, with every order HubSpot's outcome depends on kept (pure).

Live, a webinar's commands trickle in interleaved with every other webinar's, and the sink sends
what has gathered. A backfill knows its whole input first, so it hands the sink one event's
commands after another, each event's grouped the way the sink batches them (event, state,
identifier kind); the sink then finds full groups at once instead of hundreds of thin ones.

The order of one event's commands (:func:`order_event`):

* its event commands (upserts, ``EventComplete``, ``EventCancel``) keep their order among
  themselves (the last upsert's properties win, a cancel and an upsert after it stay so);
* the upserts before the first complete or cancel go first, so the event exists before its
  attendance; the complete or cancel and what follows it go last, after all of the event's
  attendance (a completion comes after its attendance; an attendance the platform reported
  after the webinar ended gives HubSpot the same outcome before it, as the contract's "any
  delivery order" says);
* the attendance in between goes in *rounds*: a person's first command in round 0, their next in
  round 1, and so on; rounds go in order, so each person's commands keep their order (the sink's
  own per-person order then holds them in separate requests); within a round, by batch group
  (state, identifier kind), in order of first appearance; and in a group, the persons who have
  a later command first: they fill the group's first, full requests, and its last, partial
  request holds persons with nothing after it (the sink holds a person's next command back
  until the request holding their previous one is sealed, and that would split their next
  group);
* a command that names no valid state or person goes first of the attendance (the sink
  dead-letters it; it orders nothing).

Where each request ends is planned too (:func:`plan_event` marks the command after which the
sink seals its group, :data:`~connector.sink.work.H_PLAN_SEAL`): where it is full, at a group's
last command, and where a person comes again while an earlier command of theirs sits in a
request still open (the sink would hold the newer one back until that request is sealed, by
age: a partial request sent late and the held ones split into another). So the sink sends
exactly the planned requests, which :class:`RequestCount` counts; and a sink that starts
mid-request (a resume from a committed offset) is back on the plan's boundaries at the next mark.

Different events are independent (HubSpot applies them separately), so events may go one after
another in any order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from connector.normalize.command import Attendance, Command, EventUpsert
from connector.sink.request import identifier_kind, person_of, subscriber_state

__all__ = ["RequestCount", "order_event", "plan_event"]

T = TypeVar("T")

#: (state, identifier kind) of an attendance command; None: not a valid attendance
Group = tuple[str, str] | None


def _group_and_person(attendance: Attendance) -> tuple[Group, str | None]:
    try:
        return (subscriber_state(attendance).value, identifier_kind(attendance).value), \
            person_of(attendance)
    except ValueError:
        return None, None


def order_event(commands: Sequence[tuple[T, Command]], max_inputs: int = 100) -> list[T]:
    """One event's items (each with its command, in their original order) in planned order
    (see the module docstring)."""
    return [item for item, _ in plan_event(commands, max_inputs)]


def plan_event(commands: Sequence[tuple[T, Command]],
               max_inputs: int = 100) -> list[tuple[T, bool]]:
    """:func:`order_event`, each item with whether its batch group's request is sealed after
    it (see the module docstring; requests of at most ``max_inputs``)."""
    events = [(item, command) for item, command in commands
              if not isinstance(command.body, Attendance)]
    leading = next((at for at, (_, command) in enumerate(events)
                    if not isinstance(command.body, EventUpsert)), len(events))
    invalid: list[T] = []
    attendance: list[tuple[T, Group, str]] = []
    total: Counter[str] = Counter()
    for item, command in commands:
        body = command.body
        if not isinstance(body, Attendance):
            continue
        group, person = _group_and_person(body)
        if group is None or person is None:
            invalid.append(item)
            continue
        attendance.append((item, group, person))
        total[person] += 1
    ordered = _in_rounds(attendance, total)
    seals = _seals(ordered, max_inputs)
    return [(item, False) for item, _ in events[:leading]] + \
        [(item, False) for item in invalid] + \
        [(item, at in seals) for at, (item, _, _) in enumerate(ordered)] + \
        [(item, False) for item, _ in events[leading:]]


def _in_rounds(attendance: list[tuple[T, Group, str]],
               total: Counter[str]) -> list[tuple[T, Group, str]]:
    """Round by round, group by group, persons with more to come first."""
    rounds: list[dict[Group, tuple[list[tuple[T, Group, str]], list[tuple[T, Group, str]]]]] = []
    seen: Counter[str] = Counter()
    for entry in attendance:
        person = entry[2]
        round_ = seen[person]
        seen[person] += 1
        if round_ == len(rounds):
            rounds.append({})
        more, last = rounds[round_].setdefault(entry[1], ([], []))
        (more if seen[person] < total[person] else last).append(entry)
    return [entry for groups in rounds for more, last in groups.values()
            for entry in more + last]


@dataclass
class _Request:
    """A request being filled: its persons and the position of its last command."""

    persons: list[str] = field(default_factory=list)
    last: int = -1


def _seals(ordered: list[tuple[T, Group, str]], max_inputs: int) -> set[int]:
    """Positions after which the sink is to seal the group (see the module docstring)."""
    open_: dict[Group, _Request] = {}
    holding: dict[str, Group] = {}  # person -> the group whose open request holds them
    seals: set[int] = set()

    def close(group: Group) -> None:
        request = open_.pop(group)
        for person in request.persons:
            holding.pop(person, None)
        seals.add(request.last)

    for at, (_, group, person) in enumerate(ordered):
        if person in holding:
            close(holding[person])
        request = open_.setdefault(group, _Request())
        request.persons.append(person)
        request.last = at
        holding[person] = group
        if len(request.persons) >= max_inputs:
            # (the sink seals a full group itself; the mark realigns a sink that started
            # mid-request: a resume from a committed offset, a partial group sent by age)
            close(group)
    for group in list(open_):
        close(group)
    return seals


@dataclass
class RequestCount:
    """The requests a planned sequence of commands costs, batched as the sink batches it: per
    event, a group (state, identifier kind) fills a request up to ``max_inputs`` inputs or
    until a command marked to seal it; an event command is a request of its own and seals the
    event's open requests (they go before it)."""

    max_inputs: int
    event_requests: int = 0
    attendance_requests: int = 0
    attendance_inputs: int = 0
    #: requests per platform account (externalAccountId)
    by_account: Counter[str] = field(default_factory=Counter)
    _open: dict[tuple[str, str], dict[Group, int]] = field(default_factory=dict)

    def add(self, command: Command, seal: bool = False) -> None:
        """The next command of the sequence (``seal``: its group's request goes after it)."""
        event = (command.externalAccountId, command.externalEventId)
        body = command.body
        if not isinstance(body, Attendance):
            self._open.pop(event, None)
            self.event_requests += 1
            self.by_account[command.externalAccountId] += 1
            return
        group, person = _group_and_person(body)
        if group is None or person is None:
            return  # the sink dead-letters it: no request
        groups = self._open.setdefault(event, {})
        if group not in groups:
            self.attendance_requests += 1
            self.by_account[command.externalAccountId] += 1
            groups[group] = 0
        groups[group] += 1
        self.attendance_inputs += 1
        if seal or groups[group] >= self.max_inputs:
            del groups[group]

    @property
    def requests(self) -> int:
        return self.event_requests + self.attendance_requests

    @property
    def inputs_per_request(self) -> float:
        """Attendance inputs per attendance request (``max_inputs``: every request full)."""
        return self.attendance_inputs / self.attendance_requests \
            if self.attendance_requests else 0.0

    def seconds_at(self, window_limit: int, window_seconds: float, *,
                   per_account: bool = False) -> float:
        """How long the requests take at ``window_limit`` requests per ``window_seconds``: for
        all of them together, or (``per_account``: each has a budget of its own, app mode)
        for the account with the most."""
        requests = max(self.by_account.values(), default=0) if per_account else self.requests
        return math.ceil(requests / window_limit) * window_seconds if requests else 0.0
