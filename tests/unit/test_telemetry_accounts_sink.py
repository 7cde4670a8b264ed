"""The sink's per-account series in app mode: each HubSpot account's budget and 429s under its
key (the hub id, or a hash of a private-app token: never the token), dead letters under the
platform account; what app mode's wiring (``account_destinations``) registers, and what a
running worker counts."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from connector.config import load_settings
from connector.dlq.envelope import DeadLetter, Stage
from connector.installs.model import Install
from connector.installs.registry import InstallTable
from connector.installs.routing import Route, private_key
from connector.runtime import sink as runtime_sink
from connector.serde.record import SourceRecord
from connector.serde.topic import TopicDecoder
from connector.sink.accounts import Destination, Destinations
from connector.sink.batch import Batcher
from connector.sink.budget import RateBudget
from connector.sink.dead_letters import DeadLetters
from connector.sink.flight import Concurrency
from connector.sink.intake import Intake
from connector.sink.offsets import AssignedOffsets
from connector.sink.options import SinkOptions
from connector.sink.park import ParkingLot
from connector.sink.request import EventKey
from connector.sink.worker import SinkWorker
from connector.telemetry import Telemetry
from connector.telemetry.progress import ProgressWatch
from tests.unit.installs_helpers import NOW, FakeClock, MemoryWriter, oauth_install
from tests.unit.test_sink_accounts import Accounts, NoClock, commands_of, step_until
from tests.unit.test_sink_in_flight import HubSpot, RealTimeConsumer
from tests.unit.test_sink_worker import CODEC, TOPIC, Consumer
from tests.unit.test_sink_worker_kafka import Producer

PRIVATE_TOKEN = "pat-na1-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
OAUTH_TOKEN = "oauth-access-token-0123456789"
APP_MODE = {"CONNECTOR_HUBSPOT__MODE": "app", "CONNECTOR_HUBSPOT__CLIENT_ID": "client-id",
            "CONNECTOR_HUBSPOT__CLIENT_SECRET": "client-secret-value",
            "CONNECTOR_HUBSPOT__REDIRECT_URL": "https://c.example.com/hubspot/oauth/callback",
            "CONNECTOR_INSTALLS__ENCRYPTION_KEYS": "A" * 43 + "=",
            "CONNECTOR_INSTALLS__STATE_SECRET": "state-secret-0123456789",
            "CONNECTOR_INSTALLS__INSTALL_LINK_SECRET": "link-secret-0123456789"}
USED = "connector.sink.account.budget.used"
LIMIT = "connector.sink.account.budget.limit"
THROTTLED = "connector.sink.account.throttled"
DEAD = "connector.sink.account.dead_letters"


@dataclass
class FakeRegistry:
    """What account_destinations reads of the install registry."""

    table: InstallTable
    writer: MemoryWriter

    def close(self) -> None:
        return None


def hubspot(request: httpx.Request) -> httpx.Response:
    """429 to the private-app token (its account is throttled), 404 to anyone else."""
    if request.headers["authorization"] == f"Bearer {PRIVATE_TOKEN}":
        return httpx.Response(429, headers={"Retry-After": "1"}, json={
            "status": "error", "message": "You have reached your secondly limit.",
            "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING",
            "correlationId": "c-1"})
    return httpx.Response(404, json={"status": "error", "message": "not found",
                                     "correlationId": "c-2", "category": "OBJECT_NOT_FOUND"})


def test_app_mode_destinations_report_budget_and_429s_by_account_key_never_a_token(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    table = InstallTable()
    table.put(Install.private_app("acct-p", PRIVATE_TOKEN, hub_id=333, now=NOW))
    table.put(oauth_install("acct-o", hub_id=111, access=OAUTH_TOKEN, expires_at=NOW + 1800))
    registry = FakeRegistry(table, MemoryWriter(table))
    monkeypatch.setattr(runtime_sink, "open_registry", lambda settings, follow: registry)
    settings = load_settings(APP_MODE)
    clock = FakeClock()
    intake = Intake(Consumer(clock, []), SinkOptions(topic=TOPIC, dlq_topic=f"{TOPIC}.dlq"),
                    stop=threading.Event(), clock=clock)
    key = private_key(PRIVATE_TOKEN)

    with Telemetry.for_tests(prometheus=True) as telemetry, \
            caplog.at_level(logging.DEBUG, logger="connector"):
        destinations, parts = runtime_sink.account_destinations(
            settings, intake, telemetry, httpx.MockTransport(hubspot), clock)
        private, oauth = destinations.of("acct-p"), destinations.of("acct-o")
        assert isinstance(private, Destination) and isinstance(oauth, Destination)
        for _ in range(2):
            assert private.applier.lookup(EventKey("acct-p", "w1")) is None  # 429
        assert oauth.applier.lookup(EventKey("acct-o", "w1")) is None  # 404: not throttled

        v = telemetry.metric_value
        assert v(THROTTLED, account=key) == 2 and v(THROTTLED, account="111") is None
        assert v(USED, account="111") == 1  # the 404 counts in its window
        assert v(LIMIT, account="111") == 110
        assert v(USED, account=key) == 0  # HubSpot did not count its 429s
        assert v(LIMIT, account=key) == settings.sink.window_limit
        labels = {value for name in (USED, LIMIT, THROTTLED)
                  for point in telemetry.metric_points(name) for _, value in point}
        text = telemetry.prometheus_text()[0].decode()
        parts.close()

    assert labels == {key, "111"}
    lines = [r.getMessage() for r in caplog.records]
    for secret in (PRIVATE_TOKEN, OAUTH_TOKEN, "client-secret-value"):
        assert secret not in text
        assert not any(secret in line for line in lines)
    assert f"sink.account_destination key={key} kind=private-app account=acct-p" in lines
    assert "sink.account_destination key=111 kind=oauth account=acct-o" in lines


def test_dead_letters_count_under_their_platform_account() -> None:
    producer = Producer()
    progress = ProgressWatch("sink", clock=time.time)
    with Telemetry.for_tests() as telemetry:
        letters = DeadLetters(producer, dlq_topic="dlq", offsets=AssignedOffsets(progress),
                              clock=time.time, metrics=telemetry.metrics, progress=progress,
                              stats=Counter())
        for offset, (account, reason) in enumerate([
                ("acct-1", "rejected"), ("acct-1", "rejected"), ("acct-2", "no-hubspot-install"),
                (None, "undecodable")]):
            letters.send(DeadLetter(SourceRecord(TOPIC, 0, offset, b"k", b"v"), Stage.SINK,
                                    reason, "m", "sink", account=account))
        points = {tuple(sorted(k)): v for k, v in telemetry.metric_points(DEAD).items()}
        assert points == {(("account", "acct-1"), ("reason", "rejected")): 2,
                          (("account", "acct-2"), ("reason", "no-hubspot-install")): 1}
        # every letter, with an account or not, is in the process-wide counter
        assert sum(telemetry.metric_points("connector.dead_letters").values()) == 4


class ObservedAccounts(Accounts):
    """Accounts whose destinations are wired as app mode wires them: the applier counts its
    account's 429s, the budget is watched."""

    def __init__(self, clock: Any, telemetry: Telemetry) -> None:
        super().__init__(clock)
        self.telemetry = telemetry

    def applier_options(self, route: Route, budget: RateBudget) -> dict[str, Any]:
        metrics = self.telemetry.metrics
        metrics.watch_account_budget(route.account_key, budget)
        return {"account": route.account_key, "metrics": metrics}


