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
from typing import Any

from connector.normalize.command import Attendance, Command
from connector.normalize.held import Held, held_from_state, held_to_state
from connector.normalize.person import (
    ATTENDED,
    CANCELLED,
    REGISTERED,
    AttendanceOutcome,
    Participation,
)
from connector.normalize.rules import (
    Identity,
    NormalizeRules,
    Rejection,
    RejectReason,
    contact_properties,
    ended_at,
    identify,
)
from connector.serde.record import SourceRecord

#: webinarId -> the webinar's latest description (the webinar table), or None.
WebinarLookup = Callable[[str], dict[str, Any] | None]

_REGISTRATION = {"Registered": REGISTERED, "RegistrationCancelled": CANCELLED}
#: Union branch name (webinar.platform.v1.Joined) -> action kind (Joined), filled as seen.
_ACTION_KINDS: dict[str, str] = {}
#: Bound of AttendanceNormalizer's memo of identities (emptied when full).
_IDENTITIES_REMEMBERED = 65_536


class Output:
    """What one step produced: commands for the sink, rejections for the dead-letter topic."""

    __slots__ = ("commands", "rejections")

    def __init__(self, commands: list[Command] | None = None,
                 rejections: list[Rejection] | None = None):
        self.commands: list[Command] = [] if commands is None else commands
        self.rejections: list[Rejection] = [] if rejections is None else rejections

    def extend(self, other: Output) -> None:
        self.commands.extend(other.commands)
        self.rejections.extend(other.rejections)

    def __repr__(self) -> str:
        return f"Output(commands={self.commands!r}, rejections={self.rejections!r})"


