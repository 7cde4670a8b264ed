"""The install flow's signed, expiring OAuth state."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from connector.config import load_settings
from connector.errors import ConfigError
from connector.installs.errors import StateRejected
from connector.installs.state import StateSigner
from tests.unit.installs_helpers import NOW, FakeClock

SECRET = "state-secret-0123456789abcdef"


def signer(clock: FakeClock, secret: str = SECRET) -> StateSigner:
    return StateSigner(secret, ttl_seconds=600, clock=clock)


def reject(state: str, clock: FakeClock, secret: str = SECRET) -> str:
    with pytest.raises(StateRejected) as info:
        signer(clock, secret).verify(state)
    return info.value.reason


def test_a_state_gives_its_account_back_until_it_expires() -> None:
    clock = FakeClock()
    state = signer(clock).sign("acct-7/ü")
    assert signer(clock).verify(state) == "acct-7/ü"
    clock.advance(600)
    assert signer(clock).verify(state) == "acct-7/ü"  # at the expiry second: still valid
    clock.advance(1)
    assert reject(state, clock) == "expired"


def test_each_state_is_new_and_url_safe() -> None:
    clock = FakeClock()
    first, second = signer(clock).sign("a"), signer(clock).sign("a")
    assert first != second  # a nonce each
    assert all(c.isalnum() or c in "-_." for c in first)
    payload = json.loads(base64.urlsafe_b64decode(first.split(".")[1] + "=="))
    assert payload["a"] == "a" and payload["e"] == int(NOW + 600) and len(payload["n"]) >= 16


def test_a_tampered_or_foreign_state_is_rejected_with_its_reason() -> None:
    clock = FakeClock()
    state = signer(clock).sign("acct-1")
    version, body, signature = state.split(".")
    forged_body = base64.urlsafe_b64encode(json.dumps(
        {"a": "acct-2", "e": int(NOW + 600), "n": "x"}).encode()).rstrip(b"=").decode()

    assert reject(f"{version}.{forged_body}.{signature}", clock) == "bad-signature"
    assert reject(state, clock, secret="another-secret-0123456789") == "bad-signature"
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert reject(f"{version}.{body}.{flipped}", clock) == "bad-signature"
    for malformed in ("", "abc", f"v2.{body}.{signature}", f"{state}.x", "v1..", "v1.a.!!!",
                      "v1." + "a" * 3000 + ".b"):
        assert reject(malformed, clock) == "malformed", malformed


def test_a_signed_payload_of_the_wrong_shape_is_malformed() -> None:
    clock = FakeClock()
    # odd payloads signed with the real secret (HMAC-SHA256 over "v1.<payload>")
    for payload in ({"a": "", "e": 1}, {"a": "x", "e": "soon"}, {"e": 1}, ["a"]):
        body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
        signed = f"v1.{body}"
        digest = hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).digest()
        signature = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        assert reject(f"{signed}.{signature}", clock) == "malformed", payload
    # and a payload of the right shape signed that way verifies: the check above is real
    body = base64.urlsafe_b64encode(json.dumps({"a": "x", "e": int(NOW + 5), "n": "n"})
                                    .encode()).rstrip(b"=").decode()
    digest = hmac.new(SECRET.encode(), f"v1.{body}".encode(), hashlib.sha256).digest()
    good = f"v1.{body}." + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert signer(clock).verify(good) == "x"


def test_the_signer_comes_from_settings() -> None:
    with pytest.raises(ConfigError, match="CONNECTOR_INSTALLS__STATE_SECRET"):
        StateSigner.from_settings(load_settings({}))
    settings = load_settings({"CONNECTOR_INSTALLS__STATE_SECRET": SECRET,
                              "CONNECTOR_INSTALLS__STATE_TTL_SECONDS": "60"})
    clock = FakeClock()
    made = StateSigner.from_settings(settings, clock=clock)
    state = made.sign("a")
    clock.advance(61)
    with pytest.raises(StateRejected, match="expired"):
        made.verify(state)
    with pytest.raises(ValueError, match="16 bytes"):
        StateSigner("short")
    assert SECRET not in repr(made)
