"""AttendanceNormalizer: one input partition's attendance state, records in, commands out.

Pure: no Kafka, no clock. The runtime feeds it decoded activity, tells it when webinar
metadata changes, moves its stream time when the partition is quiet, and persists what
`drain_changes` returns to the changelog in the same transaction as the commands.

When a person's ATTENDED is emitted (see the contract and issue #3):
- never while one of their connections is open, unless the webinar has ENDED (actualEnd then
  closes the open connections);
- once no connection is open and `rejoin_grace_ms` of stream time has passed since their last
  Left (a rejoin later re-opens them and yields one corrected ATTENDED when they close again);
- after the webinar ENDED, on every change (a late Left or Joined corrects joinedAt/leftAt).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from connector.normalize.command import Attendance, Command
from connector.normalize.person import ATTENDED, CANCELLED, REGISTERED, Outcome, Person
from connector.normalize.rules import (
    Identity,
    Rejection,
    RejectReason,
    TimeWindow,
    contact_properties,
    identify,
)
from connector.serde import SourceRecord

WebinarLookup = Callable[[str], dict[str, Any] | None]

_REGISTRATION = {"Registered": REGISTERED, "RegistrationCancelled": CANCELLED}


@dataclass(frozen=True)
class NormalizeRules:
    """The tunable parts of the attendance semantics."""

    rejoin_grace_ms: int = 600_000
    ended_retention_ms: int = 72 * 3_600_000
    window: TimeWindow = field(default_factory=TimeWindow)


@dataclass
class Output:
    """What one step produced: commands for the sink, rejections for the dead-letter topic."""

    commands: list[Command] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def extend(self, other: Output) -> None:
        self.commands.extend(other.commands)
        self.rejections.extend(other.rejections)


@dataclass(slots=True)
class Held:
    """An activity waiting for its webinar's metadata."""

    datum: dict[str, Any]
    source: SourceRecord


def ended_at(webinar: dict[str, Any] | None) -> int | None:
    """The webinar's actualEnd once it is ENDED (falls back to the scheduled end)."""
    if webinar is None or webinar.get("status") != "ENDED":
        return None
    end = webinar.get("actualEnd") or webinar.get("scheduledEnd")
    return int(end) if end is not None else None