def test_a_running_worker_counts_each_accounts_budget_429s_and_dead_letters() -> None:
    with Telemetry.for_tests() as telemetry:
        accounts = ObservedAccounts(time.time, telemetry)
        accounts.hubspots["acct-fast"] = HubSpot(0.001, storm=0.3, seed=7)
        fast, orphan = commands_of("acct-fast", 2, 10), commands_of("acct-none", 1, 3)
        clock = time.time
        consumer = RealTimeConsumer(NoClock(), fast + orphan)  # type: ignore[arg-type]
        intake = Intake(consumer, SinkOptions(topic=TOPIC, dlq_topic=f"{TOPIC}.dlq",
                                              poll_seconds=0.01, landing_seconds=10,
                                              drain_seconds=0.2),
                        stop=threading.Event(), clock=clock)
        producer = Producer()
        sink = SinkWorker(
            intake, producer=producer, applier=None, decoder=TopicDecoder(CODEC),
            batcher=Batcher(max_inputs=5, linger_seconds=0.0, clock=clock, max_wait_seconds=1),
            parking=ParkingLot(budget_seconds=60, clock=clock),
            concurrency=Concurrency(4, initial=4), telemetry=telemetry,
            destinations=Destinations(resolve=accounts.resolve,
                                      build=lambda route: accounts.build(route, intake)))
        consumer.on_commit = sink.on_commit
        sink.start()
        try:
            step_until(sink, lambda: sink.stats["applied"] >= len(fast)
                       and len(producer.delivered) >= len(orphan))
        finally:
            sink.request_stop()
            sink.stop()

        storm = accounts.hubspots["acct-fast"]
        assert storm.rate_limited > 0
        assert telemetry.metric_value(THROTTLED, account="hub-acct-fast") == storm.rate_limited
        assert telemetry.metric_value(LIMIT, account="hub-acct-fast") == 10_000
        assert telemetry.metric_value(USED, account="hub-acct-fast") >= 1
        assert telemetry.metric_value(DEAD, account="acct-none",
                                      reason="no-hubspot-install") == len(orphan)
