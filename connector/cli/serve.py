"""`connector serve`: HubSpot's event-details callback, /healthz, /readyz and /metrics over HTTP."""

from __future__ import annotations

import logging
import threading

import click

from connector.asgi_server import bind_socket, url_of
from connector.cli.common import install_stop_handlers, reports_errors, settings_from
from connector.errors import ConfigError
from connector.serve import INSTALL_PATH, build_serve, run_serve
from connector.telemetry import Telemetry

log = logging.getLogger("connector.serve")


@click.command("serve")
@click.option("--host", default=None, help="Interface to bind  [default: serve.host, 127.0.0.1]")
@click.option("--port", default=None, type=int,
              help="Port; 0 picks a free one  [default: serve.port, 8080]")
@click.pass_context
@reports_errors
def serve_command(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Answer HubSpot's signed eventDetailsUrl requests (GET /events/{externalEventId}) from the
    webinars topic, with /healthz, /readyz and /metrics, until SIGTERM.

    Needs CONNECTOR_HUBSPOT__CLIENT_SECRET and CONNECTOR_HUBSPOT__APP_ID; register the URL with
    `connector hubspot register-settings --url https://<this host>/events/%s`.

    In app mode (CONNECTOR_HUBSPOT__MODE=app) it also runs the install flow: a customer opens
    the install link the webinar platform signed for their account (or `connector accounts
    install-link ACCOUNT` made); HubSpot sends them back to the path of
    CONNECTOR_HUBSPOT__REDIRECT_URL, and the install is written to the registry topic.
    """
    settings = settings_from(ctx)
    stop = threading.Event()
    telemetry = Telemetry.from_settings(settings.telemetry)
    try:
        served = build_serve(settings, stop, telemetry=telemetry)
        where = (host or settings.serve.host, settings.serve.port if port is None else port)
        try:
            sock = bind_socket(*where)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {where[0]}:{where[1]} ({exc.strerror}); "
                              "choose another --host/--port (CONNECTOR_SERVE__HOST/PORT)") from exc
        url = url_of(sock)
        click.echo(f"connector serve listening on {url}")
        click.echo(f"  event details : {url}/events/<externalEventId>"
                   "?appId=..&externalAccountId=..")
        click.echo(f"  health        : {url}/healthz, {url}/readyz"
                   + (f", {url}/metrics" if telemetry.has_prometheus else ""))
        if served.installs is not None:
            public = settings.serve.public_url or url
            click.echo(f"  install       : {public}{INSTALL_PATH}?account=..&expires=.."
                       "&signature=.. (signed by the platform; connector accounts install-link)")
            click.echo(f"  OAuth callback: {url}{served.installs.callback_path} "
                       f"(registered as {settings.hubspot.redirect_url})")
        install_stop_handlers(stop)  # restored by uvicorn after its own graceful shutdown
        log.info("serve.starting url=%s topic=%s mode=%s", url, settings.topics.webinars,
                 settings.hubspot.mode)
        try:
            run_serve(served, sock, stop)
        finally:
            served.close()  # idempotent: also when run_serve never started
            sock.close()
    finally:
        telemetry.shutdown()
