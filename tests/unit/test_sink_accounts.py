"""The sink with one destination per HubSpot account (app mode): each account's commands go
with its own token under its own rate budget, so a throttled account holds up nobody else; an
account without a usable install is dead-lettered with the reason and the account, at once
when its command arrives and for the work it still held when its install went away."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from connector.dlq.envelope import H_ACCOUNT, H_REASON
from connector.hubspot import HubSpotClient
from connector.installs import NoRoute, Route
from connector.installs.routing import StaticToken
from connector.normalize.command import Attendance, Command, EventUpsert
from connector.serde.topic import TopicDecoder
from connector.sink.accounts import Destination, Destinations
from connector.sink.apply import Applier
from connector.sink.batch import Batcher
from connector.sink.budget import RateBudget
from connector.sink.flight import Concurrency
from connector.sink.intake import Intake
from connector.sink.options import SinkOptions
from connector.sink.park import ParkingLot
from connector.sink.retry import RetryPolicy
from connector.sink.worker import SinkWorker
from tests.unit.test_sink_in_flight import HubSpot, RealTimeConsumer
from tests.unit.test_sink_worker import CODEC, TOPIC
from tests.unit.test_sink_worker_kafka import Producer

T0 = 1_767_261_600_000


class NoClock:
    now = 0.0


def commands_of(account: str, events: int, people: int) -> list[tuple[int, Command]]:
    out: list[tuple[int, Command]] = [
        (e % 2, Command(f"{account}-w{e}", account, EventUpsert(f"W{e}", "O", "WEBINAR")))
        for e in range(events)]
    for n in range(people):
        for e in range(events):
            out.append((e % 2, Command(f"{account}-w{e}", account, Attendance(
                "REGISTERED", None, f"p{n}@{account}.io", T0 + n))))
    return out


class Accounts:
    """Routes: acct-slow and acct-fast have installs (each its own HubSpot and budget);
    acct-none has none; ``revoke(account)`` takes an install away."""

    def __init__(self, clock: Any) -> None:
        self.hubspots = {"acct-slow": HubSpot(0.001), "acct-fast": HubSpot(0.001)}
        self.limits = {"acct-slow": 1, "acct-fast": 10_000}  # acct-slow: one request an hour
        self.revoked: set[str] = set()
        self.clock = clock
        self.built: list[str] = []

    def resolve(self, account: str) -> Route | NoRoute:
        if account in self.revoked:
            return NoRoute(account, "hubspot-install-revoked", "the app was uninstalled")
        if account not in self.hubspots:
            return NoRoute(account, "no-hubspot-install", f"{account} has no HubSpot install")
        return Route(account, f"hub-{account}", "oauth", 1, self.limits[account], 3600,
                     StaticToken(f"token-{account}"))

    def build(self, route: Route, intake: Intake) -> Destination:
        self.built.append(route.account_key)
        budget = RateBudget(window_limit=route.window_limit,
                            window_seconds=route.window_seconds, daily_limit=None,
                            clock=self.clock)
        concurrency = Concurrency(4, initial=4)
        policy = RetryPolicy(budget_seconds=60, clock=self.clock, sleep=intake.idle,
                             base_seconds=0.001, cap_seconds=0.01, rng=random.Random(1))
        client = HubSpotClient(route.bearer(), transport=httpx.MockTransport(
            self.hubspots[route.platform_account]))
        applier = Applier(client, budget=budget, policy=policy, clock=self.clock,
                          sleep=intake.idle, on_latency=concurrency.observe, access_fatal=False,
                          **self.applier_options(route, budget))
        return Destination(route.account_key, applier, budget, concurrency)

    def applier_options(self, route: Route, budget: RateBudget) -> dict[str, Any]:
        """More of the Applier's keyword arguments (a subclass wires telemetry)."""
        return {}


