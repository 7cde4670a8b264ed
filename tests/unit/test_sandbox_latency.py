"""The sandbox's latency model: base, per-input cost, seeded jitter, per-operation overrides;
its JSON and CLI forms; and the pipeline holding a request without holding the others."""

from __future__ import annotations

import asyncio
import random
import socket

import httpx
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from connector.cli import sandbox as sandbox_cli
from connector.sandbox import (
    FaultConfig,
    LatencyModel,
    LatencyOverride,
    SandboxApp,
    SandboxConfig,
    create_app,
)
from connector.sandbox.faults import FaultInjector, FaultKind
from connector.sandbox.latency import (
    LatencyCost,
    batch_inputs,
    cost_of,
    delay_for,
    jittered,
    nominal_delay,
)

P = "/marketing/v3/marketing-events"


def _inputs(n: int) -> dict[str, object]:
    return {"inputs": [{"email": f"p{i}@example.com", "interactionDateTime": 1_700_000_000_000}
                       for i in range(n)]}


def test_base_only_delays_every_request_alike_whatever_it_carries() -> None:
    model = LatencyModel(base_seconds=0.25)
    rng = random.Random(1)
    assert delay_for(model, "events.get", 0, rng) == 0.25
    assert delay_for(model, "attendance.email_create", 100, rng) == 0.25


def test_per_input_cost_scales_with_the_batch() -> None:
    cost = LatencyCost(base_seconds=0.1, per_input_seconds=0.002)
    assert nominal_delay(cost, 0) == pytest.approx(0.1)
    assert nominal_delay(cost, 1) == pytest.approx(0.102)
    assert nominal_delay(cost, 100) == pytest.approx(0.3)
    assert nominal_delay(cost, -3) == pytest.approx(0.1)  # never below the base


def test_jitter_stays_within_its_bounds_and_spreads_across_them() -> None:
    rng = random.Random(42)
    draws = [jittered(0.5, 0.2, rng) for _ in range(2_000)]
    assert all(0.4 <= d <= 0.6 for d in draws)
    assert min(draws) < 0.41 and max(draws) > 0.59  # uniform: it reaches both ends
    assert 0.49 < sum(draws) / len(draws) < 0.51  # and is centred on the nominal delay


