"""Faults over a real socket (uvicorn): dropped connections and runtime fault changes."""

from __future__ import annotations

import httpx
import pytest

from connector.sandbox import SandboxConfig

LIST = "/marketing/v3/marketing-events/"


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
