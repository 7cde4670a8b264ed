"""`connector accounts` with click's CliRunner over an in-memory registry (the Kafka side is
tests/integration/test_installs_topic.py)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner, Result

from connector.cli import accounts as accounts_cli
from connector.cli import main
from connector.config import Settings
from connector.installs.admin import InstallAdmin
from connector.installs.links import LinkSigner
from connector.installs.model import Install, iso
from connector.installs.registry import InstallTable, apply_record
from connector.installs.secrets import SecretCipher
from connector.installs.topic import InstallCodec
from tests.unit.installs_helpers import KEY_A, KEY_B, NOW, FakeClock, MemoryWriter, oauth_install

TOKEN = "pat-na1-99999999-8888-7777-6666-555555555555"
ENV = {"CONNECTOR_INSTALLS__ENCRYPTION_KEYS": KEY_A}


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> MemoryWriter:
    """The CLI's registry: an in-memory table, written straight through."""
    table = InstallTable()
    writer = MemoryWriter(table)
    opened: list[Settings] = []

    def open_admin(settings: Settings) -> InstallAdmin:
        opened.append(settings)
        return InstallAdmin(table, writer, clock=FakeClock(NOW + 100))

    monkeypatch.setattr(accounts_cli, "open_admin", open_admin)
    return writer


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["accounts", *args], env={**ENV, **(env or {})},
                              input=input)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_list_shows_each_install_masked(registry: MemoryWriter) -> None:
    assert run("list").stdout == "no installs\n"
    registry.table.put(oauth_install("acct-1", hub_id=111, access="CJDk-secret-access-1234"))
    registry.table.put(Install.private_app("acct-2", TOKEN, now=NOW))
    registry.table.mark_unreadable("acct-3", "under an unknown key")

    text = run("list")
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["ACCOUNT", "KIND", "HUB", "STATUS", "SCOPES", "ACCESS",
                                "EXPIRES"]
    assert lines[1].split() == ["acct-1", "oauth", "111", "active", "3", "2026-01-01T00:30:00Z"]
    assert lines[2].split() == ["acct-2", "private-app", "-", "active", "0", "-"]
    assert lines[3] == "unreadable: acct-3: under an unknown key"

    data = as_json(run("list", "--json"))
    assert [i["platformAccount"] for i in data["installs"]] == ["acct-1", "acct-2"]
    assert data["installs"][1]["accessToken"] == f"****{TOKEN[-4:]}"
    assert data["unreadable"] == [{"platformAccount": "acct-3",
                                   "reason": "under an unknown key"}]
    for result in (text, run("list", "--json")):
        assert TOKEN not in result.output and "CJDk-secret-access-1234" not in result.output


def test_show_an_install_and_a_missing_one(registry: MemoryWriter) -> None:
    registry.table.put(oauth_install("acct-1", hub_id=111, access="CJDk-secret-access-1234"))
    data = as_json(run("show", "acct-1", "--json"))
    assert (data["hubId"], data["status"], data["accessToken"]) == (111, "active", "****1234")
    text = run("show", "acct-1")
    assert "hub id            111" in text.stdout
    assert "access token      ****1234, expires 2026-01-01T00:30:00Z" in text.stdout
    assert "CJDk-secret-access-1234" not in text.output

    missing = run("show", "nobody")
    assert missing.exit_code == 1
    assert "platform account 'nobody' has no HubSpot install" in missing.stderr


def test_link_reads_the_token_from_an_environment_variable(registry: MemoryWriter) -> None:
    result = run("link", "acct-1", "--private-app-token-env", "CUSTOMER_TOKEN", "--hub-id", "42",
                 "--json", env={"CUSTOMER_TOKEN": TOKEN})
    data = as_json(result)
    assert (data["kind"], data["hubId"], data["accessToken"]) == ("private-app", 42,
                                                                  f"****{TOKEN[-4:]}")
    (written,) = registry.written
    assert (written.platform_account, written.access_token) == ("acct-1", TOKEN)
    assert TOKEN not in result.output
    assert "installs are used in app mode only" not in result.stdout  # stderr only

    again = run("link", "acct-1", "--private-app-token-env", "CUSTOMER_TOKEN",
                env={"CUSTOMER_TOKEN": TOKEN})
    assert again.exit_code == 1 and "--replace" in again.stderr
    unset = run("link", "acct-2", "--private-app-token-env", "NOT_SET_ANYWHERE")
    assert unset.exit_code == 2 and "NOT_SET_ANYWHERE is not set" in unset.stderr
    assert len(registry.written) == 1


