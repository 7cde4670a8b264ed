"""Sandbox settings: accounts, apps (tokens, scopes, secrets), OAuth, limits, faults,
persistence. All frozen.

`SandboxConfig.default()` is one account (62515) with one private app and one public (OAuth)
app, and HubSpot's Free/Starter limits (100 requests per rolling 10 s per private app, 250,000
per day per account; 110 per 10 s per OAuth install). `SandboxConfig.multi_account(n)` adds n
accounts (hub ids 70000001, 70000002, ...) the OAuth app can be installed into.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector.clock import Clock
from connector.sandbox.directory import (
    CONTACTS_READ_SCOPE,
    CONTACTS_WRITE_SCOPE,
    DEFAULT_SCOPES,
    READ_SCOPE,
    WRITE_SCOPE,
    AccountConfig,
    AnyApp,
    AppConfig,
    OAuthAppConfig,
)
from connector.sandbox.faults import FaultConfig

if TYPE_CHECKING:
    import httpx

__all__ = [
    "CONTACTS_READ_SCOPE",
    "CONTACTS_WRITE_SCOPE",
    "DEFAULT_SCOPES",
    "FIRST_EXTRA_HUB_ID",
    "READ_SCOPE",
    "WRITE_SCOPE",
    "AccountConfig",
    "AppConfig",
    "AsyncSleep",
    "OAuthAppConfig",
    "SandboxConfig",
]

#: Hub id of the first account `multi_account` adds.
FIRST_EXTRA_HUB_ID = 70_000_001

#: Waits the given seconds without blocking the event loop (``asyncio.sleep``).
AsyncSleep = Callable[[float], Awaitable[None]]

DEFAULT_OAUTH_APP = OAuthAppConfig(
    app_id=4004,
    client_id="5f0c2a8e-4b1d-4c3a-9e7f-000000004004",
    client_secret="9d3e7b1a-2c4f-4e6d-8a0b-000000004004",
    redirect_uris=("http://localhost:3000/oauth-callback",),
    name="Sandbox Public App",
    developer_api_key="sandbox-developer-key-4004",
)


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that shapes one sandbox instance.

    window_limit: requests per rolling `window_seconds` per app (None = off).
    daily_limit: requests per day per account/portal (None = off); the day rolls over at
      midnight UTC shifted by `daily_reset_utc_offset_hours` (the account's time zone).
    custom_property_names: names defined on the portal's marketing-event object; customProperties
      with other names are silently dropped (HubSpot behaviour). None = every name is defined.
    auto_create_lists: list associations to an unknown listId create the list (else 404).
    allow_insecure_callbacks: accept http:// eventDetailsUrl values (HubSpot requires https://).
    emit_nulls: render unset optional event fields as JSON null (as live HubSpot does) instead
      of omitting them (as the OpenAPI spec, which has no nullable fields, requires).
    clock: epoch seconds; sleep: used for injected latency. Both injectable for tests.
    callback_transport: httpx transport for the eventDetailsUrl callback (tests route it to an
      in-process ASGI app); None = real network.

    Accounts and OAuth:
    portal_id: the default account; private-app tokens (`apps`) address it.
    accounts: every HubSpot account (hub ids as ints or `AccountConfig`s); the default account
      is added first when missing. Empty = the default account alone.
    oauth_apps: public apps installable into any account through `/oauth/authorize`.
    auth_code_ttl_seconds: life of an authorization code (HubSpot: "a short window").
    access_token_ttl_seconds: life of an OAuth access token (`expires_in`, HubSpot: 1800).
    access_tokens_survive_uninstall: whether access tokens issued before an uninstall keep
      working until they expire (HubSpot: undocumented). False = they answer 401 at once.
    oauth_window_limit / oauth_window_seconds: rolling limit per (OAuth app, account), no daily
      limit (HubSpot: 110 per 10 s per installing account). None = off.
    """

    apps: tuple[AppConfig, ...]
    portal_id: int = 62515
    window_limit: int | None = 100
    window_seconds: float = 10.0
    daily_limit: int | None = 250_000
    daily_reset_utc_offset_hours: float = 0.0
    faults: FaultConfig = field(default_factory=FaultConfig)
    persist_path: Path | None = None
    custom_property_names: frozenset[str] | None = None
    auto_create_lists: bool = True
    allow_insecure_callbacks: bool = False
    emit_nulls: bool = False
    callback_timeout_seconds: float = 5.0
    request_log_size: int = 1000
    clock: Clock = time.time
    sleep: AsyncSleep = asyncio.sleep
    callback_transport: httpx.AsyncBaseTransport | None = None
    accounts: tuple[AccountConfig, ...] = ()
    oauth_apps: tuple[OAuthAppConfig, ...] = ()
    auth_code_ttl_seconds: float = 600.0
    access_token_ttl_seconds: float = 1800.0
    access_tokens_survive_uninstall: bool = False
    oauth_window_limit: int | None = 110
    oauth_window_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not self.apps:
            raise ValueError("SandboxConfig.apps must name at least one app")
        object.__setattr__(self, "accounts", _accounts(self.portal_id, self.accounts))
        object.__setattr__(self, "oauth_apps", tuple(self.oauth_apps))
        ids = [a.app_id for a in self.every_app()]
        if len(set(ids)) != len(ids):
            raise ValueError("SandboxConfig.apps: app_id values must be unique")
        client_ids = [a.client_id for a in self.oauth_apps]
        if len(set(client_ids)) != len(client_ids):
            raise ValueError("SandboxConfig.oauth_apps: client_id values must be unique")
        if self.oauth_window_limit is not None and self.oauth_window_limit < 1:
            raise ValueError("SandboxConfig.oauth_window_limit must be >= 1 or None")
        for name in ("auth_code_ttl_seconds", "access_token_ttl_seconds", "oauth_window_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SandboxConfig.{name} must be > 0")
        tokens = [a.token for a in self.apps]
        if len(set(tokens)) != len(tokens):
            raise ValueError("SandboxConfig.apps: tokens must be unique")
        if self.window_limit is not None and self.window_limit < 1:
            raise ValueError("SandboxConfig.window_limit must be >= 1 or None")
        if self.daily_limit is not None and self.daily_limit < 1:
            raise ValueError("SandboxConfig.daily_limit must be >= 1 or None")
        if self.window_seconds <= 0:
            raise ValueError("SandboxConfig.window_seconds must be > 0")
        if self.persist_path is not None and not isinstance(self.persist_path, Path):
            object.__setattr__(self, "persist_path", Path(self.persist_path))
        if self.custom_property_names is not None:
            object.__setattr__(self, "custom_property_names", frozenset(self.custom_property_names))

    @classmethod
    def default(cls, **overrides: Any) -> SandboxConfig:
        """One account (62515), one private app (id 1001) and one OAuth app (id 4004), both
        holding the marketing-events and contacts read/write scopes."""
        app = AppConfig(
            app_id=1001,
            token="pat-na1-sandbox-0000-0000-000000001001",
            client_secret="sandbox-client-secret-1001",
            name="Sandbox App",
            developer_api_key="sandbox-developer-key-1001",
        )
        overrides.setdefault("oauth_apps", (DEFAULT_OAUTH_APP,))
        return cls(apps=(app,), **overrides)

    @classmethod
    def multi_account(
        cls, count: int = 0, *, hub_ids: Iterable[int] = (), **overrides: Any
    ) -> SandboxConfig:
        """`default()` plus `count` accounts with hub ids 70000001, 70000002, ... (or the given
        `hub_ids`); the default account (portal_id, 62515) stays first."""
        extra = list(hub_ids) or [FIRST_EXTRA_HUB_ID + i for i in range(count)]
        return cls.default(accounts=tuple(AccountConfig(h) for h in extra), **overrides)

    def replace(self, **changes: Any) -> SandboxConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def app_by_token(self, token: str) -> AppConfig | None:
        """The app owning a bearer token."""
        for app in self.apps:
            if app.token == token:
                return app
        return None

    def app_by_id(self, app_id: int) -> AppConfig | None:
        """The app with this id."""
        for app in self.apps:
            if app.app_id == app_id:
                return app
        return None

    def every_app(self) -> tuple[AnyApp, ...]:
        """Private apps, then OAuth apps."""
        return (*self.apps, *self.oauth_apps)

    def any_app_by_id(self, app_id: int) -> AnyApp | None:
        """The private or OAuth app with this id."""
        for app in self.every_app():
            if app.app_id == app_id:
                return app
        return None

    def app_by_developer_key(self, key: str) -> AnyApp | None:
        """The app (private or OAuth) whose developer API key (`hapikey`) this is."""
        for app in self.every_app():
            if app.developer_api_key is not None and app.developer_api_key == key:
                return app
        return None

    def oauth_app_by_client_id(self, client_id: str) -> OAuthAppConfig | None:
        """The OAuth app with this client id."""
        for app in self.oauth_apps:
            if app.client_id == client_id:
                return app
        return None

    @property
    def hub_ids(self) -> tuple[int, ...]:
        """Every account's hub id, the default account first."""
        return tuple(a.hub_id for a in self.accounts)

    def app_lookup(self) -> Mapping[str, AppConfig]:
        """token -> app, for the hot path."""
        return {a.token: a for a in self.apps}


def _accounts(
    portal_id: int, accounts: Iterable[AccountConfig | int]
) -> tuple[AccountConfig, ...]:
    """The accounts as `AccountConfig`s, the default account (portal_id) first."""
    out = [a if isinstance(a, AccountConfig) else AccountConfig(int(a)) for a in accounts]
    if not any(a.hub_id == portal_id for a in out):
        out.insert(0, AccountConfig(portal_id))
    else:
        out.sort(key=lambda a: a.hub_id != portal_id)  # stable: default first, rest in order
    ids = [a.hub_id for a in out]
    if len(set(ids)) != len(ids):
        raise ValueError("SandboxConfig.accounts: hub ids must be unique")
    return tuple(out)
