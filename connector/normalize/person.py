"""One person's activity around one webinar, merged so that delivery order does not matter.

Every merge is idempotent and commutative: a duplicate activity (same activityId) merges to the
same state, and any order of the same activities gives the same state. That is how dedupe by
activityId, late records and Left-before-Joined are handled without remembering activity ids:

- registration: the latest Registered/RegistrationCancelled by (occurredAt, activityId) wins;
- connections: per sessionId the Joined and the Left time (the same activity gives the same time);
- profile (names, company): from the latest activity by (occurredAt, activityId) that has them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REGISTERED, CANCELLED, ATTENDED = "REGISTERED", "CANCELLED", "ATTENDED"

Stamp = tuple[int, str]  # (occurredAt, activityId): the contract's total order of activities


# Not frozen (a frozen dataclass's __init__ costs several times more, and one is made per
# evaluation). Read-only. init=False and an __init__ of its own: compiled, mypyc runs this
# __init__ as C, where the one `dataclass` generates stays interpreted (once per record).
@dataclass(slots=True, init=False)
class AttendanceOutcome:
    """What HubSpot should show for the person now, as the normalizer would emit it."""

    state: str
    interaction: int
    joined_at: int | None
    left_at: int | None
    attended_millis: int | None

    def __init__(self, state: str, interaction: int, joined_at: int | None = None,
                 left_at: int | None = None, attended_millis: int | None = None):
        self.state = state
        self.interaction = interaction
        self.joined_at = joined_at
        self.left_at = left_at
        self.attended_millis = attended_millis

    def same_effect(self, other: AttendanceOutcome | None) -> bool:
        """True when emitting self after `other` would change nothing a user can see."""
        if other is None or other.state != self.state:
            return False
        if self.state != ATTENDED:
            return True
        return (self.joined_at, self.left_at, self.attended_millis) == \
            (other.joined_at, other.left_at, other.attended_millis)


@dataclass(slots=True, init=False)  # its own __init__, as AttendanceOutcome's
class Participation:
    """Merged activity of one (webinar, person) plus what was last emitted for them."""

    vid: int | None
    email: str | None
    #: [firstName, lastName, company] as the platform sent them (mapped only when emitting).
    profile: list[str | None]
    profile_stamp: Stamp | None
    registration: str | None
    registration_stamp: Stamp | None
    #: sessionId -> [joinedAt, leftAt]; either may be None until its activity arrives.
    sessions: dict[str, list[int | None]]
    emitted: AttendanceOutcome | None

    def __init__(self, vid: int | None, email: str | None,
                 profile: list[str | None] | None = None, profile_stamp: Stamp | None = None,
                 registration: str | None = None, registration_stamp: Stamp | None = None,
                 sessions: dict[str, list[int | None]] | None = None,
                 emitted: AttendanceOutcome | None = None):
        self.vid = vid
        self.email = email
        self.profile = [] if profile is None else profile
        self.profile_stamp = profile_stamp
        self.registration = registration
        self.registration_stamp = registration_stamp
        self.sessions = {} if sessions is None else sessions
        self.emitted = emitted

    # -- merging ---------------------------------------------------------------------------

    def merge_profile(self, stamp: Stamp, first: str | None, last: str | None,
                      company: str | None) -> None:
        """Keep the profile of the latest activity that has one."""
        if (first or last or company) and (self.profile_stamp is None or
                                           stamp > self.profile_stamp):
            self.profile, self.profile_stamp = [first, last, company], stamp

    def merge_registration(self, stamp: Stamp, state: str) -> None:
        if self.registration_stamp is None or stamp > self.registration_stamp:
            self.registration, self.registration_stamp = state, stamp

    def merge_joined(self, session_id: str, at: int) -> None:
        times = self.sessions.setdefault(session_id, [None, None])
        times[0] = at if times[0] is None else min(times[0], at)

    def merge_left(self, session_id: str, at: int) -> None:
        times = self.sessions.setdefault(session_id, [None, None])
        times[1] = at if times[1] is None else max(times[1], at)

    # -- reading ---------------------------------------------------------------------------

    def connections(self) -> tuple[bool, int, int | None]:
        """(joined at least once, connections open now, latest Left) in one pass."""
        joined, open_now, last_left = False, 0, None
        for joined_at, left_at in self.sessions.values():
            if joined_at is None:
                continue  # a Left whose Joined has not arrived yet
            joined = True
            if left_at is None:
                open_now += 1
            elif last_left is None or left_at > last_left:
                last_left = left_at
        return joined, open_now, last_left

    @property
    def has_joined(self) -> bool:
        return any(joined is not None for joined, _ in self.sessions.values())

    @property
    def open_sessions(self) -> int:
        """Connections that joined and have not left (yet, or ever: crashed clients)."""
        return sum(1 for joined, left in self.sessions.values()
                   if joined is not None and left is None)

    def attendance(self, actual_end: int | None) -> tuple[int, int, int] | None:
        """(joinedAt, leftAt, attended millis) if every connection has ended, else None.

        A connection without a Left ends at the webinar's actualEnd; before the webinar has
        ended such a connection is still open and the attendance is not final.

        leftAt is the latest of those ends, as the contract says ("their latest Left, or the
        webinar's actualEnd for a connection that never left"), even for a connection whose
        Joined came after its end (a second device joining after the webinar ended): such a
        connection adds no attended time, and its Joined is not a Left.
        """
        intervals = []
        ends = []
        for joined, left in self.sessions.values():
            if joined is None:
                continue  # a Left whose Joined has not arrived yet
            end = left if left is not None else actual_end
            if end is None:
                return None
            intervals.append((joined, max(joined, end)))
            ends.append(end)
        if not intervals:
            return None
        intervals.sort()
        total, (start, stop) = 0, intervals[0]
        for lo, hi in intervals[1:]:
            if lo > stop:
                total += stop - start
                start, stop = lo, hi
            else:
                stop = max(stop, hi)
        total += stop - start
        return intervals[0][0], max(ends), total

    def registration_outcome(self) -> AttendanceOutcome | None:
        if self.registration is None or self.registration_stamp is None:
            return None
        return AttendanceOutcome(self.registration, self.registration_stamp[0])

    def attended_outcome(self, actual_end: int | None) -> AttendanceOutcome | None:
        """ATTENDED with final times, or None while a connection may still be open.

        interactionDateTime is leftAt, but never earlier than what was emitted before for this
        person: HubSpot keeps a contact's latest interaction as its state, so ATTENDED must come
        after a REGISTERED/CANCELLED sent earlier, and a correction after the ATTENDED it fixes.
        """
        times = self.attendance(actual_end)
        if times is None:
            return None
        joined_at, left_at, millis = times
        interaction = left_at if self.emitted is None else max(left_at,
                                                               self.emitted.interaction + 1)
        return AttendanceOutcome(ATTENDED, interaction, joined_at, left_at, millis)

    # -- persistence -----------------------------------------------------------------------

    def to_state(self) -> list[Any]:
        """A JSON-able snapshot for the changelog: a list in `_STATE_FIELDS` order (written for
        every changed person in every transaction; a list is cheaper to build and encode than
        the dict earlier versions wrote, which `from_state` still reads)."""
        emitted = self.emitted
        return [self.vid, self.email, self.profile, self.profile_stamp, self.registration,
                self.registration_stamp, self.sessions,
                (emitted.state, emitted.interaction, emitted.joined_at, emitted.left_at,
                 emitted.attended_millis) if emitted else None]

    @classmethod
    def from_state(cls, data: list[Any] | dict[str, Any]) -> Participation:
        """Inverse of to_state (also of the dict form with `_STATE_FIELDS` as keys)."""
        if isinstance(data, dict):
            data = [data[name] for name in _STATE_FIELDS]
        vid, email, profile, profile_stamp, registration, registration_stamp, sessions, emitted \
            = data
        return cls(
            vid=vid, email=email, profile=profile,
            profile_stamp=(profile_stamp[0], profile_stamp[1]) if profile_stamp else None,
            registration=registration,
            registration_stamp=(registration_stamp[0], registration_stamp[1])
            if registration_stamp else None,
            sessions=sessions,
            emitted=AttendanceOutcome(*emitted) if emitted else None,
        )


#: The changelog state's fields: the list's order, the older dict's keys.
_STATE_FIELDS = ("v", "e", "p", "ps", "r", "rs", "s", "o")
