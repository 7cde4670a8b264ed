"""Faults over a real socket (uvicorn): dropped connections and runtime fault changes."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from connector.sandbox import SandboxConfig

LIST = "/marketing/v3/marketing-events/"
ATTEND = "/marketing/v3/marketing-events/attendance/e1/register/email-create"


def test_dropped_connection_closes_the_socket_without_a_response(
    sandbox_url: str, sandbox_config: SandboxConfig
) -> None:
    auth = {"Authorization": f"Bearer {sandbox_config.apps[0].token}"}
    httpx.put(f"{sandbox_url}/_sandbox/faults", json={"drop_rates": {"events.list": 1.0}})
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{sandbox_url}{LIST}", headers=auth)
    assert httpx.get(f"{sandbox_url}{LIST}1", headers=auth).status_code == 404  # server alive
    httpx.delete(f"{sandbox_url}/_sandbox/faults")
    assert httpx.get(f"{sandbox_url}{LIST}", headers=auth).status_code == 200
    log = httpx.get(f"{sandbox_url}/_sandbox/requests?operation=events.list").json()
    assert [(r.get("fault"), r["status"]) for r in log] == [
        ("drop", None),
        (None, 200),
    ]


def test_outage_over_the_wire(sandbox_url: str, sandbox_config: SandboxConfig) -> None:
    auth = {"Authorization": f"Bearer {sandbox_config.apps[0].token}"}
    httpx.put(
        f"{sandbox_url}/_sandbox/faults",
        json={"outage": {"start_in": -1, "duration": 3600}, "outage_status": 502},
    )
    answer = httpx.get(f"{sandbox_url}{LIST}", headers=auth)
    assert answer.status_code == 502 and answer.json()["status"] == "error"
    assert answer.headers["X-HubSpot-Correlation-Id"]


def _timed(send: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = send()
    return answer, time.monotonic() - started


def test_a_served_request_takes_at_least_its_modelled_latency(
    sandbox_url: str, sandbox_config: SandboxConfig
) -> None:
    """Lower bounds only: a loaded machine may be slower, never faster than the model."""
    auth = {"Authorization": f"Bearer {sandbox_config.apps[0].token}"}
    model = {"base_seconds": 0.05, "per_input_seconds": 0.01, "jitter": 0.0}
    httpx.put(f"{sandbox_url}/_sandbox/faults", json={"latency_model": model}).raise_for_status()
    listed, elapsed = _timed(lambda: httpx.get(f"{sandbox_url}{LIST}", headers=auth))
    assert listed.status_code == 200 and elapsed >= 0.05
    body = {"inputs": [{"email": f"p{n}@example.com", "interactionDateTime": 1_700_000_000_000}
                       for n in range(5)]}
    batch, elapsed = _timed(lambda: httpx.post(f"{sandbox_url}{ATTEND}", json=body, headers=auth))
    assert batch.status_code < 500 and elapsed >= 0.05 + 5 * 0.01
