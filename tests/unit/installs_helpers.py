"""Fakes shared by the install registry's unit tests: a clock, an in-memory registry, a token
endpoint."""

from __future__ import annotations

import threading
from collections.abc import Callable

from cryptography.fernet import Fernet

from connector.hubspot.oauth import MARKETING_EVENT_SCOPES, TokenGrant
from connector.installs.model import Install
from connector.installs.registry import InstallTable

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock:
    """Epoch seconds that move only when told."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MemoryWriter:
    """An InstallWriter that writes straight into a table, and remembers what it wrote."""

    def __init__(self, table: InstallTable, fail: bool = False) -> None:
        self.table = table
        self.written: list[Install] = []
        self.deleted: list[str] = []
        self.fail = fail
        self._lock = threading.Lock()

    def put(self, install: Install) -> None:
        from connector.installs.errors import InstallWriteFailed

        if self.fail:
            raise InstallWriteFailed("broker away", account=install.platform_account)
        with self._lock:
            self.written.append(install)
        self.table.put(install)

    def delete(self, platform_account: str) -> None:
        self.deleted.append(platform_account)
        self.table.remove(platform_account)


class FakeRefresher:
    """A token endpoint: each refresh answers ``next_grant(refresh_token)`` (or raises)."""

    def __init__(self, clock: FakeClock,
                 answer: Callable[[str], TokenGrant] | None = None) -> None:
        self.clock = clock
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self._answer = answer or self.default_answer

    def default_answer(self, refresh_token: str) -> TokenGrant:
        return grant(f"access-{refresh_token}-{len(self.calls)}", refresh_token,
                     obtained_at=self.clock())

    def refresh(self, refresh_token: str) -> TokenGrant:
        with self._lock:
            self.calls.append(refresh_token)
        return self._answer(refresh_token)


def grant(access: str, refresh: str = "na1-refresh", *, hub_id: int | None = 1234567,
          scopes: tuple[str, ...] = ("oauth", *MARKETING_EVENT_SCOPES), expires_in: int = 1800,
          obtained_at: float = NOW) -> TokenGrant:
    return TokenGrant(access_token=access, refresh_token=refresh, hub_id=hub_id, scopes=scopes,
                      expires_in=expires_in, obtained_at=obtained_at)


def oauth_install(account: str, *, hub_id: int = 1234567, access: str = "access-0",
                  refresh: str | None = None, expires_at: float = NOW + 1800,
                  scopes: tuple[str, ...] = ("oauth", *MARKETING_EVENT_SCOPES),
                  updated_at: float = NOW) -> Install:
    return Install(platform_account=account, kind="oauth", hub_id=hub_id, scopes=scopes,
                   status="active", refresh_token=refresh or f"na1-refresh-{account}",
                   access_token=access, access_expires_at=expires_at, installed_at=NOW,
                   updated_at=updated_at)
