"""What ``connector accounts`` does: list, show, link, unlink, revoke, rotate the key.

The CLI parses and prints; this module decides, over a caught-up table and a writer. Nothing
here returns a secret in clear: output goes through :meth:`Install.public` (fingerprints).
``unlink`` and ``revoke`` change only the registry: HubSpot keeps the app installed until the
customer uninstalls it (a revoked install is not used again, and a new install replaces it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from connector.clock import Clock
from connector.config import Settings
from connector.installs.errors import (
    InstallError,
    InstallExists,
    InstallNotFound,
    InstallUnreadable,
)
from connector.installs.model import Install
from connector.installs.registry import InstallTable, open_registry
from connector.installs.tokens import InstallStore

#: The reason an operator's revoke records unless given another.
OPERATOR_REVOKED = "revoked-by-operator"


class InstallWrites(InstallStore, Protocol):
    """Writes and tombstones (an :class:`~connector.installs.registry.InstallWriter`)."""

    def delete(self, platform_account: str) -> None: ...


@dataclass(frozen=True)
class Listing:
    """Every install, and the accounts whose record cannot be read (with why)."""

    installs: list[Install]
    unreadable: dict[str, str]


@dataclass(frozen=True)
class RotationReport:
    """What ``rotate-key`` did: accounts written again, already current, not readable."""

    rewritten: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)


class InstallAdmin:
    """The operator's operations on the registry."""

    def __init__(self, table: InstallTable, writer: InstallWrites, *, clock: Clock = time.time,
                 close: Callable[[], None] | None = None) -> None:
        self._table = table
        self._writer = writer
        self._clock = clock
        self._close = close

    def __enter__(self) -> InstallAdmin:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def list(self) -> Listing:
        return Listing(self._table.all(), self._table.unreadable())

    def show(self, platform_account: str) -> Install:
        """The install of ``platform_account`` (InstallNotFound, InstallUnreadable)."""
        install = self._table.get(platform_account)
        if install is None:
            raise InstallNotFound(platform_account)
        return install

    def link_private_app(self, platform_account: str, token: str, *, hub_id: int | None = None,
                         replace: bool = False) -> Install:
        """Link ``platform_account`` to a private-app token of its own; an existing install
        is replaced only with ``replace``."""
        token = token.strip()
        if not token or any(c.isspace() for c in token):
            raise InstallError("the private-app token must be one word (no spaces or line "
                               "breaks)", account=platform_account)
        try:
            existing = self._table.get(platform_account)
        except InstallUnreadable:
            existing = None  # replacing an unreadable record is what an operator may need
            if not replace:
                raise
        if existing is not None and not replace:
            raise InstallExists(f"platform account {platform_account!r} already has a "
                                f"{existing.kind} install ({existing.status}); pass --replace "
                                f"to replace it", account=platform_account)
        install = Install.private_app(platform_account, token, hub_id=hub_id, now=self._clock())
        self._writer.put(install)
        return install

    def unlink(self, platform_account: str) -> None:
        """Remove the install of ``platform_account`` (a tombstone), readable or not."""
        try:
            if self._table.get(platform_account) is None:
                raise InstallNotFound(platform_account)
        except InstallUnreadable:
            pass  # unreadable, but there: the tombstone removes it
        self._writer.delete(platform_account)

    def revoke(self, platform_account: str, reason: str = OPERATOR_REVOKED) -> Install:
        """Mark the install revoked: its commands are dead-lettered until a new install."""
        install = self.show(platform_account)
        if not install.is_active:
            return install
        revoked = install.revoked(reason, now=self._clock())
        self._writer.put(revoked)
        return revoked

    def rotate_key(self) -> RotationReport:
        """Write every install whose secrets are not under the first key again (under it)."""
        stale = self._table.stale()
        report = RotationReport(unreadable=self._table.unreadable())
        for install in self._table.all():
            if install.platform_account in stale:
                self._writer.put(install)  # encoded under the first key; updated_at unchanged
                report.rewritten.append(install.platform_account)
            else:
                report.current.append(install.platform_account)
        return report


def open_admin(settings: Settings, *, clock: Clock = time.time) -> InstallAdmin:
    """The admin over the registry ``settings`` name (topic created if missing, read whole)."""
    registry = open_registry(settings)
    return InstallAdmin(registry.table, registry.writer, clock=clock, close=registry.close)