def test_jitter_repeats_with_the_same_seed_and_differs_with_another() -> None:
    model = LatencyModel(base_seconds=0.2, per_input_seconds=0.001, jitter=0.3)

    def sequence(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [delay_for(model, "attendance.create", n, rng) for n in range(50)]

    assert sequence(7) == sequence(7)
    assert sequence(7) != sequence(8)


def test_no_jitter_draws_nothing_from_the_rng() -> None:
    rng = random.Random(5)
    state = rng.getstate()
    assert jittered(0.3, 0.0, rng) == 0.3 and jittered(0.0, 0.5, rng) == 0.0
    assert rng.getstate() == state


def test_an_operation_override_replaces_only_the_fields_it_sets() -> None:
    model = LatencyModel(base_seconds=0.25, per_input_seconds=0.001, operations={
        "attendance.email_create": LatencyOverride(per_input_seconds=0.004),
        "events.get": LatencyOverride(base_seconds=0.05),
    })
    assert cost_of(model, "attendance.email_create") == LatencyCost(0.25, 0.004)
    assert cost_of(model, "events.get") == LatencyCost(0.05, 0.001)
    assert cost_of(model, "events.list") == LatencyCost(0.25, 0.001)
    rng = random.Random(0)
    assert delay_for(model, "attendance.email_create", 100, rng) == pytest.approx(0.65)
    assert delay_for(model, "events.list", 100, rng) == pytest.approx(0.35)
    assert model.counts_inputs("events.list")
    assert not LatencyModel(base_seconds=1).counts_inputs("events.list")


def test_batch_inputs_counts_the_inputs_list_only() -> None:
    assert batch_inputs(b'{"inputs": [{}, {}, {}]}') == 3
    assert batch_inputs(b'{"inputs": "x"}') == 0
    assert batch_inputs(b'[{}, {}]') == 0
    assert batch_inputs(b"{not json") == 0
    assert batch_inputs(b"") == 0


def test_the_model_round_trips_through_fault_json_and_rejects_bad_values() -> None:
    data = {"latency_model": {"base_seconds": 0.25, "per_input_seconds": 0.001, "jitter": 0.2,
                              "operations": {"events.get": {"base_seconds": 0.05}}}}
    config = FaultConfig.from_dict(data, now=0)
    assert config.latency_model.operations["events.get"] == LatencyOverride(base_seconds=0.05)
    assert FaultConfig.from_dict(config.to_dict(), now=0) == config
    assert config.to_dict()["latency_model"] == {**data["latency_model"]}
    for bad in ({"jitter": 1.5}, {"base_seconds": -1}, {"bogus": 1},
                {"operations": {"events.get": {"per_input_seconds": -0.1}}}):
        with pytest.raises(ValueError):
            FaultConfig.from_dict({"latency_model": bad}, now=0)
    with pytest.raises(ValueError, match="latency_model"):
        FaultConfig.from_dict({"latency_model": None}, now=0)


def test_turning_jitter_on_leaves_the_seeded_fault_decisions_unchanged() -> None:
    def kinds(model: LatencyModel) -> list[FaultKind]:
        injector = FaultInjector(FaultConfig(seed=3, error_rate=0.3, latency_model=model))
        return [injector.decide("events.list", 0, inputs=10).kind for _ in range(100)]

    assert kinds(LatencyModel()) == kinds(LatencyModel(base_seconds=0.1, jitter=0.5))


def _recording_client(faults: FaultConfig) -> tuple[TestClient, dict[str, str], list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    cfg = SandboxConfig.default(faults=faults, window_limit=None, daily_limit=None, sleep=sleep)
    auth = {"Authorization": f"Bearer {cfg.apps[0].token}"}
    return TestClient(create_app(cfg)), auth, slept


def test_the_pipeline_sleeps_base_plus_the_body_inputs_plus_the_fixed_latency() -> None:
    model = LatencyModel(base_seconds=0.1, per_input_seconds=0.01)
    client, auth, slept = _recording_client(FaultConfig(latency_seconds=0.5, latency_model=model))
    client.get(f"{P}/", headers=auth)
    client.post(f"{P}/attendance/e1/register/email-create", json=_inputs(5), headers=auth)
    assert slept == [pytest.approx(0.6), pytest.approx(0.65)]


def test_the_admin_endpoint_sets_the_model_at_runtime() -> None:
    client, auth, slept = _recording_client(FaultConfig())
    put = client.put("/_sandbox/faults", json={"latency_model": {
        "base_seconds": 0.2, "operations": {"events.get": {"base_seconds": 0.03}}}})
    assert put.status_code == 200 and put.json()["latency_model"]["base_seconds"] == 0.2
    client.get(f"{P}/", headers=auth)
    client.get(f"{P}/events/x?externalAccountId=a", headers=auth)
    assert slept == [pytest.approx(0.2), pytest.approx(0.03)]
    bad = client.put("/_sandbox/faults", json={"latency_model": {"jitter": 2}})
    assert bad.status_code == 400


def test_a_held_request_does_not_hold_the_others() -> None:
    """The slow request's sleep waits on an event only released once the fast one answered:
    were the sleep blocking the loop, the fast request could never complete."""
    released = asyncio.Event()

    async def gated_sleep(seconds: float) -> None:
        await released.wait()

    model = LatencyModel(base_seconds=1.0, operations={"events.get": LatencyOverride(0.0)})
    cfg = SandboxConfig.default(faults=FaultConfig(latency_model=model), window_limit=None,
                                daily_limit=None, sleep=gated_sleep)
    auth = {"Authorization": f"Bearer {cfg.apps[0].token}"}

    async def scenario(app: SandboxApp) -> tuple[int, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            slow = asyncio.create_task(client.get(f"{P}/", headers=auth))
            fast = await client.get(f"{P}/events/x?externalAccountId=a", headers=auth)
            assert not slow.done()
            released.set()
            return fast.status_code, (await slow).status_code

    assert asyncio.run(scenario(create_app(cfg))) == (404, 200)
    assert SandboxConfig.default().sleep is asyncio.sleep  # what serves outside tests


def test_cli_flags_build_the_model_and_latency_stays_a_plain_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[SandboxConfig] = []

    class FakeServer:  # serves nothing: closes the bound socket as uvicorn would
        def run(self, sockets: list[socket.socket]) -> None:
            for sock in sockets:
                sock.close()

    def fake_server(app: SandboxApp, **_: object) -> FakeServer:
        built.append(app.sandbox.config)
        return FakeServer()

    monkeypatch.setattr(sandbox_cli, "uvicorn_server", fake_server)
    runner = CliRunner()
    args = ["--latency-base", "0.25", "--latency-per-input", "0.001", "--latency-jitter", "0.2",
            "--latency-operation", "events.get=0.05", "--latency-operation", "batch.upsert=0:0.01"]
    assert runner.invoke(sandbox_cli.sandbox_command, args).exit_code == 0
    assert runner.invoke(sandbox_cli.sandbox_command, ["--latency", "0.3"]).exit_code == 0
    bad = runner.invoke(sandbox_cli.sandbox_command, ["--latency-operation", "events.get"])
    assert bad.exit_code != 0 and "OP=BASE" in bad.output
    full, plain = (config.faults.latency_model for config in built)
    assert full == LatencyModel(0.25, 0.001, 0.2, {
        "events.get": LatencyOverride(base_seconds=0.05),
        "batch.upsert": LatencyOverride(base_seconds=0.0, per_input_seconds=0.01)})
    assert plain == LatencyModel(base_seconds=0.3)
