"""``connector serve``: the HTTP endpoints HubSpot and operators call.

* ``GET /events/{externalEventId}?appId=&externalAccountId=`` — HubSpot's eventDetailsUrl
  callback (reference §3.13), signed with X-HubSpot-Signature-v3 (§7), answered from the webinar
  table (:mod:`.app`, :mod:`.details`);
* ``/healthz``, ``/readyz`` (table caught up, Kafka answering), ``/metrics`` (Prometheus);
* app mode: ``GET /hubspot/install?account=`` and the OAuth callback, the install flow that
  writes a customer's HubSpot install to the registry (:mod:`.install`, pages in :mod:`.page`).

:func:`create_serve_app` is the ASGI app; :class:`TableFeeder` keeps the table current in a
thread; :func:`build_serve` / :func:`run_serve` wire both from settings for the CLI.
"""

from connector.serve.app import create_serve_app, signed_uri
from connector.serve.details import DETAIL_FIELDS, event_details
from connector.serve.feeder import TableFeeder, is_caught_up
from connector.serve.install import (
    DEFAULT_CALLBACK_PATH,
    INSTALL_PATH,
    InstallFlow,
    LazyInstallWriter,
    callback_path,
    disabled_routes,
    install_flow_from,
)
from connector.serve.server import Served, app_credentials, build_serve, run_serve, serve_in_thread

__all__ = [
    "DEFAULT_CALLBACK_PATH",
    "DETAIL_FIELDS",
    "INSTALL_PATH",
    "InstallFlow",
    "LazyInstallWriter",
    "Served",
    "TableFeeder",
    "app_credentials",
    "build_serve",
    "callback_path",
    "create_serve_app",
    "disabled_routes",
    "event_details",
    "install_flow_from",
    "is_caught_up",
    "run_serve",
    "serve_in_thread",
    "signed_uri",
]
