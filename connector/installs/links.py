"""Install links signed by the platform: only a link the platform issued starts an install.

The webinar platform authenticates its customers; the connector does not. So the install route
trusts no ``account`` on its own: the platform hands each signed-in customer a link for *their*
account, signed with a secret it shares with the connector
(``CONNECTOR_INSTALLS__INSTALL_LINK_SECRET``), and ``connector serve`` starts an install only for
a link it can verify::

    <serve>/hubspot/install?account=<account>&expires=<epoch seconds>&signature=<hex>

    signature = hex(HMAC-SHA256(install_link_secret, "install\\n" + account + "\\n" + expires))

``account`` is the platform account id exactly as installed (UTF-8, no surrounding whitespace),
``expires`` the decimal epoch second after which the link is refused, written as it appears in
the link. :meth:`LinkSigner.verify` checks the signature in constant time before it looks at the
expiry, and raises :class:`LinkRejected` (``reason``: ``missing``, ``bad-signature`` or
``expired``). A link is not single-use: whoever holds it may install until it expires, so links
are short-lived (an hour by default) and handed only to the signed-in account owner.

:meth:`LinkSigner.sign` makes the same links (``connector accounts install-link``, tests, and
serve's own "start again" links for an account whose OAuth ``state`` it has just verified).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from connector.clock import Clock
from connector.config import Settings
from connector.errors import ConfigError
from connector.installs.errors import InstallError

#: serve's install route; links are ``<base URL><INSTALL_PATH>?<query>``.
INSTALL_PATH = "/hubspot/install"
#: The first line of every signed message: a link signature is never valid for anything else.
PURPOSE = "install"
DEFAULT_TTL_SECONDS = 3600
SETTING = "CONNECTOR_INSTALLS__INSTALL_LINK_SECRET"

_EXPIRES = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")


class LinkRejected(InstallError):
    """An install link failed verification; ``reason`` is ``missing`` (no expires or
    signature), ``bad-signature`` (not signed with the install link secret for this account and
    expiry) or ``expired``."""

    def __init__(self, reason: str, account: str | None) -> None:
        super().__init__(f"the install link is invalid or expired ({reason})", account=account)
        self.reason = reason


def signed_message(account: str, expires: str) -> bytes:
    """The bytes a link's signature covers: ``install\\n<account>\\n<expires>``, UTF-8."""
    return f"{PURPOSE}\n{account}\n{expires}".encode()


@dataclass(frozen=True)
class InstallLink:
    """One signed link: its query parameters, and the URL on a base."""

    account: str
    expires: int
    signature: str

    def params(self) -> dict[str, str]:
        """The query parameters, in the order serve documents them."""
        return {"account": self.account, "expires": str(self.expires),
                "signature": self.signature}

    def url(self, base_url: str) -> str:
        """``<base_url>/hubspot/install?account=..&expires=..&signature=..``."""
        return f"{base_url.rstrip('/')}{INSTALL_PATH}?{urlencode(self.params())}"


class LinkSigner:
    """Signs and verifies install links with the platform's shared secret (epoch-seconds
    ``clock``)."""

    __slots__ = ("_clock", "_key")

    def __init__(self, secret: str | bytes, *, clock: Clock = time.time) -> None:
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        if len(key) < 16:
            raise ValueError("the install link secret must be 16 bytes at least")
        self._key = key
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = time.time) -> LinkSigner:
        """The signer of ``[installs] install_link_secret``."""
        secret = settings.installs.install_link_secret
        if secret is None:
            raise ConfigError(f"{SETTING} ([installs] install_link_secret) is required for "
                              f"install links: the secret the webinar platform signs them with")
        return cls(secret.get_secret_value(), clock=clock)

    def __repr__(self) -> str:
        return "LinkSigner()"

    def signature(self, account: str, expires: int | str) -> str:
        """The hex HMAC-SHA256 of :func:`signed_message` under the secret."""
        return hmac.new(self._key, signed_message(account, str(expires)),
                        hashlib.sha256).hexdigest()

    def sign(self, account: str, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> InstallLink:
        """A link for ``account``, valid ``ttl_seconds`` from now (to the second)."""
        if not account or account != account.strip() or not account.isprintable():
            raise ValueError("account must be a printable id without surrounding whitespace")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        expires = int(self._clock() + ttl_seconds)
        return InstallLink(account, expires, self.signature(account, expires))

    def verify(self, account: str, expires: str | None, signature: str | None) -> int:
        """The link's expiry when ``signature`` is this secret's for ``account`` and
        ``expires`` and it has not passed; :class:`LinkRejected` otherwise."""
        if not expires or not signature:
            raise LinkRejected("missing", account)
        if _EXPIRES.fullmatch(expires) is None or _SIGNATURE.fullmatch(signature) is None:
            raise LinkRejected("bad-signature", account)
        expected = hmac.new(self._key, signed_message(account, expires), hashlib.sha256).digest()
        if not hmac.compare_digest(bytes.fromhex(signature), expected):
            raise LinkRejected("bad-signature", account)
        deadline = int(expires)
        if self._clock() > deadline:
            raise LinkRejected("expired", account)
        return deadline
