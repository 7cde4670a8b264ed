"""The OAuth ``state`` of the install flow: signed, expiring, naming the platform account.

``GET /hubspot/install?account=A`` redirects to HubSpot's authorize page with
``state = StateSigner.sign(A)``; HubSpot echoes it to the callback, where
:meth:`StateSigner.verify` gives ``A`` back, or raises :class:`StateRejected` (``reason``:
``malformed``, ``bad-signature`` or ``expired``). Nothing is stored: the state carries the
account, its expiry (epoch seconds) and a random nonce, signed with HMAC-SHA256 under
``CONNECTOR_INSTALLS__STATE_SECRET``::

    v1.<base64url(JSON {"a": account, "e": expiry, "n": nonce})>.<base64url(HMAC-SHA256)>

The signature covers ``v1.<payload>``, and is checked (in constant time) before the payload is
read. A state is not single-use by itself: the code HubSpot sends with it is, and it expires
after ``CONNECTOR_INSTALLS__STATE_TTL_SECONDS``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time

from connector.clock import Clock
from connector.config import Settings
from connector.errors import ConfigError
from connector.installs.errors import StateRejected

PREFIX = "v1"
#: States longer than this are not ours (an account id is short); refused before any work.
MAX_STATE_LENGTH = 2048


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StateSigner:
    """Signs and verifies install-flow states with one secret (epoch-seconds ``clock``)."""

    __slots__ = ("_clock", "_key", "ttl_seconds")

    def __init__(self, secret: str | bytes, *, ttl_seconds: float = 600.0,
                 clock: Clock = time.time) -> None:
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        if len(key) < 16:
            raise ValueError("the state secret must be 16 bytes at least")
        self._key = key
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = time.time) -> StateSigner:
        """The signer of ``[installs] state_secret`` and ``state_ttl_seconds``."""
        secret = settings.installs.state_secret
        if secret is None:
            raise ConfigError("CONNECTOR_INSTALLS__STATE_SECRET ([installs] state_secret) is "
                              "required for the install flow")
        return cls(secret.get_secret_value(), ttl_seconds=settings.installs.state_ttl_seconds,
                   clock=clock)

    def __repr__(self) -> str:
        return f"StateSigner(ttl_seconds={self.ttl_seconds})"

    def _signature(self, signed: str) -> bytes:
        return hmac.new(self._key, signed.encode("ascii"), hashlib.sha256).digest()

    def sign(self, platform_account: str) -> str:
        """A state for ``platform_account``, valid for ``ttl_seconds`` from now."""
        if not platform_account:
            raise ValueError("platform_account must not be empty")
        payload = {"a": platform_account, "e": int(self._clock() + self.ttl_seconds),
                   "n": secrets.token_urlsafe(12)}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
        signed = f"{PREFIX}.{body}"
        return f"{signed}.{_b64(self._signature(signed))}"

    def verify(self, state: str) -> str:
        """The platform account ``state`` was signed for; :class:`StateRejected` otherwise."""
        parts = state.split(".") if len(state) <= MAX_STATE_LENGTH else []
        if len(parts) != 3 or parts[0] != PREFIX:
            raise StateRejected("malformed", "the install link's state is not one of ours")
        signed = f"{parts[0]}.{parts[1]}"
        try:
            given = _unb64(parts[2])
            if len(given) != hashlib.sha256().digest_size:
                raise ValueError("not a SHA-256 signature")
        except (binascii.Error, ValueError):
            raise StateRejected("malformed", "the install link's state is not one of "
                                             "ours") from None
        if not hmac.compare_digest(given, self._signature(signed)):
            raise StateRejected("bad-signature", "the install link's state was not signed "
                                                 "by this connector")
        try:
            payload = json.loads(_unb64(parts[1]))
            account, expiry = payload["a"], payload["e"]
        except (binascii.Error, ValueError, TypeError, KeyError):
            raise StateRejected("malformed", "the install link's state is not one of "
                                             "ours") from None
        if not isinstance(account, str) or not account or not isinstance(expiry, int):
            raise StateRejected("malformed", "the install link's state is not one of ours")
        if self._clock() > expiry:
            raise StateRejected("expired", "the install link expired: start the install "
                                           "again")
        return account
