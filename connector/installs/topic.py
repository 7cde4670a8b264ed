"""The install registry topic: its records and its configuration.

``connector.installs`` (``CONNECTOR_TOPICS__INSTALLS``) is compacted: key = the platform account
(UTF-8), value = the install as a JSON object, tombstone (no value) = unlinked. Secrets are
Fernet tokens (connector.installs.secrets); everything else is plain, so an operator can read
the topic (``kcat``) without seeing a token::

    {"version": 1, "platformAccount": "acct-7", "kind": "oauth", "hubId": 1234567,
     "scopes": ["crm.objects.marketing_events.read", "crm.objects.marketing_events.write"],
     "status": "active", "refreshToken": "gAAAA...", "accessToken": "gAAAA...",
     "accessExpiresAt": 1767225600000, "installedAt": 1767223800000,
     "updatedAt": 1767223800000, "revokedReason": null}

Times are epoch milliseconds. A value of another ``version``, or whose secrets no configured key
opens, decodes to :class:`~connector.installs.errors.InstallUnreadable` naming the account.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from connector.installs.errors import InstallUnreadable
from connector.installs.model import Install
from connector.installs.secrets import SecretCipher
from connector.kafka.admin import TopicSpec

VERSION = 1

#: Compacted, with segments rolled daily and cleaned early, so superseded records (old access
#: tokens, values under a retired key) leave the log within about a day rather than a week.
TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.ms": str(24 * 3600 * 1000),
    "min.cleanable.dirty.ratio": "0.1",
}


def install_topic(name: str, partitions: int = 1) -> TopicSpec:
    """The registry topic's spec: small (one record per platform account), compacted."""
    return TopicSpec(name, partitions=partitions, config=dict(TOPIC_CONFIG))


@dataclass(frozen=True, slots=True)
class DecodedInstall:
    """One record read back: the install, and whether its secrets are under the first key."""

    install: Install
    current_key: bool


class InstallCodec:
    """Install <-> (key, value) bytes, secrets encrypted with a :class:`SecretCipher`."""

    __slots__ = ("cipher",)

    def __init__(self, cipher: SecretCipher) -> None:
        self.cipher = cipher

    @staticmethod
    def key(platform_account: str) -> bytes:
        return platform_account.encode("utf-8")

    def encode(self, install: Install) -> bytes:
        """The record value of ``install``, its secrets encrypted under the first key."""
        data = {
            "version": VERSION,
            "platformAccount": install.platform_account,
            "kind": install.kind,
            "hubId": install.hub_id,
            "scopes": list(install.scopes),
            "status": install.status,
            "refreshToken": self._seal(install.refresh_token),
            "accessToken": self._seal(install.access_token),
            "accessExpiresAt": _ms(install.access_expires_at),
            "installedAt": _ms(install.installed_at),
            "updatedAt": _ms(install.updated_at),
            "revokedReason": install.revoked_reason,
        }
        return json.dumps(data, separators=(",", ":")).encode("utf-8")

    def decode(self, key: bytes, value: bytes) -> DecodedInstall:
        """The install in a record; :class:`InstallUnreadable` (naming the account) when the
        value is not the registry's format or a secret does not open."""
        account = key.decode("utf-8", "replace")
        try:
            data = json.loads(value)
        except ValueError:
            raise InstallUnreadable(account, "the value is not JSON") from None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            version = data.get("version") if isinstance(data, dict) else None
            raise InstallUnreadable(account, f"unknown record version {version!r} (this "
                                             f"connector reads version {VERSION})")
        if data.get("platformAccount") != account:
            raise InstallUnreadable(account, "the value names another platform account")
        refresh, refresh_current = self._open(data.get("refreshToken"), account,
                                              "the refresh token")
        access, access_current = self._open(data.get("accessToken"), account,
                                            "the access token")
        try:
            install = Install(
                platform_account=account,
                kind=data["kind"],
                hub_id=data.get("hubId"),
                scopes=tuple(data.get("scopes") or ()),
                status=data["status"],
                refresh_token=refresh,
                access_token=access,
                access_expires_at=_seconds(data.get("accessExpiresAt")),
                installed_at=_seconds(data.get("installedAt")) or 0.0,
                updated_at=_seconds(data.get("updatedAt")) or 0.0,
                revoked_reason=data.get("revokedReason"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InstallUnreadable(account, f"the value is not a valid install ({exc})") from None
        return DecodedInstall(install, refresh_current and access_current)

    def _seal(self, secret: str | None) -> str | None:
        return None if secret is None else self.cipher.encrypt(secret)

    def _open(self, token: Any, account: str, what: str) -> tuple[str | None, bool]:
        if token is None:
            return None, True
        if not isinstance(token, str):
            raise InstallUnreadable(account, f"{what} is not a string")
        return self.cipher.open(token, account=account, what=what)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _seconds(ms: Any) -> float | None:
    if ms is None:
        return None
    if isinstance(ms, bool) or not isinstance(ms, int | float):
        raise ValueError(f"not a time in milliseconds: {ms!r}")
    return ms / 1000