def worker(commands: list[tuple[int, Command]], accounts: Accounts, *,
           max_poll_records: int = 500, max_wait_seconds: float = 1,
           consumer: RealTimeConsumer | None = None, max_buffered: int = 100_000,
           max_held_per_account: int | None = None) -> tuple[SinkWorker, Producer]:
    clock = time.time
    if consumer is None:
        consumer = RealTimeConsumer(NoClock(), commands)  # type: ignore[arg-type]
    intake = Intake(consumer, SinkOptions(topic=TOPIC, dlq_topic=f"{TOPIC}.dlq",
                                          poll_seconds=0.01, landing_seconds=10,
                                          drain_seconds=0.2, max_poll_records=max_poll_records,
                                          max_buffered=max_buffered,
                                          max_held_per_account=max_held_per_account),
                    stop=threading.Event(), clock=clock)
    destinations = Destinations(resolve=accounts.resolve,
                                build=lambda route: accounts.build(route, intake))
    producer = Producer()
    sink = SinkWorker(
        intake, producer=producer, applier=None, decoder=TopicDecoder(CODEC),
        batcher=Batcher(max_inputs=5, linger_seconds=0.0, clock=clock,
                        max_wait_seconds=max_wait_seconds),
        parking=ParkingLot(budget_seconds=60, clock=clock), executor=ThreadPoolExecutor(8),
        concurrency=Concurrency(8, initial=8), destinations=destinations)
    consumer.on_commit = sink.on_commit
    sink.start()
    return sink, producer


