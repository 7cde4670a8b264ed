"""`connector sandbox` with accounts and an OAuth app: the flags build the config, the banner keeps
its first three lines (benches parse them) and prints the OAuth credentials and the accounts."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import CliRunner

from connector.cli import sandbox as sandbox_cli
from connector.sandbox import SandboxApp, SandboxConfig


class FakeServer:  # serves nothing: closes the bound socket as uvicorn would
    def run(self, sockets: list[socket.socket]) -> None:
        for sock in sockets:
            sock.close()


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[SandboxConfig]:
    configs: list[SandboxConfig] = []

    def fake_server(app: SandboxApp, **_: object) -> FakeServer:
        configs.append(app.sandbox.config)
        return FakeServer()

    monkeypatch.setattr(sandbox_cli, "uvicorn_server", fake_server)
    return configs


def test_the_flags_build_accounts_and_the_oauth_app(built: list[SandboxConfig]) -> None:
    args = [
        "--accounts", "3", "--access-token-ttl", "60", "--auth-code-ttl", "30",
        "--oauth-app-id", "8008", "--oauth-client-id", "cid-8008",
        "--oauth-client-secret", "csecret-8008",
        "--oauth-redirect-uri", "https://connector.example.com/cb",
        "--oauth-redirect-uri", "http://localhost:8080/cb",
        "--oauth-scopes", "crm.objects.marketing_events.read,crm.objects.marketing_events.write",
        "--oauth-optional-scopes", "crm.objects.contacts.write",
        "--oauth-window-limit", "0", "--access-tokens-survive-uninstall",
    ]
    result = CliRunner().invoke(sandbox_cli.sandbox_command, args)
    assert result.exit_code == 0, result.output
    (cfg,) = built
    assert cfg.hub_ids == (62515, 70000001, 70000002, 70000003)
    (app,) = cfg.oauth_apps
    assert (app.app_id, app.client_id, app.client_secret) == (8008, "cid-8008", "csecret-8008")
    assert app.redirect_uris == ("https://connector.example.com/cb", "http://localhost:8080/cb")
    assert app.scopes == {"crm.objects.marketing_events.read", "crm.objects.marketing_events.write"}
    assert app.optional_scopes == {"crm.objects.contacts.write"}
    assert (cfg.access_token_ttl_seconds, cfg.auth_code_ttl_seconds) == (60.0, 30.0)
    assert cfg.oauth_window_limit is None and cfg.access_tokens_survive_uninstall is True
    lines = result.output.splitlines()
    assert lines[0].startswith("HubSpot sandbox listening on http://127.0.0.1:")
    assert lines[1].startswith("  base URL : http://127.0.0.1:")
    assert re.match(r"  token    : pat-na1-\S+  \(app 1001; Authorization: Bearer <token>\)$",
                    lines[2])
    assert lines[3].startswith("  admin    : ")
    assert "client_id cid-8008  client_secret csecret-8008  (app 8008;" in lines[4]
    assert lines[5].startswith("  accounts : 62515 (default), 70000001, 70000002, 70000003")


def test_defaults_keep_one_account_and_the_default_oauth_app(built: list[SandboxConfig]) -> None:
    result = CliRunner().invoke(sandbox_cli.sandbox_command, [])
    assert result.exit_code == 0, result.output
    (cfg,) = built
    default = SandboxConfig.default()
    assert cfg.hub_ids == (62515,) and cfg.oauth_apps == default.oauth_apps
    assert cfg.access_token_ttl_seconds == 1800.0 and cfg.oauth_window_limit == 110
    assert result.output.splitlines()[5].startswith("  accounts : 62515 (default)  (admin: ")


def test_many_accounts_are_summarised_and_bad_redirects_refused(
    built: list[SandboxConfig],
) -> None:
    many = CliRunner().invoke(sandbox_cli.sandbox_command, ["--accounts", "50"])
    assert many.exit_code == 0, many.output
    assert "62515 (default), 70000001..70000050 (50 more)" in many.output
    bad = CliRunner().invoke(
        sandbox_cli.sandbox_command, ["--oauth-redirect-uri", "http://example.com/cb"]
    )
    assert bad.exit_code != 0 and "must use https" in bad.output


def test_the_printed_credentials_install_the_app_into_a_listed_account() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "sandbox", "--port", "0", "--accounts", "2",
         "--access-token-ttl", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(6)]
        url_match = re.search(r"http://127\.0\.0\.1:\d+", lines[0])
        creds = re.search(r"client_id (\S+)  client_secret (\S+)", lines[4])
        assert url_match and creds, lines
        url, client_id, secret = url_match.group(0), creds.group(1), creds.group(2)
        assert "70000002" in lines[5]
        redirect = SandboxConfig.default().oauth_apps[0].redirect_uris[0]
        page = httpx.get(
            f"{url}/oauth/70000002/authorize",
            params={"client_id": client_id, "redirect_uri": redirect,
                    "scope": " ".join(SandboxConfig.default().oauth_apps[0].scopes)},
            timeout=10,
        )
        assert page.status_code == 302, page.text
        code = parse_qs(urlsplit(page.headers["location"]).query)["code"][0]
        tokens = httpx.post(
            f"{url}/oauth/2026-03/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
                  "client_id": client_id, "client_secret": secret},
            timeout=10,
        ).json()
        assert tokens["hub_id"] == 70000002 and tokens["expires_in"] == 60
        listed = httpx.get(f"{url}/marketing/v3/marketing-events/", timeout=10,
                           headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert listed.status_code == 200 and listed.headers["X-HubSpot-RateLimit-Max"] == "110"
    finally:
        process.terminate()
        process.wait(15)
        if process.stdout is not None:
            process.stdout.close()
