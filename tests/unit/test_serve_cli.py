"""`connector serve` and `connector hubspot` without a network: settings and usage errors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from connector.cli.hubspot import hubspot_group
from connector.cli.serve import serve_command

URL = "https://connector.example.com/events/%s"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("CONNECTOR_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(("env", "named", "not_named"), [
    ({}, ["CONNECTOR_HUBSPOT__CLIENT_SECRET", "CONNECTOR_HUBSPOT__APP_ID"], []),
    ({"CONNECTOR_HUBSPOT__APP_ID": "1001"}, ["CONNECTOR_HUBSPOT__CLIENT_SECRET"],
     ["CONNECTOR_HUBSPOT__APP_ID"]),
    ({"CONNECTOR_HUBSPOT__CLIENT_SECRET": "s3cr3t-value"}, ["CONNECTOR_HUBSPOT__APP_ID"],
     ["CONNECTOR_HUBSPOT__CLIENT_SECRET"]),
])
def test_serve_names_the_missing_app_settings(env: dict[str, str], named: list[str],
                                              not_named: list[str]) -> None:
    result = CliRunner().invoke(serve_command, ["--port", "0"],
                                env={**env, "CONNECTOR_TELEMETRY__METRICS": "none"})
    assert result.exit_code == 2, result.output
    for name in named:
        assert name in result.output
    for name in not_named:
        assert name not in result.output
    assert "s3cr3t-value" not in result.output


@pytest.mark.parametrize(("url", "why"), [
    ("http://connector.example.com/events/%s", "https://"),
    ("https:///events/%s", "https://"),
    ("https://connector.example.com/events/", "%s"),
    ("https://connector.example.com/%s/events/%s", "%s"),
])
def test_register_settings_refuses_urls_hubspot_refuses(url: str, why: str) -> None:
    result = CliRunner().invoke(hubspot_group, ["register-settings", "--url", url],
                                env={"CONNECTOR_HUBSPOT__ACCESS_TOKEN": "pat-x",
                                     "CONNECTOR_HUBSPOT__APP_ID": "1001"})
    assert result.exit_code == 2, result.output
    assert why in result.output


def test_register_settings_needs_a_token_and_an_app_id() -> None:
    no_token = CliRunner().invoke(hubspot_group, ["register-settings", "--url", URL],
                                  env={"CONNECTOR_HUBSPOT__APP_ID": "1001"})
    assert no_token.exit_code == 2
    assert "CONNECTOR_HUBSPOT__ACCESS_TOKEN" in no_token.output
    no_app = CliRunner().invoke(hubspot_group, ["show-settings"],
                                env={"CONNECTOR_HUBSPOT__ACCESS_TOKEN": "pat-x"})
    assert no_app.exit_code == 2
    assert "CONNECTOR_HUBSPOT__APP_ID" in no_app.output and "--app-id" in no_app.output


def test_a_port_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(serve_command, ["--port", str(port)], env={
            "CONNECTOR_HUBSPOT__CLIENT_SECRET": "s", "CONNECTOR_HUBSPOT__APP_ID": "1001",
            "CONNECTOR_TELEMETRY__METRICS": "none"})
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