def step_until(sink: SinkWorker, done: Any, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, dict(sink.stats)
        sink.step()


def letters(producer: Producer) -> list[dict[str, bytes]]:
    return [dict(d["headers"]) for d in producer.delivered]


def test_a_throttled_account_holds_up_nobody_and_an_account_without_install_is_dead_lettered(
        ) -> None:
    accounts = Accounts(time.time)
    slow, fast = commands_of("acct-slow", 2, 20), commands_of("acct-fast", 2, 20)
    orphan = commands_of("acct-none", 1, 3)
    mixed = [c for trio in zip(slow, fast, orphan + [None] * len(slow), strict=False)
             for c in trio if c is not None]
    sink, producer = worker(mixed, accounts)
    try:
        step_until(sink, lambda: sink.stats["applied"] >= len(fast)
                   and len(producer.delivered) >= len(orphan))
    finally:
        sink.request_stop()  # acct-slow's work cannot go within the hour: a bounded drain
        sink.stop()
    fast_hub, slow_hub = accounts.hubspots["acct-fast"], accounts.hubspots["acct-slow"]
    assert len(fast_hub.applied) == 2 * 20  # every person of every webinar, all of them
    assert len(fast_hub.upserted) == 2
    assert len(slow_hub.upserted) + len(slow_hub.applied) <= 1  # its budget: one request
    assert sorted(accounts.built) == ["hub-acct-fast", "hub-acct-slow"]
    dead = letters(producer)
    assert len(dead) == len(orphan)
    assert {(h[H_REASON], h[H_ACCOUNT]) for h in dead} == {
        (b"no-hubspot-install", b"acct-none")}


def test_work_held_for_an_account_whose_install_went_away_is_dead_lettered() -> None:
    accounts = Accounts(time.time)
    slow = commands_of("acct-slow", 1, 12)  # more than its one request can carry
    sink, producer = worker(slow, accounts)
    try:
        step_until(sink, lambda: sink.stats["consumed"] >= len(slow)
                   and len(accounts.hubspots["acct-slow"].upserted) == 1)
        accounts.revoked.add("acct-slow")
        step_until(sink, lambda: len(producer.delivered) >= len(slow) - 1)
    finally:
        sink.request_stop()  # acct-slow's work cannot go within the hour: a bounded drain
        sink.stop()
    dead = letters(producer)
    assert len(dead) == len(slow) - 1  # all but the upsert its one request carried
    assert {(h[H_REASON], h[H_ACCOUNT]) for h in dead} == {
        (b"hubspot-install-revoked", b"acct-slow")}


def test_a_partial_batch_waits_to_fill_while_the_input_is_behind() -> None:
    """Each account's budget alone has slots to spare, but the process's capacity is shared:
    while polls come back full (more is waiting), a partial group waits; once the input is
    read, it goes at once."""
    accounts = Accounts(time.time)
    fast = commands_of("acct-fast", 1, 3)  # an upsert and three people: a partial batch of 5
    backlog = commands_of("acct-none", 1, 3000)  # dead-lettered at once; keeps input behind
    consumer = RealTimeConsumer(NoClock(), fast + backlog)  # type: ignore[arg-type]
    sink, _ = worker([], accounts, max_poll_records=4, max_wait_seconds=3600,
                     consumer=consumer)
    hub = accounts.hubspots["acct-fast"]
    unread_when_sent: list[int] = []
    try:
        def sent() -> bool:
            if hub.applied and not unread_when_sent:
                unread_when_sent.append(sum(len(q) for q in consumer.queues.values()))
            return sink.stats["applied"] >= len(fast)

        step_until(sink, sent)
    finally:
        sink.request_stop()
        sink.stop()
    assert len(hub.applied) == 3
    assert unread_when_sent == [0]  # not one attendance request before the backlog was read


def interleaved(*streams: list[tuple[int, Command]]) -> list[tuple[int, Command]]:
    return [c for group in zip(*streams, strict=True) for c in group]


def test_an_account_stuck_at_its_share_leaves_the_buffer_to_the_others() -> None:
    """acct-slow can send one request an hour; its commands beyond its share stay in Kafka,
    so the global bound (40 held) never fills and acct-fast gets everything through; no
    commit passes acct-slow's first record left in Kafka."""
    accounts = Accounts(time.time)
    slow, fast = commands_of("acct-slow", 1, 200), commands_of("acct-fast", 1, 200)
    consumer = RealTimeConsumer(NoClock(), interleaved(slow, fast))  # type: ignore[arg-type]
    sink, _ = worker([], accounts, consumer=consumer, max_buffered=40, max_held_per_account=10)
    try:
        step_until(sink, lambda: sink.stats["applied"] >= len(fast) + 1)  # + slow's upsert
        sink.commit(force=True)
        step_until(sink, lambda: 0 in consumer.committed)
    finally:
        sink.request_stop()
        sink.stop()
    assert len(accounts.hubspots["acct-fast"].applied) == 200
    assert sink.batcher.held_by("acct-slow") <= 10
    # the floor: acct-slow's first record left in Kafka, its 11th attendance command (the
    # upsert went, 10 are held): offset 2 x 11 of the interleaved partition
    assert consumer.committed[0] <= 2 * 11


def test_an_account_read_again_gets_every_command_once_and_in_order() -> None:
    """acct-slow drains slower than it is read: it skips and is read again many times, and
    every person of it is applied exactly once, as is every person of acct-fast; the commit
    reaches the end."""
    accounts = Accounts(time.time)
    accounts.hubspots["acct-slow"] = HubSpot(0.01)
    accounts.limits["acct-slow"] = 10_000
    slow, fast = commands_of("acct-slow", 2, 150), commands_of("acct-fast", 2, 150)
    consumer = RealTimeConsumer(NoClock(), interleaved(slow, fast))  # type: ignore[arg-type]
    sink, _ = worker([], accounts, consumer=consumer, max_buffered=60, max_held_per_account=8)
    try:
        step_until(sink, lambda: sink.stats["applied"] >= len(slow) + len(fast))
        sink.commit(force=True)
        step_until(sink, lambda: consumer.committed == consumer.ends)
    finally:
        sink.request_stop()
        sink.stop()
    assert consumer.seeks  # it was read again
    for account in ("acct-slow", "acct-fast"):
        applied = accounts.hubspots[account].applied
        assert len(applied) == 2 * 150, account
        assert all(len(interactions) == 1 for interactions in applied.values()), account
    assert sink.stats["applied"] == len(slow) + len(fast)


class WithoutEvents(HubSpot):
    """No event exists but those upserted: a look-up of another one is a 404."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(404, json={
                "status": "error", "message": "Event not found", "category": "OBJECT_NOT_FOUND",
                "correlationId": "c"})
        return super().__call__(request)


def test_commands_parked_for_a_missing_event_of_an_account_that_lost_its_install_go_at_once(
        ) -> None:
    """Attendance whose event HubSpot does not have is parked and probed, for up to the retry
    budget (60 s here). Once its account's install is revoked, nothing can create the event:
    the parked commands are dead-lettered at the next probe with the install's reason, and
    the partition's commit is no longer held back."""
    accounts = Accounts(time.time)
    accounts.hubspots["acct-fast"] = WithoutEvents(0.001)
    orphans = [(0, Command("acct-fast-w9", "acct-fast", Attendance(
        "REGISTERED", None, f"p{n}@acct-fast.io", T0 + n))) for n in range(3)]
    consumer = RealTimeConsumer(NoClock(), orphans)  # type: ignore[arg-type]
    sink, producer = worker([], accounts, consumer=consumer)
    try:
        step_until(sink, lambda: sink.stats["parked"] >= len(orphans))
        accounts.revoked.add("acct-fast")
        step_until(sink, lambda: len(producer.delivered) >= len(orphans), seconds=30)
        sink.commit(force=True)
        step_until(sink, lambda: consumer.committed == consumer.ends, seconds=30)
    finally:
        sink.request_stop()
        sink.stop()
    assert {(h[H_REASON], h[H_ACCOUNT]) for h in letters(producer)} == {
        (b"hubspot-install-revoked", b"acct-fast")}
