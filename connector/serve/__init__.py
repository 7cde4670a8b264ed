"""``connector serve``: the HTTP endpoints HubSpot and operators call.

* ``GET /events/{externalEventId}?appId=&externalAccountId=`` — HubSpot's eventDetailsUrl
  callback (reference §3.13), signed with X-HubSpot-Signature-v3 (§7), answered from the webinar
  table (:mod:`.app`, :mod:`.details`);
* ``/healthz``, ``/readyz`` (table caught up, Kafka answering), ``/metrics`` (Prometheus).

:func:`create_serve_app` is the ASGI app; :class:`TableFeeder` keeps the table current in a
thread; :func:`build_serve` / :func:`run_serve` wire both from settings for the CLI.
"""

from connector.serve.app import create_serve_app, signed_uri
from connector.serve.details import DETAIL_FIELDS, event_details
from connector.serve.feeder import TableFeeder, is_caught_up
from connector.serve.server import Served, app_credentials, build_serve, run_serve, serve_in_thread

__all__ = [
    "DETAIL_FIELDS",
    "Served",
    "TableFeeder",
    "app_credentials",
    "build_serve",
    "create_serve_app",
    "event_details",
    "is_caught_up",
    "run_serve",
    "serve_in_thread",
    "signed_uri",
]
