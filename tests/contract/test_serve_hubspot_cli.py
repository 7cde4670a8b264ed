"""`connector hubspot register-settings | show-settings` against the served sandbox: success and
one clear line plus a distinct exit code for each way HubSpot can refuse."""

from __future__ import annotations

from typing import Any

import httpx
from click.testing import CliRunner

from connector.cli.hubspot import EXIT_ACCESS, EXIT_FAILURE, EXIT_REJECTED, hubspot_group
from connector.sandbox import SandboxConfig
from tests.contract.conftest import OTHER_APP

APP = SandboxConfig.default().apps[0]
URL = "https://connector.example.com/events/%s"


def cli(sandbox_url: str, *args: str, token: str = APP.token, app_id: int = APP.app_id) -> Any:
    env = {"CONNECTOR_HUBSPOT__BASE_URL": sandbox_url, "CONNECTOR_HUBSPOT__ACCESS_TOKEN": token,
           "CONNECTOR_HUBSPOT__APP_ID": str(app_id),
           "CONNECTOR_HUBSPOT__REQUEST_TIMEOUT_SECONDS": "5"}
    return CliRunner().invoke(hubspot_group, list(args), env=env)


def test_register_then_show(sandbox_url: str) -> None:
    result = cli(sandbox_url, "register-settings", "--url", URL)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"app 1001: eventDetailsUrl = {URL}"
    state = httpx.get(f"{sandbox_url}/_sandbox/state").json()
    assert URL in str(state["settings"])
    shown = cli(sandbox_url, "show-settings")
    assert shown.exit_code == 0 and shown.output.strip() == f"app 1001: eventDetailsUrl = {URL}"


def test_a_url_serve_does_not_answer_is_registered_with_a_warning(sandbox_url: str) -> None:
    result = cli(sandbox_url, "register-settings", "--url", "https://c.example.com/x?id=%s")
    assert result.exit_code == 0
    assert "warning: connector serve answers /events/%s" in result.output


def test_show_settings_before_any_registration_is_exit_1(sandbox_url: str) -> None:
    result = cli(sandbox_url, "show-settings")
    assert result.exit_code == EXIT_FAILURE
    assert "HubSpot has no settings for app 1001" in result.output


def test_rejected_token_is_exit_3(sandbox_url: str) -> None:
    result = cli(sandbox_url, "register-settings", "--url", URL, token="pat-na1-wrong")
    assert result.exit_code == EXIT_ACCESS
    assert "HubSpot rejected the access token" in result.output
    assert "CONNECTOR_HUBSPOT__ACCESS_TOKEN" in result.output
    assert "pat-na1-wrong" not in result.output


def test_another_apps_settings_are_exit_3(sandbox_url: str) -> None:
    result = cli(sandbox_url, "register-settings", "--url", URL, "--app-id",
                 str(OTHER_APP.app_id))
    assert result.exit_code == EXIT_ACCESS
    assert f"settings of app {OTHER_APP.app_id}" in result.output


def test_a_400_is_exit_4(sandbox_url: str) -> None:
    httpx.put(f"{sandbox_url}/_sandbox/faults",
              json={"error_rates": {"settings.update": 1.0}, "error_status": 400}
              ).raise_for_status()
    result = cli(sandbox_url, "register-settings", "--url", URL)
    assert result.exit_code == EXIT_REJECTED
    assert "HubSpot rejected the request (HTTP 400" in result.output


def test_a_5xx_is_exit_1(sandbox_url: str) -> None:
    httpx.put(f"{sandbox_url}/_sandbox/faults",
              json={"error_rates": {"settings.update": 1.0}, "error_status": 503}
              ).raise_for_status()
    result = cli(sandbox_url, "register-settings", "--url", URL)
    assert result.exit_code == EXIT_FAILURE
    assert "HubSpot call failed: HTTP 503" in result.output


def test_unreachable_hubspot_is_exit_1() -> None:
    result = cli("http://127.0.0.1:9", "show-settings")  # discard port: connection refused
    assert result.exit_code == EXIT_FAILURE, result.output
    assert "HubSpot call failed" in result.output
