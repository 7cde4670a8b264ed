"""`connector hubspot ...`: one-off calls to HubSpot for the app (its eventDetailsUrl settings).

Exit codes: 0 done; 1 HubSpot or the network failed (5xx, timeout, unexpected answer, app
unknown); 2 configuration or usage (missing token/app id, a URL HubSpot would refuse);
3 HubSpot refused the credentials (401, 403); 4 HubSpot rejected the request (400).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar
from urllib.parse import urlsplit

import click
import httpx

from connector.cli.common import EXIT_FAILURE, reports_errors, settings_from
from connector.config import Settings
from connector.errors import ConfigError
from connector.hubspot import (
    AuthenticationError,
    HubSpotClient,
    HubSpotError,
    MissingScopesError,
    NotFoundError,
    ValidationError,
)

T = TypeVar("T")

EXIT_ACCESS = 3
EXIT_REJECTED = 4
TOKEN_SETTING = "CONNECTOR_HUBSPOT__ACCESS_TOKEN"
APP_ID_SETTING = "CONNECTOR_HUBSPOT__APP_ID"
SERVE_PATH = "/events/%s"


def _app_id(settings: Settings, override: int | None) -> int:
    app_id = override if override is not None else settings.hubspot.app_id
    if app_id is None:
        raise ConfigError(f"{APP_ID_SETTING} ([hubspot] app_id) or --app-id is required")
    return app_id


@contextmanager
def _client(settings: Settings) -> Iterator[HubSpotClient]:
    token = settings.hubspot.access_token
    if token is None or not token.get_secret_value():
        raise ConfigError(f"{TOKEN_SETTING} ([hubspot] access_token) is required: the app's "
                          "access token authorizes its settings")
    timeout = httpx.Timeout(settings.hubspot.request_timeout_seconds, connect=5.0)
    with HubSpotClient(token.get_secret_value(), base_url=settings.hubspot.base_url,
                       timeout=timeout) as client:
        yield client


def _call(app_id: int, fn: Callable[[], T]) -> T:
    """Run one HubSpot call; its failures become one line on stderr and an exit code."""
    try:
        return fn()
    except AuthenticationError as exc:
        _fail(EXIT_ACCESS, f"HubSpot rejected the access token ({exc}); set {TOKEN_SETTING} to "
                           "the app's private-app or OAuth access token")
    except MissingScopesError as exc:
        scopes = ", ".join(exc.required_scopes)
        needs = f" it needs {scopes}" if scopes else ""
        _fail(EXIT_ACCESS, f"HubSpot refused these credentials for the settings of app {app_id} "
                           f"({exc});{needs or ' use credentials of that app'}")
    except ValidationError as exc:
        details = "; ".join(e.message for e in exc.errors)
        _fail(EXIT_REJECTED, f"HubSpot rejected the request ({exc})"
                             + (f": {details}" if details else ""))
    except NotFoundError as exc:
        _fail(EXIT_FAILURE, f"HubSpot has no settings for app {app_id} ({exc})")
    except HubSpotError as exc:
        _fail(EXIT_FAILURE, f"HubSpot call failed: {exc}")
    raise AssertionError("unreachable")  # pragma: no cover


def _fail(code: int, message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def check_event_details_url(url: str) -> str:
    """The URL as HubSpot accepts it (https://host/...%s), else a click error (exit 2)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise click.BadParameter("must be a full https:// URL including the host (HubSpot "
                                 "calls only https)", param_hint="--url")
    if url.count("%s") != 1:
        raise click.BadParameter("must contain %s exactly once: HubSpot replaces it with the "
                                 "externalEventId", param_hint="--url")
    return url


@click.group("hubspot")
def hubspot_group() -> None:
    """Calls to HubSpot for the app: its eventDetailsUrl settings."""


@hubspot_group.command("register-settings")
@click.option("--url", required=True,
              help="eventDetailsUrl, e.g. https://connector.example.com/events/%s "
                   "(connector serve answers /events/<id>).")
@click.option("--app-id", type=int, default=None, help="App id  [default: hubspot.app_id]")
@click.pass_context
@reports_errors
def register_settings(ctx: click.Context, url: str, app_id: int | None) -> None:
    """Register the URL HubSpot calls for details of events it does not know (POST
    /marketing/v3/marketing-events/{appId}/settings).

    Exit codes: 1 HubSpot failed, 2 configuration, 3 credentials refused (401/403),
    4 request rejected (400).
    """
    check_event_details_url(url)
    settings = settings_from(ctx)
    target = _app_id(settings, app_id)
    if not urlsplit(url).path.endswith(SERVE_PATH):
        click.echo(f"warning: connector serve answers {SERVE_PATH}; make sure a proxy maps "
                   f"{url} there", err=True)
    with _client(settings) as client:
        response = _call(target, lambda: client.update_app_settings(target, url))
    click.echo(f"app {response.value.app_id}: eventDetailsUrl = {response.value.event_details_url}")


@hubspot_group.command("show-settings")
@click.option("--app-id", type=int, default=None, help="App id  [default: hubspot.app_id]")
@click.pass_context
@reports_errors
def show_settings(ctx: click.Context, app_id: int | None) -> None:
    """Print the eventDetailsUrl HubSpot has for the app (exit 1 when none is registered)."""
    settings = settings_from(ctx)
    target = _app_id(settings, app_id)
    with _client(settings) as client:
        response = _call(target, lambda: client.get_app_settings(target))
    click.echo(f"app {response.value.app_id}: eventDetailsUrl = {response.value.event_details_url}")
