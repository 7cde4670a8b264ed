"""Errors raised by the install registry.

ConnectorError
└── InstallError                 root of everything connector.installs raises
    ├── InstallNotFound          no install for the platform account
    ├── InstallExists            `link` over an install that exists (without replace)
    ├── InstallRevoked           the install is revoked (uninstalled, or by an operator)
    ├── InstallUnreadable        its record does not decode: encrypted under an unknown key, or
    │                            not the registry's format; names the account
    ├── InstallWriteFailed       the registry topic did not confirm a write in time
    └── StateRejected            an install flow's `state` is malformed, forged or expired

Every error names the platform account it concerns (``account``; ``None`` where there is none)
and never holds a token.
"""

from __future__ import annotations

from connector.errors import ConnectorError


class InstallError(ConnectorError):
    """Root of every error raised by connector.installs."""

    def __init__(self, message: str, *, account: str | None = None) -> None:
        super().__init__(message)
        self.account = account


class InstallNotFound(InstallError):
    """The platform account has no install (never installed, or unlinked)."""

    def __init__(self, account: str) -> None:
        super().__init__(f"platform account {account!r} has no HubSpot install", account=account)


class InstallExists(InstallError):
    """The platform account already has an install; replacing it must be asked for."""


class InstallRevoked(InstallError):
    """The install is revoked; ``reason`` says why (``refresh-token-revoked: ...``,
    ``revoked-by-operator``). Only a new install brings the account back."""

    def __init__(self, account: str, reason: str | None) -> None:
        super().__init__(f"the HubSpot install of platform account {account!r} is revoked "
                         f"({reason or 'no reason recorded'}); the account must install the "
                         f"app again", account=account)
        self.reason = reason


class InstallUnreadable(InstallError):
    """An install record cannot be read: a secret encrypted under a key that is not in
    CONNECTOR_INSTALLS__ENCRYPTION_KEYS, or a value not in the registry's format."""

    def __init__(self, account: str, reason: str) -> None:
        super().__init__(f"the install record of platform account {account!r} cannot be read: "
                         f"{reason}", account=account)
        self.reason = reason


class InstallWriteFailed(InstallError):
    """A write to the install registry topic was not confirmed (broker away, timed out)."""


class StateRejected(InstallError):
    """An OAuth ``state`` failed verification; ``reason`` is ``malformed``, ``bad-signature``
    or ``expired``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
