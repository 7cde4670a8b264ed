"""The client-side rate budget (pure): a rolling window per app and a daily allowance.

Before each request the sink asks :meth:`RateBudget.reserve`; 0.0 means "send now" (the request
is counted), a positive number is how long to wait first; :meth:`RateBudget.delay` answers the
same without counting (the worker takes work only while a slot is free). After the answer,
:meth:`settle` counts the request from when the answer arrived (HubSpot admitted it somewhere
in between, so our copy never expires before HubSpot's does) and corrects the budget from the
``X-HubSpot-RateLimit-*`` headers.

Requests are in flight together, from several threads: every call takes one lock, and each
reservation is a :class:`Ticket`. A request in flight counts in the window until it is answered
(it never expires early); :meth:`settle` settles the calling thread's oldest unsettled
reservation, or the ticket it is given (:meth:`acquire` reserves on one thread for a request
sent on another).

*Paced* (the sink's), while others use a tenth of the window or more (measured within two
windows), requests go evenly, one at a time: at most one per ``window / (limit -
what others sharing the app use, with headroom)`` seconds, so each instance sends its own part
of the window spread over it. Unpaced, or paced at the whole limit's rate, two instances that
found slots free at once sent at twice the limit's rate together; the burst expired as a burst
a window later and met 429s there, window after window. A quiet spell is not saved up (a burst
after it would expire as one too); a sender a little late keeps its place (:data:`PACE_SLACK`).

A request cannot reach HubSpot sooner than about half the quickest round trip seen lately
(:meth:`round_trip`), so one of ours that HubSpot will forget before a request sent now can
arrive is not counted against it: with a quarter of a second of latency, the window would
otherwise hold a request for ``window + latency`` and lose a few per cent of the budget.

The headers:

* ``Max`` / ``Interval-Milliseconds`` replace the configured window (the server knows the tier);
* ``Remaining``: HubSpot counted ``Max - Remaining`` requests in its window. What we did not
  send ourselves was sent by someone else sharing the app (another sink instance): that count
  is *their share*, and we assume they keep using it — as each instance only replaces its own
  expired requests, shares are stable. A measure taken while one of theirs had just expired
  reads low, so we keep the largest share measured within the last second
  (:data:`SHARE_MEMORY_SECONDS`, a monotonic deque), or the newest one when none is that
  recent, and, while anyone else shares the app, leave headroom: one request (one of theirs
  may have just expired, about to be re-sent) plus what they send in a round trip (on its way,
  not yet counted when HubSpot answered us): we send only while ``ours + theirs + headroom <
  Max`` (``ours < Max`` alone). Several instances that all do this
  converge on the shared limit without talking to each other. With requests in flight every
  answer measures again, so a share that shrinks (an instance ran out of work) is given back
  within about a second. Each 429 leaves two more requests of headroom, halved per window
  without a 429: the estimate converges on what HubSpot accepts. A share not re-measured for
  a whole window is forgotten, so an
  instance that stopped sending (or a spent window) never blocks us for good: at worst one
  probe request per window.
* ``Daily`` / ``Daily-Remaining`` set the daily allowance; when the server says fewer remain
  than we think, we believe the server.

The daily allowance resets at midnight in the HubSpot account's time zone, which the API does
not tell us: with the daily budget spent we wait until the next midnight at
``daily_reset_utc_offset_hours`` (default UTC), but never longer than ``daily_probe_seconds``
before one probe request re-reads the daily headers. The clock (epoch seconds) is injected.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import deque
from dataclasses import dataclass

from connector.clock import Clock
from connector.hubspot import RateLimitStatus


@dataclass(eq=False, slots=True)
class Ticket:
    """One reserved request: counted in the window from ``sent_at`` until it is answered."""

    sent_at: float


#: How long a measure of others' share is kept. A measure reads low only while one of theirs
#: just expired and is not yet replaced (milliseconds when they keep requests in flight), so a
#: short memory is safe, and it lets us take over a share within a second once they stop.
SHARE_MEMORY_SECONDS = 1.0
#: Requests of headroom one 429 adds (halved per window without a 429).
HEADROOM_PER_429 = 2
#: Pacing starts when others use at least this part of the window. Below it, a burst of ours
#: meets no one's share a window later, and a share of one or two can be a misreading (an
#: answer's count racing our own requests); pacing at 1,000 / 10 s costs a GIL-bound sink
#: its late wake-ups (0.905 -> 0.77).
PACING_SHARE = 0.1
#: The part of a pace a late sender keeps: below one, so two never go at once.
PACE_SLACK = 0.5
#: Round trips the quickest one is taken from.
ROUND_TRIPS_KEPT = 64


class RateBudget:
    """How many requests this instance may send now, kept in step with HubSpot's headers."""

    def __init__(
        self,
        *,
        window_limit: int,
        window_seconds: float,
        daily_limit: int | None,
        clock: Clock,
        daily_reset_utc_offset_hours: float = 0.0,
        daily_probe_seconds: float = 3600.0,
        paced: bool = False,
    ) -> None:
        """``paced``: requests go evenly, at most one per ``window / limit`` seconds (the
        sink's; off, a whole window may go at once)."""
        if window_limit < 1 or window_seconds <= 0:
            raise ValueError("window_limit must be >= 1 and window_seconds > 0")
        self.window_limit = window_limit
        self.window_seconds = window_seconds
        self.daily_limit = daily_limit
        self._clock = clock
        self._offset = daily_reset_utc_offset_hours * 3600.0
        self._probe = daily_probe_seconds
        self._answered: deque[float] = deque()  # when our admitted requests were answered
        self._flying: set[Ticket] = set()  # reserved, not yet answered
        self._local = threading.local()  # each thread's unsettled reservations, oldest first
        self._lock = threading.RLock()
        self._measured: deque[tuple[float, int]] = deque()  # (when, their share)
        self._round_trips: deque[float] = deque(maxlen=ROUND_TRIPS_KEPT)
        self._credit = 0.0  # seconds a request sent now takes at least to reach HubSpot
        self._rtt = 0.0  # a moving average of round trips
        self._paced = paced
        self._headroom_learned = 0.0
        self._last_rejected = 0.0
        self._paced_until = 0.0  # no reservation before this (requests go evenly)
        self._shared_at = -math.inf  # when a share of others was last measured
        self._daily_remaining: int | None = daily_limit
        self._day = self._day_of(clock())
        self._daily_blocked_until: float | None = None

    # ----------------------------------------------------------------- inspection

    @property
    def theirs(self) -> int:
        """Requests others sharing the app use per window, as last measured (0 when stale)."""
        with self._lock:
            return self._theirs_at(self._clock())

    @property
    def used(self) -> int:
        """Requests (ours and theirs) in the current window."""
        with self._lock:
            now = self._clock()
            return self._ours(now) + self._theirs_at(now)

    @property
    def in_flight(self) -> int:
        """Our requests reserved and not yet answered."""
        return len(self._flying)

    @property
    def daily_remaining(self) -> int | None:
        """Our estimate of today's remaining calls (None when unknown/unlimited)."""
        with self._lock:
            self._roll_day(self._clock())
            return self._daily_remaining

    # ----------------------------------------------------------------- the calls

    def delay(self) -> float:
        """Seconds until :meth:`reserve` would say "send now" (0.0: a slot is free); counts
        nothing."""
        with self._lock:
            return self._wait(self._clock(), probe=False)

    def free(self) -> int:
        """How many requests may be sent now, one after the other (0 while waiting)."""
        with self._lock:
            now = self._clock()
            if self._wait(now, probe=False) > 0:
                return 0
            share = self._share(now)
            slots = self.window_limit - self._ours(now) - self._headroom(share, now)
            if self._pacing(now):
                slots = min(slots, 1)  # one at a time, a pace apart (see _pace)
            if self._daily_remaining is not None:
                slots = min(slots, self._daily_remaining)
            return max(slots, 1)

    def reserve(self) -> float:
        """0.0 and count one request when one may be sent now (it becomes this thread's
        reservation, which :meth:`settle` settles); else seconds to wait first."""
        with self._lock:
            wait = self._wait(self._clock(), probe=True)
            if wait > 0:
                return wait
            self._mine().append(self._take(self._clock()))
            return 0.0

    def acquire(self) -> Ticket | None:
        """Reserve one request now, to be sent by any thread (settle it with its ticket);
        None when none may be sent now (see :meth:`delay`)."""
        with self._lock:
            now = self._clock()
            return None if self._wait(now, probe=True) > 0 else self._take(now)

    def adopt(self, ticket: Ticket) -> None:
        """The calling thread sends the request reserved as ``ticket`` (:meth:`settle`
        without a ticket settles it)."""
        self._mine().append(ticket)

    def settle(self, status: RateLimitStatus | None, *, admitted: bool = True,
               ticket: Ticket | None = None) -> None:
        """The reserved request (``ticket``, else this thread's oldest unsettled one) was answered
        now; correct from its rate-limit headers.

        ``admitted=False`` for a 429: HubSpot did not count it, neither do we."""
        if ticket is None:
            mine = self._mine()
            ticket = mine.popleft() if mine else None
        with self._lock:
            now = self._clock()
            if not admitted:
                self._learned(now)
            if ticket is not None and ticket in self._flying:
                self._flying.discard(ticket)
                if admitted:
                    self._answered.append(max(now, self._answered[-1]) if self._answered
                                          else now)
            if status is not None:
                self._observe(status, sent_at=ticket.sent_at if ticket else None)

    def round_trip(self, seconds: float) -> None:
        """One request's round trip (from any thread): half the quickest of the last
        :data:`ROUND_TRIPS_KEPT` is how long a request takes at least to reach HubSpot."""
        with self._lock:
            self._round_trips.append(seconds)
            self._credit = max(0.0, min(self._round_trips) / 2)
            self._rtt += (seconds - self._rtt) * (0.2 if len(self._round_trips) > 1 else 1.0)

    def observe(self, status: RateLimitStatus, *, sent_at: float | None = None) -> None:
        """Correct the budget from what HubSpot said (any response, success or error).

        ``sent_at``: when the answered request left; HubSpot counted its window somewhere
        between then and now, so ours are counted over the wider span (never over-blaming
        others for our own requests that expired while it was in flight)."""
        with self._lock:
            self._observe(status, sent_at=sent_at)

    def daily_exhausted(self) -> None:
        """HubSpot answered 429 DAILY: nothing more until the allowance resets."""
        with self._lock:
            now = self._clock()
            self._daily_remaining = 0
            self._daily_blocked_until = min(self._next_midnight(now), now + self._probe)

    # ----------------------------------------------------------------- internals

    def _learned(self, now: float) -> None:
        """A 429: leave more headroom (see :meth:`_learned_headroom`)."""
        current = self._learned_headroom(now)
        self._headroom_learned = min(current + HEADROOM_PER_429, self.window_limit / 4)
        self._last_rejected = now

    def _mine(self) -> deque[Ticket]:
        """The calling thread's unsettled reservations."""
        mine: deque[Ticket] | None = getattr(self._local, "tickets", None)
        if mine is None:
            mine = self._local.tickets = deque()
        return mine

    def _take(self, now: float) -> Ticket:
        ticket = Ticket(now)
        if self._pacing(now):
            pace = self._pace(self._share(now), now)
            # A sender a little late keeps its place (the next one may go a little sooner, so
            # lateness does not pile up); a quiet spell gains nothing.
            self._paced_until = max(self._paced_until, now - PACE_SLACK * pace) + pace
        self._flying.add(ticket)
        if self._daily_remaining is not None:
            self._daily_remaining -= 1
        return ticket

    def _pacing(self, now: float) -> bool:
        """Paced, and others used a tenth of the app's window or more within the last two
        windows (:data:`PACING_SHARE`). Alone, a burst is harmless (nobody else's share to
        meet a window later) and pacing would only cost the late wake-ups; a share forgotten
        after one quiet window still paces."""
        return self._paced and now - self._shared_at < 2 * self.window_seconds

    def _pace(self, share: int, now: float) -> float:
        """Seconds between two of our requests while others share the app: our part of the
        window spread over it. At the whole limit's pace, two instances that both found slots
        free at once sent at twice the limit's rate together, a burst that expired as a burst
        a window later and met 429s there, window after window."""
        ours = self.window_limit - self._headroom(share, now)
        return self.window_seconds / max(ours, 1)

    def _ours(self, now: float) -> int:
        """Our requests in the window as a request sent now finds it: answered within it,
        and every one in flight."""
        self._prune(now)
        # HubSpot forgets these before a request sent now can reach it (see round_trip).
        forgotten = bisect.bisect_right(self._answered, now + self._credit - self.window_seconds)
        return len(self._answered) - forgotten + len(self._flying)

    def _observe(self, status: RateLimitStatus, *, sent_at: float | None) -> None:
        now = self._clock()
        if status.interval_ms:
            self.window_seconds = status.interval_ms / 1000.0
        if status.max:
            self.window_limit = status.max
        if status.remaining is not None and status.max:
            server_used = max(0, status.max - status.remaining)
            left = sent_at if sent_at is not None else now
            horizon = left - self.window_seconds
            # Counted before pruning to now: one of ours that left HubSpot's window only while
            # this request was in flight was still in the window HubSpot counted. Of those
            # still in flight, the ones sent before this one reached HubSpot before it did.
            ours = (sum(1 for t in self._answered if t > horizon)
                    + sum(1 for t in self._flying if t.sent_at <= left))
            share = max(0, server_used - ours)
            if share >= PACING_SHARE * self.window_limit:
                self._shared_at = now
            while self._measured and self._measured[-1][1] <= share:
                self._measured.pop()  # a larger (or equal), newer measure supersedes these
            self._measured.append((now, share))
        self._prune(now)
        if status.daily:
            self.daily_limit = status.daily
        if status.daily_remaining is not None:
            self._daily_remaining = status.daily_remaining - len(self._flying)
            if status.daily_remaining > 0:
                self._daily_blocked_until = None

    def _wait(self, now: float, *, probe: bool) -> float:
        """How long before one more request may go (``probe``: a due daily probe is taken)."""
        self._roll_day(now)
        daily_wait = self._daily_wait(now, probe=probe)
        if daily_wait > 0:
            return daily_wait
        if self._pacing(now) and now < self._paced_until:
            return self._paced_until - now
        share = self._share(now)
        theirs = self._headroom(share, now)
        if self._ours(now) + theirs >= self.window_limit:
            counted = self._first_counted(now)
            frees = [t + self.window_seconds for t in (
                counted - self._credit if counted is not None else None,
                min((t.sent_at for t in self._flying), default=None)) if t is not None]
            if theirs:
                frees.append(self._share_drops_at(now))
            return max(min(frees) - now, 0.001)
        return 0.0

    def _first_counted(self, now: float) -> float | None:
        """When the oldest of ours still counted by :meth:`_ours` was answered."""
        index = bisect.bisect_right(self._answered, now + self._credit - self.window_seconds)
        return self._answered[index] if index < len(self._answered) else None

    def _prune(self, now: float) -> None:
        """Forget ours answered more than two windows ago (one window is counted; answers
        older than that are still needed to measure theirs from an answer that took long)."""
        horizon = now - 2 * self.window_seconds
        while self._answered and self._answered[0] <= horizon:
            self._answered.popleft()

    def _theirs_at(self, now: float) -> int:
        """Their share as last measured (0 when no measure is left within a window)."""
        return self._share(now)

    def _headroom(self, theirs: int, now: float) -> int:
        """Their share with headroom: one of theirs may have just expired, about to be
        re-sent, and those they sent within the last round trip may not have reached HubSpot
        when it was measured (their rate x a round trip); plus what recent 429s taught."""
        learned = self._learned_headroom(now)
        if not theirs:
            return learned
        return theirs + 1 + math.ceil(theirs * self._rtt / self.window_seconds) + learned

    def _learned_headroom(self, now: float) -> int:
        """Requests left unused after 429s: :data:`HEADROOM_PER_429` more per 429, halved per
        window without one (estimates of shares are estimates; HubSpot has the last word, and
        this converges on the smallest headroom it accepts, and forgets a storm in a few
        windows)."""
        if not self._headroom_learned:
            return 0
        windows = (now - self._last_rejected) / self.window_seconds
        return int(self._headroom_learned * 0.5 ** windows)

    def _share(self, now: float) -> int:
        """Their share: the largest measured within the last :data:`SHARE_MEMORY_SECONDS`,
        else the newest measured within a window (0 when none is left: one probe re-measures
        it)."""
        while self._measured and self._measured[0][0] <= now - self.window_seconds:
            self._measured.popleft()
        return self._share_at(now)

    def _share_at(self, at: float) -> int:
        fresh_since = at - min(SHARE_MEMORY_SECONDS, self.window_seconds)
        newest = 0
        for when, share in self._measured:  # decreasing shares, increasing times
            if when > at:
                break
            if when > fresh_since:
                return share
            if when > at - self.window_seconds:
                newest = share
        return newest

    def _share_drops_at(self, now: float) -> float:
        """When the share in use next goes down (a measure leaves the memory or the window)."""
        current = self._share_at(now)
        memory = min(SHARE_MEMORY_SECONDS, self.window_seconds)
        moments = sorted(t + span for t, _share in self._measured
                         for span in (memory, self.window_seconds) if t + span > now)
        for moment in moments:
            if self._share_at(moment + 1e-6) < current:
                return moment
        return now + self.window_seconds

    def _day_of(self, now: float) -> int:
        return math.floor((now + self._offset) / 86400.0)

    def _next_midnight(self, now: float) -> float:
        return (self._day_of(now) + 1) * 86400.0 - self._offset

    def _roll_day(self, now: float) -> None:
        day = self._day_of(now)
        if day != self._day:
            self._day = day
            self._daily_remaining = self.daily_limit
            self._daily_blocked_until = None

    def _daily_wait(self, now: float, *, probe: bool = True) -> float:
        if self._daily_remaining is None or self._daily_remaining > 0:
            return 0.0
        if self._daily_blocked_until is None:
            self._daily_blocked_until = min(self._next_midnight(now), now + self._probe)
        if now >= self._daily_blocked_until:
            if not probe:
                return 0.0
            # Probe: allow one request to re-read the daily headers.
            self._daily_blocked_until = None
            self._daily_remaining = 1
            return 0.0
        return self._daily_blocked_until - now
