"""A faithful local emulator of HubSpot's Marketing Events API (ASGI, Starlette).

    from connector.sandbox import create_app, SandboxConfig
    app = create_app(SandboxConfig.default())      # httpx.ASGITransport(app=app) works

See connector/sandbox/README.md for the fault table, accounts and OAuth, admin endpoints and
deviations.
"""

from connector.sandbox.app import ConnectionDropped, SandboxApp, create_app
from connector.sandbox.config import AccountConfig, AppConfig, OAuthAppConfig, SandboxConfig
from connector.sandbox.faults import FaultConfig, Window
from connector.sandbox.latency import LatencyModel, LatencyOverride

__all__ = [
    "AccountConfig",
    "AppConfig",
    "ConnectionDropped",
    "FaultConfig",
    "LatencyModel",
    "LatencyOverride",
    "OAuthAppConfig",
    "SandboxApp",
    "SandboxConfig",
    "Window",
    "create_app",
]
