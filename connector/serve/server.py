"""Running ``connector serve``: the webinar-table feeder in a thread, uvicorn in the foreground.

:func:`build_serve` wires settings into a :class:`Served` (table, feeder, app and, in app mode,
the install flow); :func:`run_serve` runs it until ``stop`` is set or uvicorn is asked to exit
(SIGTERM/SIGINT, which uvicorn handles while it runs), then stops the feeder, closes the reader
and closes the install flow (its OAuth client, and the registry writer if an install created
it). :func:`serve_in_thread` serves any ASGI app on loopback for tests.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette

from connector import asgi_server
from connector.asgi_server import RunningServer, bind_socket
from connector.config import Settings
from connector.errors import ConfigError
from connector.kafka import ping
from connector.runtime.table import WebinarTable, WebinarTableReader
from connector.serde.catalog import WEBINAR_SCHEMA, SchemaCatalog
from connector.serde.registry import SchemaRegistry
from connector.serde.topic import TopicDecoder, TopicFormat, build_codec
from connector.serve.app import create_serve_app
from connector.serve.feeder import TableFeeder
from connector.serve.install import InstallFlow, disabled_routes, install_flow_from
from connector.telemetry import Telemetry

log = logging.getLogger("connector.serve")

CLIENT_SECRET_SETTING = "CONNECTOR_HUBSPOT__CLIENT_SECRET"
APP_ID_SETTING = "CONNECTOR_HUBSPOT__APP_ID"
PROBE_TIMEOUT_SECONDS = 5.0


def app_credentials(settings: Settings) -> tuple[str, int]:
    """(client secret, app id) of the HubSpot app, or a ConfigError naming what to set."""
    secret = settings.hubspot.client_secret
    missing = []
    if secret is None or not secret.get_secret_value():
        missing.append(f"{CLIENT_SECRET_SETTING} ([hubspot] client_secret)")
    if settings.hubspot.app_id is None:
        missing.append(f"{APP_ID_SETTING} ([hubspot] app_id)")
    if missing or secret is None or settings.hubspot.app_id is None:
        raise ConfigError(f"{' and '.join(missing)} required to verify HubSpot's signed "
                          "event-details requests")
    return secret.get_secret_value(), settings.hubspot.app_id


def webinar_decoder(settings: Settings) -> TopicDecoder:
    """The webinars topic's decoder, as the normalizer builds it."""
    serde = settings.serde
    catalog = SchemaCatalog.from_directory(serde.schemas_dir)
    registry = (SchemaRegistry.from_url(serde.schema_registry_url, serde.registry_config())
                if serde.schema_registry_url else None)
    return TopicDecoder(build_codec(TopicFormat(serde.webinars_framing, WEBINAR_SCHEMA),
                                    settings.topics.webinars, catalog, registry))


@dataclass
class Served:
    """What ``connector serve`` runs: the table, its feeder, the ASGI app answering from it and
    (app mode) the install flow."""

    table: WebinarTable
    feeder: TableFeeder
    app: Starlette
    installs: InstallFlow | None = field(default=None)

    def close(self) -> None:
        """Close the install flow's clients (the feeder closes its reader itself)."""
        if self.installs is not None:
            self.installs.close()


def build_serve(
    settings: Settings,
    stop: threading.Event,
    *,
    telemetry: Telemetry | None = None,
    clock: Callable[[], float] = time.time,
) -> Served:
    """Wire settings into the table feeder and the app (nothing started yet). In app mode
    (``hubspot.mode == "app"``) the install flow's routes are mounted; in private-app mode its
    paths answer 404."""
    client_secret, app_id = app_credentials(settings)
    decoder = webinar_decoder(settings)
    table = WebinarTable()

    def reader() -> WebinarTableReader:
        return WebinarTableReader(settings.kafka, settings.topics.webinars,
                                  decoder, table)

    def probe() -> Any:
        return ping(settings.kafka, timeout=PROBE_TIMEOUT_SECONDS)

    feeder = TableFeeder(reader, stop, probe=probe,
                         probe_seconds=settings.serve.kafka_check_seconds)
    installs = install_flow_from(settings, clock=clock) if settings.hubspot.mode == "app" else None
    app = create_serve_app(table.get, client_secret=client_secret, app_id=app_id, clock=clock,
                           telemetry=telemetry, ready=feeder.checks,
                           public_url=settings.serve.public_url,
                           extra_routes=installs.routes() if installs else disabled_routes())
    return Served(table, feeder, app, installs)


def uvicorn_server(app: Any, *, access_log: bool = False) -> uvicorn.Server:
    """uvicorn for the app; its loggers propagate to the connector's logging setup."""
    config = uvicorn.Config(app, log_config=None, access_log=access_log, ws="none",
                            lifespan="off", timeout_keep_alive=30)
    return uvicorn.Server(config)


def run_serve(served: Served, sock: socket.socket, stop: threading.Event, *,
              join_seconds: float = 10.0) -> None:
    """Feed the table in a thread and serve in this one until ``stop`` or uvicorn exits."""
    server = uvicorn_server(served.app)

    def exit_on_stop() -> None:
        stop.wait()
        server.should_exit = True

    served.feeder.start()
    threading.Thread(target=exit_on_stop, name="serve-stop", daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        stop.set()
        served.feeder.join(join_seconds)
        served.close()
        log.info("serve.stopped webinars=%s", len(served.table))


@contextlib.contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0, *,
                    startup_timeout: float = 10.0) -> Iterator[RunningServer]:
    """Serve ``app`` with uvicorn in a daemon thread; yields once it accepts connections."""
    with asgi_server.serve_in_thread(uvicorn_server(app), bind_socket(host, port),
                                     name="serve-uvicorn",
                                     startup_timeout=startup_timeout) as running:
        yield running
