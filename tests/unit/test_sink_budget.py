"""RateBudget: window and daily accounting, header correction, convergence (injected clock)."""

from __future__ import annotations

from collections import deque

import pytest

from connector.hubspot import RateLimitStatus
from connector.sink.budget import RateBudget


class Clock:
    def __init__(self, now: float = 1_767_261_600.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_reserves_up_to_the_window_limit_then_says_how_long_to_wait() -> None:
    clock = Clock()
    budget = RateBudget(window_limit=3, window_seconds=10, daily_limit=None, clock=clock)
    for _ in range(3):
        assert budget.reserve() == 0.0
        budget.settle(None)
        clock.now += 1
    assert budget.reserve() == pytest.approx(7.0)  # the first request leaves the window at +10
    clock.now += 7
    assert budget.reserve() == 0.0


def test_delay_and_free_ask_without_counting() -> None:
    clock = Clock()
    budget = RateBudget(window_limit=3, window_seconds=10, daily_limit=None, clock=clock)
    assert budget.delay() == 0.0 and budget.free() == 3
    assert budget.free() == 3  # asking spends nothing
    budget.reserve()
    budget.settle(None)
    assert budget.free() == 2
    budget.settle(RateLimitStatus(max=3, remaining=0))  # someone else sent one: theirs + 1
    assert budget.free() == 0 and budget.delay() == pytest.approx(10.0)
    assert budget.reserve() == pytest.approx(10.0)
    clock.now += 10
    assert budget.delay() == 0.0 and budget.free() == 3


def test_a_due_daily_probe_is_one_free_slot_taken_only_by_reserve() -> None:
    clock = Clock()
    budget = RateBudget(window_limit=100, window_seconds=10, daily_limit=None, clock=clock,
                        daily_probe_seconds=60)
    budget.daily_exhausted()
    assert budget.free() == 0 and budget.delay() == pytest.approx(60)
    clock.now += 60
    assert budget.delay() == 0.0 and budget.free() == 1
    assert budget.reserve() == 0.0  # the probe
    budget.settle(None)
    assert budget.free() == 0


def test_a_request_counts_from_when_its_answer_arrived() -> None:
    clock = Clock()
    budget = RateBudget(window_limit=1, window_seconds=10, daily_limit=None, clock=clock)
    assert budget.reserve() == 0.0
    clock.now += 2  # a slow answer: HubSpot counted it somewhere in these 2 s
    budget.settle(None)
    assert budget.reserve() == pytest.approx(10.0)


def test_server_says_fewer_remain_so_others_share_the_app_and_we_wait() -> None:
    clock = Clock()
    budget = RateBudget(window_limit=10, window_seconds=10, daily_limit=None, clock=clock)
    assert budget.reserve() == 0.0
    budget.settle(RateLimitStatus(interval_ms=10_000, max=10, remaining=2))
    assert budget.used == 8 and budget.theirs == 7
    assert budget.reserve() == 0.0  # 1 ours + 7 theirs + 1 headroom < 10
    budget.settle(RateLimitStatus(max=10, remaining=1))
    assert budget.reserve() > 0  # 2 + 7 + 1 headroom: full


def test_ours_that_expire_while_a_request_is_in_flight_are_not_taken_for_theirs() -> None:
    clock = Clock(1000.0)
    budget = RateBudget(window_limit=10, window_seconds=10, daily_limit=None, clock=clock)
    for _ in range(5):  # a burst, answered at 1000.1 (HubSpot admitted them at ~1000.05)
        assert budget.reserve() == 0.0
    clock.now = 1000.1
    for _ in range(5):
        budget.settle(None)
    clock.now = 1009.9
    assert budget.reserve() == 0.0
    clock.now = 1010.3  # a slow answer: the burst left our window while it was in flight,
    # but HubSpot admitted it at ~1010.0 and counted the burst with it: 6 used
    budget.settle(RateLimitStatus(interval_ms=10_000, max=10, remaining=4))
    assert budget.theirs == 0  # all six were ours
    assert budget.free() == 9


def test_their_share_is_the_largest_measured_within_the_last_second() -> None:
    clock = Clock()
    budget = RateBudget(window_limit=10, window_seconds=10, daily_limit=None, clock=clock)
    budget.reserve()
    budget.settle(RateLimitStatus(max=10, remaining=0))
    assert budget.theirs == 9
    clock.now += 0.5
    budget.observe(RateLimitStatus(max=10, remaining=7))  # reads low: 3 used, 1 ours
    assert budget.theirs == 9  # one of theirs may just have expired, about to be re-sent
    clock.now += 0.6
    assert budget.theirs == 2  # a second later the low reading stands: they use less now
    clock.now += 9.5
    assert budget.theirs == 0 and budget.reserve() == 0.0  # forgotten after a window


def test_a_share_not_measured_for_a_window_is_forgotten() -> None:
    clock = Clock()
    budget = RateBudget(window_limit=10, window_seconds=10, daily_limit=None, clock=clock)
    budget.reserve()
    clock.now += 1
    budget.settle(RateLimitStatus(max=10, remaining=0))  # somebody else took all the rest
    assert budget.reserve() == pytest.approx(10.0)
    clock.now += 10
    assert budget.theirs == 0
    assert budget.reserve() == 0.0  # a probe, never blocked for good


def test_a_rejected_request_does_not_count() -> None:
    clock = Clock()
    budget = RateBudget(window_limit=2, window_seconds=10, daily_limit=None, clock=clock)
    assert budget.reserve() == 0.0
    budget.settle(None, admitted=False)
    assert budget.used == 0

def test_headers_replace_the_configured_window() -> None:
    clock = Clock()
    budget = RateBudget(window_limit=100, window_seconds=10, daily_limit=None, clock=clock)
    budget.reserve()
    budget.settle(RateLimitStatus(interval_ms=2_000, max=2, remaining=1))
    assert (budget.window_limit, budget.window_seconds) == (2, 2.0)
    assert budget.reserve() == 0.0
    budget.settle(RateLimitStatus(interval_ms=2_000, max=2, remaining=0))
    assert budget.reserve() == pytest.approx(2.0)


def test_daily_budget_believes_the_server_and_waits_for_midnight() -> None:
    clock = Clock(1_767_261_600.0)  # 2026-01-01T10:00Z
    budget = RateBudget(window_limit=100, window_seconds=10, daily_limit=1000, clock=clock,
                        daily_probe_seconds=24 * 3600)
    budget.reserve()
    budget.settle(RateLimitStatus(daily=1000, daily_remaining=1))
    assert budget.daily_remaining == 1
    assert budget.reserve() == 0.0
    budget.settle(None)
    assert budget.reserve() == pytest.approx(14 * 3600)  # until 2026-01-02T00:00Z
    clock.now += 14 * 3600
    assert budget.reserve() == 0.0  # a new day, a fresh allowance
    assert budget.daily_remaining == 999


def test_a_daily_429_waits_at_most_the_probe_interval() -> None:
    clock = Clock(1_767_261_600.0)
    budget = RateBudget(window_limit=100, window_seconds=10, daily_limit=None, clock=clock,
                        daily_probe_seconds=3600)
    budget.daily_exhausted()
    assert budget.reserve() == pytest.approx(3600)
    clock.now += 3600
    assert budget.reserve() == 0.0  # one probe request re-reads the daily headers


class Server:
    """HubSpot's rolling window for one app, shared by several clients."""

    def __init__(self, clock: Clock, limit: int, window: float) -> None:
        self.clock, self.limit, self.window = clock, limit, window
        self.admitted: deque[float] = deque()
        self.rejected = 0
        self.served = 0

    def request(self) -> RateLimitStatus:
        now = self.clock()
        while self.admitted and self.admitted[0] <= now - self.window:
            self.admitted.popleft()
        if len(self.admitted) >= self.limit:
            self.rejected += 1
        else:
            self.admitted.append(now)
            self.served += 1
        return RateLimitStatus(interval_ms=int(self.window * 1000), max=self.limit,
                               remaining=self.limit - len(self.admitted))


def test_two_instances_sharing_one_app_converge_on_the_shared_limit() -> None:
    clock = Clock()
    server = Server(clock, limit=20, window=10.0)
    # Each instance believes it has the whole limit to itself.
    budgets = [RateBudget(window_limit=20, window_seconds=10, daily_limit=None, clock=clock)
               for _ in range(2)]
    ready_at = [clock.now, clock.now + 0.01]
    step, latency = 0.05, 0.02
    end = clock.now + 120
    rejected_after_warmup = 0
    while clock.now < end:
        for n, budget in enumerate(budgets):
            if clock.now < ready_at[n]:
                continue
            wait = budget.reserve()
            if wait > 0:
                ready_at[n] = clock.now + wait
                continue
            before = server.rejected
            status = server.request()
            clock.now += latency
            budget.settle(status, admitted=server.rejected == before)
            if clock.now > 1_767_261_600.0 + 20 and server.rejected > before:
                rejected_after_warmup += 1
        clock.now += step
    assert rejected_after_warmup == 0
    assert server.rejected <= 20  # at most the first window's overlap
    # Together they use most of the shared limit (20 per 10 s over 120 s = 240).
    assert server.served >= 0.75 * 240


def test_two_paced_instances_with_requests_in_flight_stay_under_the_shared_limit() -> None:
    """Each keeps requests in the air (HubSpot counts one near the end of its 0.35 s +/- 20 %
    round trip) and always has work. Paced at the whole limit's rate, both found slots free at
    once, sent at twice that rate together, and the burst expired as a burst a window later:
    429s every window."""
    import random

    rng = random.Random(7)
    clock = Clock(1000.0)
    server = Server(clock, limit=190, window=10.0)
    budgets = [RateBudget(window_limit=190, window_seconds=10, daily_limit=None, clock=clock,
                          paced=True) for _ in range(2)]
    arrivals: list[tuple[float, int, object]] = []  # (when, instance, ticket)
    answers: list[tuple[float, int, object, RateLimitStatus, bool, float]] = []
    rejected_late = served_late = 0
    start, warm, end, step = clock.now, clock.now + 20, clock.now + 60, 0.005
    while clock.now < end:
        for n, budget in enumerate(budgets):
            while (ticket := budget.acquire()) is not None:
                trip = 0.35 * rng.uniform(0.8, 1.2)
                arrivals.append((clock.now + 0.9 * trip, n, (ticket, clock.now + trip)))
        for item in sorted(a for a in arrivals if a[0] <= clock.now):
            arrivals.remove(item)
            _, n, (ticket, answer_at) = item
            before = server.rejected
            status = server.request()
            admitted = server.rejected == before
            if clock.now > warm:
                served_late += admitted
                rejected_late += not admitted
            answers.append((answer_at, n, ticket, status, admitted, answer_at - (
                answer_at - 0.35)))
        for item in [a for a in answers if a[0] <= clock.now]:
            answers.remove(item)
            answer_at, n, ticket, status, admitted, _ = item
            budgets[n].round_trip(0.35)
            budgets[n].settle(status, admitted=admitted, ticket=ticket)  # type: ignore[arg-type]
        clock.now += step
    assert start < warm < end
    assert rejected_late == 0
    assert served_late >= 0.9 * 190 * (end - warm) / 10  # together, most of the limit


def test_a_request_in_flight_counts_until_it_is_answered() -> None:
    clock = Clock(1000.0)
    budget = RateBudget(window_limit=2, window_seconds=10, daily_limit=None, clock=clock)
    first, second = budget.acquire(), budget.acquire()
    assert first is not None and second is not None
    assert budget.acquire() is None and budget.in_flight == 2
    clock.now += 30  # never answered yet: still counted, whatever the time
    assert budget.free() == 0 and budget.delay() > 0
    budget.settle(None, ticket=second)
    budget.settle(None, admitted=False, ticket=first)  # a 429: HubSpot did not count it
    assert budget.in_flight == 0 and budget.used == 1


def test_tickets_settle_on_any_thread_and_each_thread_settles_its_own() -> None:
    import threading

    clock = Clock(1000.0)
    budget = RateBudget(window_limit=100, window_seconds=10, daily_limit=None, clock=clock)

    def send(n: int) -> None:
        for _ in range(n):
            assert budget.reserve() == 0.0
            budget.settle(None)

    threads = [threading.Thread(target=send, args=(10,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert budget.in_flight == 0 and budget.used == 80
    ticket = budget.acquire()  # reserved here, sent by another thread
    assert ticket is not None
    other = threading.Thread(target=lambda: (budget.adopt(ticket), budget.settle(None)))
    other.start()
    other.join()
    assert budget.in_flight == 0 and budget.used == 81


def test_ours_forgotten_before_a_new_request_can_arrive_do_not_count() -> None:
    clock = Clock(1000.0)
    budget = RateBudget(window_limit=2, window_seconds=10, daily_limit=None, clock=clock)
    budget.round_trip(0.4)  # a request takes at least 0.2 s to reach HubSpot
    for _ in range(2):
        assert budget.reserve() == 0.0
        budget.settle(None)
    clock.now += 9.7  # HubSpot forgets them at 1010.0; one sent now arrives at >= 1009.9
    assert budget.free() == 0 and budget.delay() == pytest.approx(0.1)
    clock.now += 0.1
    assert budget.free() == 2 and budget.reserve() == 0.0


def test_a_slow_answer_does_not_read_our_own_older_requests_as_theirs() -> None:
    clock = Clock(1000.0)
    budget = RateBudget(window_limit=10, window_seconds=10, daily_limit=None, clock=clock)
    for _ in range(4):  # answered at 1000.0
        assert budget.reserve() == 0.0
        budget.settle(None)
    clock.now = 1009.8
    slow = budget.acquire()
    clock.now = 1010.5  # meanwhile the four left our window (asked about in between)
    assert budget.free() == 9
    # HubSpot counted the slow one at ~1009.9, with the four still in its window: 5 used
    budget.settle(RateLimitStatus(interval_ms=10_000, max=10, remaining=5), ticket=slow)
    assert budget.theirs == 0


def test_a_paced_budget_sends_evenly_at_its_part_of_the_window_while_others_share() -> None:
    clock = Clock(1000.0)
    budget = RateBudget(window_limit=10, window_seconds=10, daily_limit=None, clock=clock,
                        paced=True)
    for _ in range(3):  # alone: a burst is fine (nobody else's share to meet a window later)
        assert budget.reserve() == 0.0
        budget.settle(None)
    assert budget.free() == 7
    assert budget.reserve() == 0.0
    budget.settle(RateLimitStatus(max=10, remaining=4))  # 6 used, 4 ours: theirs 2
    assert budget.theirs == 2
    assert budget.reserve() == 0.0
    assert budget.free() == 0  # one at a time now
    budget.settle(None)
    # Our part of the window, spread over it: 10 - (theirs 2 + 1 of headroom) = 7 per 10 s,
    # a pace of 10/7 s (a quiet spell before it saves up at most half a pace).
    assert budget.delay() == pytest.approx(10 / 7 / 2) and budget.free() == 0
    clock.now += 10 / 7 / 2 + 1e-9
    assert budget.free() == 1 and budget.reserve() == 0.0
    budget.settle(None)
    assert budget.delay() == pytest.approx(10 / 7)  # on time: a whole pace
    clock.now += 15  # their share is forgotten after a window; pacing goes on for two
    assert budget.theirs == 0
    assert budget.reserve() == 0.0 and budget.free() == 0
    budget.settle(None)
    clock.now += 30
    assert budget.free() > 1  # alone again


def test_a_small_share_of_others_does_not_pace() -> None:
    clock = Clock(1000.0)
    budget = RateBudget(window_limit=100, window_seconds=10, daily_limit=None, clock=clock,
                        paced=True)
    assert budget.reserve() == 0.0
    budget.settle(RateLimitStatus(max=100, remaining=97))  # 3 used, 1 ours: theirs 2
    assert budget.theirs == 2
    assert budget.reserve() == 0.0
    budget.settle(None)
    assert budget.free() == 100 - 2 - (2 + 1)  # headroom, but no pace: a burst may go


def test_each_429_leaves_more_headroom_which_fades_without_429s() -> None:
    clock = Clock(1000.0)
    budget = RateBudget(window_limit=100, window_seconds=10, daily_limit=None, clock=clock)
    assert budget.free() == 100
    for _ in range(3):
        assert budget.reserve() == 0.0
        budget.settle(None, admitted=False)  # 429s: not counted, but learned from
    assert budget.free() == 94  # 3 x 2 requests of headroom
    clock.now += 10
    assert budget.free() == 97  # halved after a window without a 429
    clock.now += 40
    assert budget.free() == 100
