"""Sandbox settings: apps (tokens, scopes, secrets), limits, faults, persistence. All frozen.

`SandboxConfig.default()` is a one-app portal with HubSpot's Free/Starter limits
(100 requests per rolling 10 s per app, 250,000 per day per account).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector.clock import Clock
from connector.sandbox.faults import FaultConfig

if TYPE_CHECKING:
    import httpx

READ_SCOPE = "crm.objects.marketing_events.read"
WRITE_SCOPE = "crm.objects.marketing_events.write"
CONTACTS_READ_SCOPE = "crm.objects.contacts.read"
CONTACTS_WRITE_SCOPE = "crm.objects.contacts.write"
DEFAULT_SCOPES = frozenset({READ_SCOPE, WRITE_SCOPE, CONTACTS_READ_SCOPE, CONTACTS_WRITE_SCOPE})

#: Waits the given seconds without blocking the event loop (``asyncio.sleep``).
AsyncSleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class AppConfig:
    """One HubSpot app installed in the sandbox portal: its private-app token and secrets."""

    app_id: int
    token: str
    client_secret: str
    scopes: frozenset[str] = DEFAULT_SCOPES
    name: str = "Sandbox App"
    developer_api_key: str | None = None

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("AppConfig.token must not be empty")
        object.__setattr__(self, "scopes", frozenset(self.scopes))

    def __repr__(self) -> str:  # secrets never printed
        return (
            f"AppConfig(app_id={self.app_id}, name={self.name!r}, token='***', "
            f"client_secret='***', scopes={sorted(self.scopes)})"
        )

    def has_scope(self, scope: str) -> bool:
        """Whether the app's token was granted `scope`."""
        return scope in self.scopes


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

    def __post_init__(self) -> None:
        if not self.apps:
            raise ValueError("SandboxConfig.apps must name at least one app")
        ids = [a.app_id for a in self.apps]
        if len(set(ids)) != len(ids):
            raise ValueError("SandboxConfig.apps: app_id values must be unique")
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
        """One app (id 1001) holding the marketing-events and contacts read/write scopes."""
        app = AppConfig(
            app_id=1001,
            token="pat-na1-sandbox-0000-0000-000000001001",
            client_secret="sandbox-client-secret-1001",
            name="Sandbox App",
            developer_api_key="sandbox-developer-key-1001",
        )
        return cls(apps=(app,), **overrides)

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

    def app_by_developer_key(self, key: str) -> AppConfig | None:
        """The app whose developer API key (`hapikey`) this is."""
        for app in self.apps:
            if app.developer_api_key is not None and app.developer_api_key == key:
                return app
        return None

    def app_lookup(self) -> Mapping[str, AppConfig]:
        """token -> app, for the hot path."""
        return {a.token: a for a in self.apps}
