"""Faults on demand: error rates (seeded), latency, outage and 429-storm windows, dropped
connections, partial batch failures, runtime changes via /_sandbox/faults."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from connector.sandbox import ConnectionDropped, FaultConfig, SandboxConfig, Window, create_app
from connector.sandbox.faults import FaultInjector, FaultKind

P = "/marketing/v3/marketing-events"


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _client(faults: FaultConfig, **overrides: object) -> tuple[TestClient, dict[str, str]]:
    settings: dict[str, object] = {"window_limit": None, "daily_limit": None, **overrides}
    cfg = SandboxConfig.default(faults=faults, **settings)
    return TestClient(create_app(cfg)), {"Authorization": f"Bearer {cfg.apps[0].token}"}


def test_error_rate_is_per_operation_and_reproducible_with_a_seed() -> None:
    faults = FaultConfig(seed=7, error_rate=0.0, error_rates={"events.list": 0.5}, error_status=502)
    outcomes = []
    for _ in range(2):
        injector = FaultInjector(faults)
        outcomes.append([injector.decide("events.list", 0).kind for _ in range(50)])
        assert {injector.decide("events.get", 0).kind for _ in range(20)} == {FaultKind.NONE}
    assert outcomes[0] == outcomes[1]
    assert 10 < outcomes[0].count(FaultKind.ERROR) < 40


def test_injected_error_status_and_body() -> None:
    client, auth = _client(FaultConfig(error_rates={"events.list": 1.0}, error_status=502))
    answer = client.get(f"{P}/", headers=auth)
    assert answer.status_code == 502 and answer.json()["category"] == "SERVICE_UNAVAILABLE"
    assert client.get(f"{P}/1", headers=auth).status_code == 404  # other operations unaffected


def test_outage_window_answers_5xx_only_inside_the_window() -> None:
    clock = FakeClock()
    client, auth = _client(FaultConfig(outage=Window(start=1_010, duration=5)), clock=clock)
    assert client.get(f"{P}/", headers=auth).status_code == 200
    clock.now = 1_012
    assert client.get(f"{P}/", headers=auth).status_code == 503
    clock.now = 1_015
    assert client.get(f"{P}/", headers=auth).status_code == 200


def test_429_storm_window() -> None:
    clock = FakeClock()
    client, auth = _client(
        FaultConfig(storm=Window(start=1_000, duration=1)), clock=clock, window_limit=100
    )
    storm = client.get(f"{P}/", headers=auth)
    assert storm.status_code == 429 and storm.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert storm.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    clock.now += 1
    assert client.get(f"{P}/", headers=auth).status_code == 200
    assert client.get("/_sandbox/counters").json()["rateLimited"] == 1


def test_dropped_connection_raises_a_transport_error_in_process() -> None:
    client, auth = _client(FaultConfig(drop_rates={"events.list": 1.0}))
    with pytest.raises(ConnectionDropped):
        client.get(f"{P}/", headers=auth)
    log = client.get("/_sandbox/requests").json()
    assert log[-1]["fault"] == "drop" and log[-1]["status"] is None


def test_latency_uses_the_injected_sleep() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    client, auth = _client(
        FaultConfig(latency_seconds=0.25, latencies={"events.get": 2.0}), sleep=sleep
    )
    client.get(f"{P}/", headers=auth)
    client.get(f"{P}/events/x?externalAccountId=a", headers=auth)
    assert slept == [0.25, 2.0]


def test_partial_batch_failure_knob_fails_inputs_individually() -> None:
    client, auth = _client(FaultConfig(seed=3, batch_input_failure_rate=0.5))
    body = {
        "inputs": [
            {
                "externalAccountId": "a",
                "externalEventId": f"e{n}",
                "eventName": "E",
                "eventOrganizer": "O",
            }
            for n in range(20)
        ]
    }
    answer = client.post(f"{P}/events/upsert", json=body, headers=auth).json()
    assert answer["numErrors"] == len(answer["errors"]) > 0
    assert len(answer["results"]) + answer["numErrors"] == 20
    failed = {e["context"]["externalEventId"][0] for e in answer["errors"]}
    stored = {e["external_event_id"] for e in client.get("/_sandbox/events").json()}
    assert stored == {f"e{n}" for n in range(20)} - failed
    assert all(e["category"] == "INTERNAL_ERROR" for e in answer["errors"])


def test_faults_can_be_set_and_cleared_at_runtime() -> None:
    clock = FakeClock()
    client, auth = _client(FaultConfig(), clock=clock)
    put = client.put(
        "/_sandbox/faults", json={"outage": {"start_in": 0, "duration": 30}, "outage_status": 504}
    )
    assert put.json()["outage"] == {"start": 1_000.0, "duration": 30.0}
    assert client.get(f"{P}/", headers=auth).status_code == 504
    assert client.put("/_sandbox/faults", json={"bogus": 1}).status_code == 400
    client.delete("/_sandbox/faults")
    assert client.get(f"{P}/", headers=auth).status_code == 200
    stats = client.get("/_sandbox/counters").json()
    assert stats["faults"] == {"outage": 1} and stats["requests"] == 2


def test_fault_config_rejects_bad_rates() -> None:
    with pytest.raises(ValueError, match="error_rate"):
        FaultConfig(error_rate=1.5)


def test_a_window_after_the_first_request_starts_whenever_that_request_comes() -> None:
    storm = Window(start=0, duration=3, after_first_request=True)
    injector = FaultInjector(FaultConfig(storm=storm))
    # Long after the config was made (an absolute window at 0 would be over): still a storm.
    assert injector.decide("events.list", 5_000).kind is FaultKind.STORM
    assert injector.decide("events.list", 5_002.9).kind is FaultKind.STORM
    assert injector.decide("events.list", 5_003).kind is FaultKind.NONE
    assert injector.injected == {"storm": 2}
    assert storm.anchored(10) == Window(start=10, duration=3)
    assert Window(start=7, duration=1).anchored(10) == Window(start=7, duration=1)


def test_an_outage_after_the_first_request_set_at_runtime() -> None:
    clock = FakeClock()
    client, auth = _client(FaultConfig(), clock=clock)
    put = client.put("/_sandbox/faults", json={
        "outage": {"start_in": 1, "duration": 2, "after_first_request": True}})
    assert put.json()["outage"] == {"start_in": 1.0, "duration": 2.0, "after_first_request": True}
    clock.now = 1_100.0  # the client is late: a window counted from the PUT would be over
    assert client.get(f"{P}/", headers=auth).status_code == 200  # the first request, at 1_100
    clock.now = 1_101.0
    assert client.get(f"{P}/", headers=auth).status_code == 503
    clock.now = 1_102.9
    assert client.get(f"{P}/", headers=auth).status_code == 503
    clock.now = 1_103.0
    assert client.get(f"{P}/", headers=auth).status_code == 200
    assert client.get("/_sandbox/counters").json()["faults"] == {"outage": 2}
    assert client.get("/_sandbox/faults").json() == put.json()


def test_after_first_request_windows_parse_and_round_trip() -> None:
    config = FaultConfig.from_dict(
        {"storm": {"duration": 3, "after_first_request": True}}, now=1_000)
    assert config.storm == Window(start=0, duration=3, after_first_request=True)
    assert FaultConfig.from_dict(config.to_dict(), now=2_000) == config
    absolute = FaultConfig.from_dict({"storm": {"start_in": 1, "duration": 3}}, now=1_000)
    assert absolute.storm == Window(start=1_001, duration=3)
    with pytest.raises(ValueError, match="start_in, not start"):
        FaultConfig.from_dict(
            {"storm": {"start": 5, "duration": 3, "after_first_request": True}}, now=0)
    with pytest.raises(ValueError, match="true or false"):
        FaultConfig.from_dict(
            {"outage": {"duration": 3, "after_first_request": "yes"}}, now=0)