def test_link_asks_for_the_token_without_echoing_it(registry: MemoryWriter) -> None:
    result = run("link", "acct-1", env={"CONNECTOR_HUBSPOT__MODE": "private-app"},
                 input=TOKEN + "\n")
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output
    assert f"linked acct-1 to private-app token ****{TOKEN[-4:]}" in result.stdout
    assert "CONNECTOR_HUBSPOT__MODE is private-app" in result.stderr
    assert registry.written[0].access_token == TOKEN


def test_unlink_and_revoke(registry: MemoryWriter) -> None:
    registry.table.put(oauth_install("acct-1"))
    registry.table.put(oauth_install("acct-2"))
    data = as_json(run("revoke", "acct-1", "--reason", "customer asked", "--json"))
    assert (data["status"], data["revokedReason"]) == ("revoked", "customer asked")
    assert run("revoke", "acct-2").stdout == "revoked acct-2 (revoked-by-operator)\n"
    assert as_json(run("unlink", "acct-1", "--json")) == {"platformAccount": "acct-1",
                                                          "unlinked": True}
    assert registry.deleted == ["acct-1"]
    assert run("unlink", "acct-1").exit_code == 1


def test_rotate_key_reports_what_it_rewrote(registry: MemoryWriter) -> None:
    rotating = InstallCodec(SecretCipher([KEY_B, KEY_A]))
    old = InstallCodec(SecretCipher([KEY_A]))
    apply_record(registry.table, rotating, b"old", old.encode(oauth_install("old")))
    apply_record(registry.table, rotating, b"new", rotating.encode(oauth_install("new")))

    data = as_json(run("rotate-key", "--json", env={
        "CONNECTOR_INSTALLS__ENCRYPTION_KEYS": f"{KEY_B},{KEY_A}"}))

    assert data == {"rewritten": ["old"], "current": ["new"], "unreadable": []}
    assert [i.platform_account for i in registry.written] == ["old"]
    assert run("rotate-key").stdout.startswith("rewrote 0 install(s) under the first key; "
                                               "2 already under it")


def test_without_encryption_keys_it_is_a_configuration_error() -> None:
    result = CliRunner().invoke(main, ["accounts", "list"], env={
        "CONNECTOR_INSTALLS__ENCRYPTION_KEYS": ""})
    # an empty variable is no key at all
    assert result.exit_code == 2
    assert "CONNECTOR_INSTALLS__ENCRYPTION_KEYS" in result.stderr


# --------------------------------------------------------------------------- install-link

LINK_SECRET = "platform-link-secret-for-cli-tests"


def link_query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_install_link_prints_a_link_serve_accepts() -> None:
    before = int(time.time())
    result = run("install-link", "acct 7/ü", "--ttl", "600", env={
        "CONNECTOR_INSTALLS__INSTALL_LINK_SECRET": LINK_SECRET,
        "CONNECTOR_SERVE__PUBLIC_URL": "https://connector.example.com/hs/"})
    assert result.exit_code == 0, result.output
    [url] = result.stdout.splitlines()
    assert url.startswith("https://connector.example.com/hs/hubspot/install?account=")
    query = link_query(url)
    assert query["account"] == "acct 7/ü"
    assert before + 600 <= int(query["expires"]) <= int(time.time()) + 600
    assert LinkSigner(LINK_SECRET).verify("acct 7/ü", query["expires"], query["signature"])
    assert "valid until" in result.stderr and "PUBLIC_URL is not set" not in result.stderr
    assert LINK_SECRET not in result.output


def test_install_link_as_json_on_serves_own_address() -> None:
    data = as_json(run("install-link", "acct-7", "--json", env={
        "CONNECTOR_INSTALLS__INSTALL_LINK_SECRET": LINK_SECRET,
        "CONNECTOR_SERVE__HOST": "10.0.0.5", "CONNECTOR_SERVE__PORT": "8443"}))
    assert data["platformAccount"] == "acct-7"
    assert data["url"].startswith("http://10.0.0.5:8443/hubspot/install?account=acct-7&")
    assert link_query(data["url"])["expires"] == str(data["expires"])
    assert data["expiresAt"] == iso(data["expires"])
    assert 3500 < data["expires"] - time.time() <= 3600  # the default ttl, an hour


def test_install_link_needs_the_secret_and_a_usable_account() -> None:
    no_secret = run("install-link", "acct-7")
    assert no_secret.exit_code == 2
    assert "CONNECTOR_INSTALLS__INSTALL_LINK_SECRET" in no_secret.stderr
    env = {"CONNECTOR_INSTALLS__INSTALL_LINK_SECRET": LINK_SECRET}
    assert run("install-link", " acct-7", env=env).exit_code == 2
    assert run("install-link", "acct-7", "--ttl", "0", env=env).exit_code == 2
    short = run("install-link", "acct-7", env={"CONNECTOR_INSTALLS__INSTALL_LINK_SECRET": "x"})
    assert short.exit_code == 2 and "16 characters" in short.stderr
