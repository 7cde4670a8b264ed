"""Install links the platform signs (connector.installs.links): round trip, every field tampered,
expiry on a fake clock, another secret, malformed input, and the README's recipe for the
platform checked against the verifier."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from connector.config import load_settings
from connector.errors import ConfigError
from connector.installs import links as links_module
from connector.installs.errors import InstallError
from connector.installs.links import INSTALL_PATH, LinkRejected, LinkSigner, signed_message
from tests.unit.installs_helpers import NOW, FakeClock

SECRET = "platform-link-secret-0123456789"
README = Path(__file__).resolve().parents[2] / "README.md"


def signer(clock: FakeClock, secret: str = SECRET) -> LinkSigner:
    return LinkSigner(secret, clock=clock)


def reject(clock: FakeClock, account: str, expires: str | None, signature: str | None,
           secret: str = SECRET) -> str:
    with pytest.raises(LinkRejected) as info:
        signer(clock, secret).verify(account, expires, signature)
    assert info.value.account == account
    return info.value.reason


def test_a_link_verifies_until_it_expires() -> None:
    clock = FakeClock()
    link = signer(clock).sign("acct-7/ü", ttl_seconds=3600)
    assert link.expires == int(NOW) + 3600
    assert signer(clock).verify("acct-7/ü", str(link.expires), link.signature) == link.expires
    clock.advance(3600)
    assert signer(clock).verify("acct-7/ü", str(link.expires), link.signature) == link.expires
    clock.advance(1)
    assert reject(clock, "acct-7/ü", str(link.expires), link.signature) == "expired"


def test_the_signature_is_hmac_sha256_of_the_documented_string() -> None:
    clock = FakeClock()
    link = signer(clock).sign("acct-7", ttl_seconds=60)
    message = f"install\nacct-7\n{int(NOW) + 60}".encode()
    assert signed_message("acct-7", str(link.expires)) == message
    assert link.signature == hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    # upper-case hex is the same signature
    assert signer(clock).verify("acct-7", str(link.expires), link.signature.upper())


def test_the_link_url_carries_the_three_parameters() -> None:
    link = signer(FakeClock()).sign("acct 7/&x")
    url = urlsplit(link.url("https://connector.example.com/prefix/"))
    assert (url.scheme, url.netloc, url.path) == ("https", "connector.example.com",
                                                  f"/prefix{INSTALL_PATH}")
    assert parse_qs(url.query) == {"account": ["acct 7/&x"], "expires": [str(link.expires)],
                                   "signature": [link.signature]}
    assert link.params() == {"account": "acct 7/&x", "expires": str(link.expires),
                             "signature": link.signature}


@pytest.mark.parametrize("field", ["account", "expires", "signature"])
def test_tampering_with_any_field_is_a_bad_signature(field: str) -> None:
    clock = FakeClock()
    link = signer(clock).sign("acct-7")
    account, expires, signature = "acct-7", str(link.expires), link.signature
    if field == "account":
        account = "acct-8"
    elif field == "expires":
        expires = str(link.expires + 1)
    else:
        position = 17
        digit = "0" if signature[position] != "0" else "1"
        signature = signature[:position] + digit + signature[position + 1:]
    assert reject(clock, account, expires, signature) == "bad-signature"


def test_a_link_of_another_secret_is_a_bad_signature_even_once_expired() -> None:
    clock = FakeClock()
    foreign = signer(clock, "another-secret-0123456789").sign("acct-7", ttl_seconds=10)
    assert reject(clock, "acct-7", str(foreign.expires), foreign.signature) == "bad-signature"
    clock.advance(11)
    # the signature is checked first: an expiry is only reported for an authentic link
    assert reject(clock, "acct-7", str(foreign.expires), foreign.signature) == "bad-signature"


@pytest.mark.parametrize(("expires", "signature"), [
    (None, None), ("", ""), (None, "ab" * 32), ("", "ab" * 32), ("1767229200", None),
    ("1767229200", ""),
])
def test_a_link_without_expiry_or_signature_is_missing(expires: str | None,
                                                       signature: str | None) -> None:
    assert reject(FakeClock(), "acct-7", expires, signature) == "missing"


@pytest.mark.parametrize(("expires", "signature"), [
    ("-1", None), ("+1767229200", None), ("1767229200.0", None), ("1e9", None),
    (" 1767229200", None), ("1" * 13, None),
    (None, "ab"), (None, "zz" * 32), (None, "é" * 64), (None, "ab" * 33), (None, " " + "a" * 63),
])
def test_malformed_expiry_or_signature_is_a_bad_signature(expires: str | None,
                                                          signature: str | None) -> None:
    clock = FakeClock()
    link = signer(clock).sign("acct-7")
    assert reject(clock, "acct-7", expires or str(link.expires),
                  signature or link.signature) == "bad-signature"


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(links_module.hmac, "compare_digest", spy)
    clock = FakeClock()
    link = signer(clock).sign("acct-7")
    signer(clock).verify("acct-7", str(link.expires), link.signature)
    assert compared and all(len(a) == len(b) == 32 for a, b in compared)


def test_signing_refuses_what_serve_would_not_install() -> None:
    clock = FakeClock()
    for account in ("", " acct", "acct ", "acct\n7"):
        with pytest.raises(ValueError, match="printable"):
            signer(clock).sign(account)
    with pytest.raises(ValueError, match="positive"):
        signer(clock).sign("acct", ttl_seconds=0)
    with pytest.raises(ValueError, match="16 bytes"):
        LinkSigner("short")


def test_the_signer_comes_from_settings_and_never_shows_its_secret() -> None:
    with pytest.raises(ConfigError, match="CONNECTOR_INSTALLS__INSTALL_LINK_SECRET"):
        LinkSigner.from_settings(load_settings({}))
    clock = FakeClock()
    made = LinkSigner.from_settings(
        load_settings({"CONNECTOR_INSTALLS__INSTALL_LINK_SECRET": SECRET}), clock=clock)
    link = made.sign("acct-7")
    assert signer(clock).verify("acct-7", str(link.expires), link.signature)
    assert SECRET not in repr(made)
    error = LinkRejected("expired", "acct-7")
    assert isinstance(error, InstallError) and SECRET not in str(error)


def readme_recipe() -> str:
    """The Python block of the README that tells the platform how to sign a link."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    [recipe] = [block for block in blocks if "def install_link" in block]
    return str(recipe)


def test_the_readmes_recipe_makes_links_serve_accepts() -> None:
    namespace: dict[str, Any] = {}
    exec(readme_recipe(), namespace)  # the platform's side, as documented
    url = namespace["install_link"]("https://connector.example.com", "acct 7/ü", SECRET)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        f"https://connector.example.com{INSTALL_PATH}")
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert query["account"] == "acct 7/ü"
    verified = LinkSigner(SECRET).verify(query["account"], query["expires"], query["signature"])
    assert verified == int(query["expires"])