class AttendanceNormalizer:
    """Attendance state of one input partition."""

    def __init__(self, webinars: WebinarLookup, rules: NormalizeRules | None = None):
        self._webinars = webinars
        self.rules = rules or NormalizeRules()
        self.people: dict[tuple[str, str], Participation] = {}
        self.by_webinar: dict[str, set[str]] = {}
        self.held: dict[str, list[Held]] = {}
        self.expired: set[str] = set()
        self.stream_time = 0
        self._stream_time_written = 0
        self._due: list[tuple[int, str, str]] = []  # (deadline, webinarId, person key)
        #: (webinarId, person key) -> the deadline of their open attendance, as last evaluated.
        #: Entries of `_due` that are not (or no longer) it are stale: popping them is skipped,
        #: since evaluating the person then changes nothing (see `_close_due`).
        self._deadlines: dict[tuple[str, str], int] = {}
        #: webinarId -> (the webinar dict, earliest and latest plausible occurredAt, ended_at):
        #: computed once per version of the webinar (the table replaces the dict on a change).
        self._facts: dict[str, tuple[dict[str, Any], int, int, int | None]] = {}
        self._identities: dict[Any, Identity | tuple[RejectReason, str]] = {}
        self._expiries: list[tuple[int, str]] = []  # (actualEnd + retention, webinarId)
        self._expiry_tracked: set[str] = set()
        #: People changed since the last drain, in the order of their first change (a dict: as
        #: deterministic as sorting them, without the sort's cost on every transaction).
        self._changed_people: dict[tuple[str, str], None] = {}
        self._changed_held: set[str] = set()
        self._changed_expired: set[str] = set()

    # -- inputs ------------------------------------------------------------------------------

    def on_activity(self, datum: dict[str, Any], source: SourceRecord,
                    out: Output | None = None) -> Output:
        """Merge one platform activity; returns what became due (added to `out` if given)."""
        if out is None:
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
        due, expiries = self._due, self._expiries
        if (due and due[0][0] <= self.stream_time) or \
                (expiries and expiries[0][0] < self.stream_time):
            self._close_due(out)
        return out

    def on_webinar(self, webinar_id: str) -> Output:
        """The webinar's metadata arrived or changed: release held activity, close if ENDED."""
        out = Output()
        self._facts.pop(webinar_id, None)
        webinar = self._webinars(webinar_id)
        if webinar is None:
            return out
        for held in self.held.pop(webinar_id, []):
            self._changed_held.add(webinar_id)
            self._apply(held.datum, held.source, webinar, out)
        if ended_at(webinar) is not None:
            self._track_expiry(webinar_id, webinar)
            end = self._webinar_facts(webinar_id, webinar)[3]
            for key in sorted(self.by_webinar.get(webinar_id, ())):
                pkey = (webinar_id, key)
                self._evaluate(pkey, self.people[pkey], webinar, end, out)
        self._close_due(out)
        return out

    def advance(self, stream_time: int) -> Output:
        """Move stream time forward (the runtime's idle punctuation)."""
        self.stream_time = max(self.stream_time, stream_time)
        out = Output()
        self._close_due(out)
        return out

    # -- the rules ---------------------------------------------------------------------------

    def _webinar_facts(self, webinar_id: str,
                       webinar: dict[str, Any]) -> tuple[dict[str, Any], int, int, int | None]:
        facts = self._facts.get(webinar_id)
        if facts is None or facts[0] is not webinar:
            low, high = self.rules.window.bounds(webinar)
            facts = self._facts[webinar_id] = (webinar, low, high, ended_at(webinar))
        return facts

    def _apply(self, datum: dict[str, Any], source: SourceRecord, webinar: dict[str, Any],
               out: Output) -> None:
        occurred_at = datum["occurredAt"]
        webinar_id = datum["webinarId"]
        _, low, high, end = self._webinar_facts(webinar_id, webinar)
        if not low <= occurred_at <= high:
            problem = self.rules.window.check(occurred_at, webinar) or "out of range"
            out.rejections.append(Rejection(RejectReason.TIMESTAMP_OUT_OF_RANGE, problem, source))
            return
        participant = datum["participant"]
        identity = self._identify(participant)
        if not isinstance(identity, Identity):
            out.rejections.append(Rejection(identity[0], identity[1], source))
            return
        if end is not None and webinar_id not in self._expiry_tracked:
            self._track_expiry(webinar_id, webinar)
        pkey = (webinar_id, identity.key)
        person = self.people.get(pkey)
        if person is None:
            person = self._person(pkey, identity)
        stamp = (occurred_at, datum["activityId"])
        if person.vid is None:  # contactProperties only matter for contacts made by email
            person.merge_profile(stamp, participant["firstName"], participant["lastName"],
                                 participant["company"])
        action_name, action = datum["action"]
        kind = _ACTION_KINDS.get(action_name)
        if kind is None:
            kind = _ACTION_KINDS.setdefault(action_name, action_name.rsplit(".", 1)[-1])
        if kind == "Joined":
            person.merge_joined(action["sessionId"], occurred_at)
        elif kind == "Left":
            person.merge_left(action["sessionId"], occurred_at)
        elif kind in _REGISTRATION:
            person.merge_registration(stamp, _REGISTRATION[kind])
        else:  # a newer platform schema with a fifth action: keep it, but visibly
            out.rejections.append(Rejection(RejectReason.UNKNOWN_ACTION,
                                            f"unknown action {action_name}", source))
            return
        if occurred_at > self.stream_time:
            self.stream_time = occurred_at
        self._changed_people[pkey] = None
        self._evaluate(pkey, person, webinar, end, out)

    def _identify(self, participant: dict[str, Any]) -> Identity | tuple[RejectReason, str]:
        """`identify`, remembered by contact id or raw email (the same person comes back)."""
        vid = participant.get("hubspotContactId")
        memo_key: Any = vid if type(vid) is int and vid > 0 else participant.get("email")
        identity = self._identities.get(memo_key)
        if identity is None:
            identity = identify(participant)
            if len(self._identities) >= _IDENTITIES_REMEMBERED:
                self._identities.clear()
            self._identities[memo_key] = identity
        return identity

    def _person(self, pkey: tuple[str, str], identity: Identity) -> Participation:
        person = self.people[pkey] = Participation(identity.vid, identity.email)
        self.by_webinar.setdefault(pkey[0], set()).add(identity.key)
        return person

    def _evaluate(self, pkey: tuple[str, str], person: Participation,
                  webinar: dict[str, Any], end: int | None, out: Output) -> None:
        """Emit what the person's state now calls for, if anything (`end`: the webinar's
        `ended_at`)."""
        outcome: AttendanceOutcome | None
        joined, open_sessions, last_left = person.connections()
        if joined:
            closing = self._closing_end(end, open_sessions, last_left, pkey)
            if closing is False:
                return
            outcome = person.attended_outcome(closing)
        else:
            registration, emitted = person.registration, person.emitted
            if registration is None or (emitted is not None and emitted.state == registration):
                return  # nothing to say, or the same as said (AttendanceOutcome.same_effect)
            outcome = person.registration_outcome()
        if outcome is None or outcome.same_effect(person.emitted):
            return
        person.emitted = outcome
        self._changed_people[pkey] = None
        out.commands.append(self._command(webinar, person, outcome))

    def _closing_end(self, end: int | None, open_sessions: int, last_left: int | None,
                     pkey: tuple[str, str]) -> int | bool | None:
        """The end that closes the person's attendance now (None: all their connections
        ended), or False when it is not closed yet (its deadline is then scheduled, if it has
        one: a connection open before the webinar's end is known has none).

        The webinar's end counts once *stream time* reaches actualEnd, not when the ENDED
        description arrives: a replay then closes each person once, with final times, instead
        of correcting them record by record.
        """
        if end is not None and self.stream_time >= end:
            self._deadlines.pop(pkey, None)
            return end
        if open_sessions:
            if end is None:
                self._deadlines.pop(pkey, None)
            else:
                self._schedule(end, pkey)
            return False
        deadline = (last_left or 0) + self.rules.rejoin_grace_ms
        if end is not None and end < deadline:
            deadline = end
        if self.stream_time < deadline:
            self._schedule(deadline, pkey)
            return False
        self._deadlines.pop(pkey, None)
        return None

    def _schedule(self, deadline: int, pkey: tuple[str, str]) -> None:
        # A deadline that moves back to a value still queued is pushed again (a minority of
        # pushes); the copy pops as stale and is skipped, so no set of queued entries is kept
        # beside the heap.
        if self._deadlines.get(pkey) != deadline:
            self._deadlines[pkey] = deadline
            heapq.heappush(self._due, (deadline, *pkey))

    def _close_due(self, out: Output) -> None:
        """Evaluate the people whose deadline stream time has reached.

        An entry is stale when the person's deadline has moved since it was pushed (a later
        Left, a rejoin) or their attendance closed: it is skipped unless their current deadline
        is due too. Skipping changes no output. A person is evaluated whenever their state
        changes and whenever their webinar ends or its end moves; a webinar re-opened after it
        ended only drops the end as a bound, so their true deadline is never earlier than the
        one recorded. Until it they would evaluate as not closed, and once closed as the same
        outcome again.
        """
        due, people, deadlines = self._due, self.people, self._deadlines
        while due and due[0][0] <= self.stream_time:
            _deadline, webinar_id, key = heapq.heappop(due)
            pkey = (webinar_id, key)
            current = deadlines.get(pkey)
            if current is None or current > self.stream_time:
                continue
            webinar = self._webinars(webinar_id)
            person = people.get(pkey)
            if webinar is not None and person is not None:
                self._evaluate(pkey, person, webinar,
                               self._webinar_facts(webinar_id, webinar)[3], out)
        self._expire_ended()

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
                self._deadlines.pop((webinar_id, key), None)
                self._changed_people[(webinar_id, key)] = None
            self.expired.add(webinar_id)
            self._changed_expired.add(webinar_id)

    @staticmethod
    def _command(webinar: dict[str, Any], person: Participation,
                 outcome: AttendanceOutcome) -> Command:
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
        for webinar_id, key in self._changed_people:
            person = self.people.get((webinar_id, key))
            yield f"p|{webinar_id}|{key}", person.to_state() if person else None
        for webinar_id in sorted(self._changed_held):
            held = self.held.get(webinar_id)
            yield f"h|{webinar_id}", [held_to_state(h) for h in held] if held else None
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
                self.held[rest] = [held_from_state(item) for item in value]
        elif kind == "p":
            webinar_id, _, person_key = rest.partition("|")
            if value is None:
                self.people.pop((webinar_id, person_key), None)
                self.by_webinar.get(webinar_id, set()).discard(person_key)
            else:
                self.people[(webinar_id, person_key)] = Participation.from_state(value)
                self.by_webinar.setdefault(webinar_id, set()).add(person_key)

    def after_restore(self) -> Output:
        """Rebuild what is derived (closure deadlines) once the changelog is read.

        Re-evaluating every person who joined schedules their deadline again (the grace end,
        or actualEnd for a connection still open); anything already due was emitted by the
        previous owner, so this normally returns no command.
        """
        out = Output()
        self._facts.clear()
        for webinar_id in self.by_webinar:
            self._track_expiry(webinar_id, self._webinars(webinar_id) or {})
        for pkey, person in sorted(self.people.items()):
            webinar = self._webinars(pkey[0])
            if person.has_joined and webinar is not None:
                self._evaluate(pkey, person, webinar, self._webinar_facts(pkey[0], webinar)[3],
                               out)
        return out