class AttendanceNormalizer:
    """Attendance state of one input partition."""

    def __init__(self, webinars: WebinarLookup, rules: NormalizeRules | None = None):
        self._webinars = webinars
        self.rules = rules or NormalizeRules()
        self.people: dict[tuple[str, str], Person] = {}
        self.by_webinar: dict[str, set[str]] = {}
        self.held: dict[str, list[Held]] = {}
        self.expired: set[str] = set()
        self.stream_time = 0
        self._stream_time_written = 0
        self._due: list[tuple[int, str, str]] = []  # (deadline, webinarId, person key)
        self._expiries: list[tuple[int, str]] = []  # (actualEnd + retention, webinarId)
        self._expiry_tracked: set[str] = set()
        self._changed_people: set[tuple[str, str]] = set()
        self._changed_held: set[str] = set()
        self._changed_expired: set[str] = set()

    # -- inputs ------------------------------------------------------------------------------

    def on_activity(self, datum: dict[str, Any], source: SourceRecord) -> Output:
        """Merge one platform activity; returns what became due."""
        out = Output()
        webinar_id = datum["webinarId"]
        if webinar_id in self.expired:
            out.rejections.append(Rejection(
                RejectReason.WEBINAR_STATE_EXPIRED,
                f"webinar {webinar_id} ended over the retention period ago; state is gone",
                source))
            return out
        webinar = self._webinars(webinar_id)
        if webinar is None:
            self.held.setdefault(webinar_id, []).append(Held(datum, source))
            self._changed_held.add(webinar_id)
            return out
        self._apply(datum, source, webinar, out)
        out.extend(self._close_due())
        return out

    def on_webinar(self, webinar_id: str) -> Output:
        """The webinar's metadata arrived or changed: release held activity, close if ENDED."""
        out = Output()
        webinar = self._webinars(webinar_id)
        if webinar is None:
            return out
        for held in self.held.pop(webinar_id, []):
            self._changed_held.add(webinar_id)
            self._apply(held.datum, held.source, webinar, out)
        if ended_at(webinar) is not None:
            self._track_expiry(webinar_id, webinar)
            for key in sorted(self.by_webinar.get(webinar_id, ())):
                self._evaluate(webinar_id, key, webinar, out)
        out.extend(self._close_due())
        return out

    def advance(self, stream_time: int) -> Output:
        """Move stream time forward (the runtime's idle punctuation)."""
        self.stream_time = max(self.stream_time, stream_time)
        return self._close_due()

    # -- the rules ---------------------------------------------------------------------------

    def _apply(self, datum: dict[str, Any], source: SourceRecord, webinar: dict[str, Any],
               out: Output) -> None:
        occurred_at = datum["occurredAt"]
        if (problem := self.rules.window.check(occurred_at, webinar)) is not None:
            out.rejections.append(Rejection(RejectReason.TIMESTAMP_OUT_OF_RANGE, problem, source))
            return
        identity = identify(datum["participant"])
        if not isinstance(identity, Identity):
            out.rejections.append(Rejection(identity[0], identity[1], source))
            return
        webinar_id = datum["webinarId"]
        self._track_expiry(webinar_id, webinar)
        person = self._person(webinar_id, identity)
        stamp = (occurred_at, datum["activityId"])
        if person.vid is None:  # contactProperties only matter for contacts made by email
            participant = datum["participant"]
            person.merge_profile(stamp, participant["firstName"], participant["lastName"],
                                 participant["company"])
        action_name, action = datum["action"]
        kind = action_name.rsplit(".", 1)[-1]
        if kind in _REGISTRATION:
            person.merge_registration(stamp, _REGISTRATION[kind])
        elif kind == "Joined":
            person.merge_joined(action["sessionId"], occurred_at)
        elif kind == "Left":
            person.merge_left(action["sessionId"], occurred_at)
        else:  # a newer platform schema with a fifth action: keep it, but visibly
            out.rejections.append(Rejection(RejectReason.UNKNOWN_ACTION,
                                            f"unknown action {action_name}", source))
            return
        self.stream_time = max(self.stream_time, occurred_at)
        self._changed_people.add((webinar_id, identity.key))
        self._evaluate(webinar_id, identity.key, webinar, out)

    def _person(self, webinar_id: str, identity: Identity) -> Person:
        key = (webinar_id, identity.key)
        person = self.people.get(key)
        if person is None:
            person = self.people[key] = Person(identity.vid, identity.email)
            self.by_webinar.setdefault(webinar_id, set()).add(identity.key)
        return person

    def _evaluate(self, webinar_id: str, key: str, webinar: dict[str, Any], out: Output) -> None:
        person = self.people[(webinar_id, key)]
        outcome: Outcome | None
        joined, open_sessions, last_left = person.connections()
        if joined:
            end = self._closing_end(webinar, open_sessions, last_left, webinar_id, key)
            if end is False:
                return
            outcome = person.attended_outcome(end)
        else:
            outcome = person.registration_outcome()
        if outcome is None or outcome.same_effect(person.emitted):
            return
        person.emitted = outcome
        self._changed_people.add((webinar_id, key))
        out.commands.append(self._command(webinar, person, outcome))

    def _closing_end(self, webinar: dict[str, Any], open_sessions: int, last_left: int | None,
                     webinar_id: str, key: str) -> int | bool | None:
        """The end that closes the person's attendance now (None: all their connections
        ended), or False when it is not closed yet (a deadline is then scheduled).

        The webinar's end counts once *stream time* reaches actualEnd, not when the ENDED
        description arrives: a replay then closes each person once, with final times, instead
        of correcting them record by record.
        """
        end = ended_at(webinar)
        if end is not None and self.stream_time >= end:
            return end
        if open_sessions:
            if end is not None:
                heapq.heappush(self._due, (end, webinar_id, key))
            return False
        deadline = (last_left or 0) + self.rules.rejoin_grace_ms
        if end is not None:
            deadline = min(deadline, end)
        if self.stream_time < deadline:
            heapq.heappush(self._due, (deadline, webinar_id, key))
            return False
        return None

    def _close_due(self) -> Output:
        out = Output()
        while self._due and self._due[0][0] <= self.stream_time:
            _deadline, webinar_id, key = heapq.heappop(self._due)
            webinar = self._webinars(webinar_id)
            if webinar is not None and (webinar_id, key) in self.people:
                self._evaluate(webinar_id, key, webinar, out)
        self._expire_ended()
        return out

    def _track_expiry(self, webinar_id: str, webinar: dict[str, Any]) -> None:
        end = ended_at(webinar)
        if end is not None and webinar_id not in self._expiry_tracked:
            self._expiry_tracked.add(webinar_id)
            heapq.heappush(self._expiries, (end + self.rules.ended_retention_ms, webinar_id))

    def _expire_ended(self) -> None:
        """Drop the state of webinars that ended more than the retention ago (stream time)."""
        while self._expiries and self._expiries[0][0] < self.stream_time:
            _, webinar_id = heapq.heappop(self._expiries)
            self._expiry_tracked.discard(webinar_id)
            end = ended_at(self._webinars(webinar_id))
            if end is None or self.stream_time <= end + self.rules.ended_retention_ms:
                self._track_expiry(webinar_id, self._webinars(webinar_id) or {})
                continue  # the webinar was re-opened or its end moved
            for key in self.by_webinar.pop(webinar_id, ()):
                del self.people[(webinar_id, key)]
                self._changed_people.add((webinar_id, key))
            self.expired.add(webinar_id)
            self._changed_expired.add(webinar_id)

    @staticmethod
    def _command(webinar: dict[str, Any], person: Person, outcome: Outcome) -> Command:
        attended = outcome.state == ATTENDED
        return Command(webinar["webinarId"], webinar["accountId"], Attendance(
            state=outcome.state,
            vid=person.vid,
            email=person.email,
            interactionDateTime=outcome.interaction,
            contactProperties=contact_properties(person.profile) if person.vid is None else {},
            joinedAt=outcome.joined_at if attended else None,
            leftAt=outcome.left_at if attended else None,
            attendedMillis=outcome.attended_millis if attended else None,
        ))

    # -- persistence -------------------------------------------------------------------------

    def drain_changes(self) -> Iterator[tuple[str, Any]]:
        """(changelog key, JSON-able value or None for a deletion) for everything changed."""
        for webinar_id, key in sorted(self._changed_people):
            person = self.people.get((webinar_id, key))
            yield f"p|{webinar_id}|{key}", person.to_state() if person else None
        for webinar_id in sorted(self._changed_held):
            held = self.held.get(webinar_id)
            yield f"h|{webinar_id}", [_held_state(h) for h in held] if held else None
        for webinar_id in sorted(self._changed_expired):
            yield f"x|{webinar_id}", 1
        if self.stream_time != self._stream_time_written:
            self._stream_time_written = self.stream_time
            yield "t", self.stream_time
        self._changed_people.clear()
        self._changed_held.clear()
        self._changed_expired.clear()

    def restore(self, key: str, value: Any) -> None:
        """Apply one changelog entry (in changelog order) while restoring a partition."""
        kind, _, rest = key.partition("|")
        if kind == "t":
            self.stream_time = max(self.stream_time, int(value))
        elif kind == "x":
            self.expired.add(rest)
        elif kind == "h":
            if value is None:
                self.held.pop(rest, None)
            else:
                self.held[rest] = [_held_from_state(item) for item in value]
        elif kind == "p":
            webinar_id, _, person_key = rest.partition("|")
            if value is None:
                self.people.pop((webinar_id, person_key), None)
                self.by_webinar.get(webinar_id, set()).discard(person_key)
            else:
                self.people[(webinar_id, person_key)] = Person.from_state(value)
                self.by_webinar.setdefault(webinar_id, set()).add(person_key)

    def after_restore(self) -> Output:
        """Rebuild what is derived (closure deadlines) once the changelog is read.

        Re-evaluating every person who joined schedules their deadline again (the grace end,
        or actualEnd for a connection still open); anything already due was emitted by the
        previous owner, so this normally returns no command.
        """
        out = Output()
        for webinar_id in self.by_webinar:
            self._track_expiry(webinar_id, self._webinars(webinar_id) or {})
        for (webinar_id, key), person in sorted(self.people.items()):
            webinar = self._webinars(webinar_id)
            if person.has_joined and webinar is not None:
                self._evaluate(webinar_id, key, webinar, out)
        return out


def _held_state(held: Held) -> dict[str, Any]:
    s = held.source
    return {"d": held.datum, "src": [s.topic, s.partition, s.offset,
                                     s.key.decode("latin-1") if s.key is not None else None,
                                     s.value.decode("latin-1") if s.value is not None else None,
                                     [[k, v.decode("latin-1") if v is not None else None]
                                      for k, v in s.headers], s.timestamp_ms]}


def _held_from_state(data: dict[str, Any]) -> Held:
    topic, partition, offset, key, value, headers, ts = data["src"]
    datum = dict(data["d"])
    datum["action"] = tuple(datum["action"])
    return Held(datum, SourceRecord(
        topic, partition, offset,
        key.encode("latin-1") if key is not None else None,
        value.encode("latin-1") if value is not None else None,
        [(k, v.encode("latin-1") if v is not None else None) for k, v in headers], ts))
