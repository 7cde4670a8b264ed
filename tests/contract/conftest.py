"""Contract-test fixtures: one sandbox served by uvicorn on loopback for the session, reset per
test, plus an in-process (ASGITransport) factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from connector.sandbox import AppConfig, SandboxApp, SandboxConfig, create_app
from connector.sandbox.config import READ_SCOPE
from connector.sandbox.server import RunningSandbox, serve_in_thread

OTHER_APP = AppConfig(
    app_id=2002,
    token="pat-na1-sandbox-other-app-2002",
    client_secret="sandbox-client-secret-2002",
    name="Other App",
)
READ_ONLY_APP = AppConfig(
    app_id=3003,
    token="pat-na1-sandbox-read-only-3003",
    client_secret="sandbox-client-secret-3003",
    scopes=frozenset({READ_SCOPE}),
    name="Read-only App",
)


@pytest.fixture(scope="session")
def sandbox_config() -> SandboxConfig:
    """The default app plus a second app and a read-only app; limits off (tests set their own)."""
    base = SandboxConfig.default()
    return base.replace(
        apps=(*base.apps, OTHER_APP, READ_ONLY_APP), window_limit=None, daily_limit=None
    )


@pytest.fixture(scope="session")
def sandbox_server(sandbox_config: SandboxConfig) -> Iterator[RunningSandbox]:
    """One uvicorn-served sandbox on a free loopback port for the whole session."""
    with serve_in_thread(create_app(sandbox_config)) as running:
        yield running


@pytest.fixture
def sandbox_url(sandbox_server: RunningSandbox) -> Iterator[str]:
    """The served sandbox's URL, reset (state, logs, limits, faults) before each test."""
    httpx.post(f"{sandbox_server.url}/_sandbox/reset", json={"faults": True}).raise_for_status()
    yield sandbox_server.url


@pytest.fixture
def sandbox_app_factory() -> Callable[..., SandboxApp]:
    """Build in-process sandbox apps: factory(**SandboxConfig overrides)."""

    def factory(config: SandboxConfig | None = None, **kwargs: Any) -> SandboxApp:
        return create_app(config or SandboxConfig.default(), **kwargs)

    return factory
