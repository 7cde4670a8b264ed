"""Encryption of the registry's secrets: round trip, rotation with two keys, an unknown key."""

from __future__ import annotations

import json

import pytest

from connector.errors import ConfigError
from connector.installs.errors import InstallUnreadable
from connector.installs.model import Install
from connector.installs.secrets import SecretCipher, generate_key
from connector.installs.topic import InstallCodec
from tests.unit.installs_helpers import KEY_A, KEY_B, NOW, oauth_install

REFRESH = "na1-aaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
ACCESS = "CJDk9Mf8LxICAQEYv6WFBSDe0ZAJKJrz7wEy-access"


def test_round_trip_under_one_key() -> None:
    cipher = SecretCipher([KEY_A])
    token = cipher.encrypt(REFRESH)
    assert REFRESH not in token and token.startswith("gAAAA")  # a Fernet token
    assert cipher.decrypt(token, account="acct-1") == REFRESH
    assert cipher.encrypt(REFRESH) != token  # fresh IV each time


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old = SecretCipher([KEY_A])
    both = SecretCipher.from_setting(f" {KEY_B} , {KEY_A} ")
    under_old = old.encrypt(REFRESH)
    under_new = both.encrypt(REFRESH)

    assert both.key_count == 2
    assert both.open(under_old, account="a") == (REFRESH, False)  # readable, to rotate
    assert both.open(under_new, account="a") == (REFRESH, True)   # readable, current
    with pytest.raises(InstallUnreadable):                       # the old key alone cannot
        old.decrypt(under_new, account="a")
    assert SecretCipher([KEY_B]).decrypt(under_new, account="a") == REFRESH  # old key dropped


def test_a_secret_under_an_unknown_key_names_the_account_and_never_the_secret() -> None:
    token = SecretCipher([KEY_A]).encrypt(REFRESH)
    with pytest.raises(InstallUnreadable) as info:
        SecretCipher([KEY_B]).decrypt(token, account="acct-42", what="the refresh token")
    message = str(info.value)
    assert info.value.account == "acct-42"
    assert "'acct-42'" in message and "the refresh token" in message
    assert "CONNECTOR_INSTALLS__ENCRYPTION_KEYS" in message
    assert REFRESH not in message and token not in message and KEY_A not in message
    with pytest.raises(InstallUnreadable):  # not a Fernet token at all
        SecretCipher([KEY_B]).decrypt("not-a-token", account="acct-42")


def test_bad_keys_are_a_config_error_without_the_key() -> None:
    with pytest.raises(ConfigError, match="key 2 of 2 is not a Fernet key") as info:
        SecretCipher([KEY_A, "short-and-wrong"])
    assert "short-and-wrong" not in str(info.value)
    with pytest.raises(ConfigError, match="at least one"):
        SecretCipher.from_setting(" , ")
    assert len(SecretCipher([generate_key()]).encrypt("x")) > 50
    assert repr(SecretCipher([KEY_A])) == "SecretCipher(keys=1)"


def test_the_codec_stores_secrets_encrypted_and_the_rest_plain() -> None:
    codec = InstallCodec(SecretCipher([KEY_A]))
    install = oauth_install("acct-1", access=ACCESS, refresh=REFRESH)

    value = codec.encode(install)
    data = json.loads(value)
    assert REFRESH.encode() not in value and ACCESS.encode() not in value
    assert data["version"] == 1
    assert (data["platformAccount"], data["kind"], data["hubId"], data["status"]) == (
        "acct-1", "oauth", 1234567, "active")
    assert data["accessExpiresAt"] == int((NOW + 1800) * 1000)
    assert data["installedAt"] == int(NOW * 1000)

    decoded = codec.decode(b"acct-1", value)
    assert decoded.install == install
    assert decoded.current_key is True


def test_the_codec_reports_old_keys_and_unreadable_records() -> None:
    install = oauth_install("acct-1", access=ACCESS, refresh=REFRESH)
    under_a = InstallCodec(SecretCipher([KEY_A])).encode(install)
    rotating = InstallCodec(SecretCipher([KEY_B, KEY_A]))

    assert rotating.decode(b"acct-1", under_a).install == install
    assert rotating.decode(b"acct-1", under_a).current_key is False
    assert rotating.decode(b"acct-1", rotating.encode(install)).current_key is True

    only_b = InstallCodec(SecretCipher([KEY_B]))
    cases = {
        under_a: "the refresh token is encrypted under a key",
        b"{not json": "not JSON",
        json.dumps({"version": 9}).encode(): "unknown record version 9",
        json.dumps({"version": 1, "platformAccount": "other"}).encode(): "another platform",
        json.dumps({"version": 1, "platformAccount": "acct-1", "kind": "oauth",
                    "status": "active"}).encode(): "not a valid install",
    }
    for value, reason in cases.items():
        with pytest.raises(InstallUnreadable, match=reason) as info:
            only_b.decode(b"acct-1", value)
        assert info.value.account == "acct-1"


def test_a_private_app_link_round_trips_without_refresh_token() -> None:
    codec = InstallCodec(SecretCipher([KEY_A]))
    link = Install.private_app("acct-9", "pat-na1-11111111-2222", hub_id=None, now=NOW)
    decoded = codec.decode(b"acct-9", codec.encode(link)).install
    assert decoded == link
    assert (decoded.refresh_token, decoded.access_expires_at, decoded.hub_id) == (None, None,
                                                                                  None)


def test_an_install_never_shows_its_secrets() -> None:
    install = oauth_install("acct-1", access=ACCESS, refresh=REFRESH)
    public = install.public()
    shown = repr(install) + str(install) + json.dumps(public)
    assert REFRESH not in shown and ACCESS not in shown
    assert public["accessToken"] == f"****{ACCESS[-4:]}"
    assert public["refreshToken"] == f"****{REFRESH[-4:]}"
    assert public["installedAt"] == "2026-01-01T00:00:00Z"
    assert public["accessExpiresAt"] == "2026-01-01T00:30:00Z"


@pytest.mark.parametrize(("fields", "message"), [
    ({"kind": "oauth", "refresh_token": None}, "refresh token and a hub id"),
    ({"kind": "oauth", "hub_id": None}, "refresh token and a hub id"),
    ({"kind": "private-app", "access_token": None}, "needs its access token"),
    ({"kind": "bogus"}, "kind must be"),
    ({"status": "paused"}, "status must be"),
])
def test_an_install_is_validated(fields: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"platform_account": "a", "kind": "oauth", "hub_id": 1,
                               "scopes": (), "status": "active", "refresh_token": "r",
                               "access_token": "t"}
    with pytest.raises(ValueError, match=message):
        Install(**{**base, **fields})  # type: ignore[arg-type]
