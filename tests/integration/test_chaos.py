"""The chaos run, short form: kills, broker restarts (one graceful, one hard) and HubSpot faults
(one run with HubSpot's latency and two sinks),
judged by the oracle; no worker may exit by itself (a crash the supervisor had to restart)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.chaos import ChaosPlan, run_chaos

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("seed", "latency", "sinks"), [(11, 0.0, 1), (12, 0.15, 2)])
def test_nothing_is_lost_or_duplicated_under_chaos(seed: int, latency: float, sinks: int,
                                                   tmp_path: Path) -> None:
    """Seed 12: HubSpot answers in 0.15 s + 1 ms per input, so the sinks have many requests
    in flight when they are killed, revoked (two sinks in one group) or rate-limited."""
    plan = ChaosPlan(seed=seed, webinars=3, people_per_webinar=150, kills=3,
                     broker_restarts=2, hard_restarts=0.5, fault_horizon=15, timeout=240,
                     hubspot_latency=latency, sinks=sinks)
    result = run_chaos(plan, tmp_path)
    timeline = "\n".join(result.events)
    assert not result.unexpected_exits, f"{timeline}\nworker logs in {tmp_path}"
    assert not result.differences, f"{timeline}\n" + "\n".join(result.differences)
    assert result.activities > 1000 and "restart-broker" in timeline
    assert "restart-broker:graceful" in timeline and "restart-broker:hard" in timeline
