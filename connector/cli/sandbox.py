"""`connector sandbox`: serve the local HubSpot Marketing Events emulator with uvicorn."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from connector.asgi_server import bind_socket, url_of
from connector.sandbox import (
    AccountConfig,
    AppConfig,
    FaultConfig,
    OAuthAppConfig,
    SandboxConfig,
    create_app,
)
from connector.sandbox.config import FIRST_EXTRA_HUB_ID
from connector.sandbox.server import uvicorn_server

_DEFAULT = SandboxConfig.default()
_APP = _DEFAULT.apps[0]
_OAUTH = _DEFAULT.oauth_apps[0]


def _limit(value: int) -> int | None:
    return None if value <= 0 else value


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=0, show_default=True, type=int, help="Port; 0 picks a free one.")
@click.option(
    "--window-limit",
    default=_DEFAULT.window_limit or 0,
    show_default=True,
    type=int,
    help="Requests per rolling 10 s per app; 0 = off.",
)
@click.option(
    "--daily-limit",
    default=_DEFAULT.daily_limit or 0,
    show_default=True,
    type=int,
    help="Requests per day per account; 0 = off.",
)
@click.option(
    "--persist",
    "persist",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite file that keeps state across restarts.",
)
@click.option("--app-id", default=_APP.app_id, show_default=True, type=int)
@click.option("--token", default=_APP.token, show_default=True, help="Bearer token of the app.")
@click.option("--client-secret", default=_APP.client_secret, help="Secret signing callbacks.")
@click.option(
    "--scopes",
    default=",".join(sorted(_APP.scopes)),
    show_default=True,
    help="Comma-separated scopes granted to the token.",
)
@click.option("--allow-http-callbacks", is_flag=True, help="Accept http:// eventDetailsUrl values.")
@click.option("--emit-nulls", is_flag=True, help="Render unset event fields as null (live style).")
@click.option("--fault-seed", default=0, type=int, help="Seed of the fault RNG.")
@click.option("--error-rate", default=0.0, type=float, help="Share of requests answered 5xx.")
@click.option("--error-status", default=500, type=int, help="Status of injected errors.")
@click.option("--latency-base", "--latency", "latency_base", default=0.0, type=float,
              help="Seconds every HubSpot request takes (the latency model's base).")
@click.option("--latency-per-input", default=0.0, type=float,
              help="Seconds more per item of a batch body's `inputs`.")
@click.option("--latency-jitter", default=0.0, type=float,
              help="Uniform spread of each delay, as a fraction of it (0-1; seeded by "
                   "--fault-seed).")
@click.option("--latency-operation", "latency_operations", multiple=True,
              metavar="OP=BASE[:PER_INPUT]",
              help="One operation's own cost (names as in the sandbox README); repeatable.")
@click.option("--drop-rate", default=0.0, type=float, help="Share of connections dropped.")
@click.option(
    "--batch-failure-rate",
    default=0.0,
    type=float,
    help="Share of batch inputs failing individually.",
)
@click.option("--outage", default=None, help="START_IN:DURATION seconds of 5xx outage.")
@click.option("--storm", default=None, help="START_IN:DURATION seconds of forced 429s.")
@click.option("--faults-json", default=None, help="Full fault settings as JSON (README table).")
@click.option("--accounts", "accounts", default=0, show_default=True, type=click.IntRange(0),
              help=f"HubSpot accounts to add besides the default one ({_DEFAULT.portal_id}); "
                   f"hub ids {FIRST_EXTRA_HUB_ID}, {FIRST_EXTRA_HUB_ID + 1}, ...")
@click.option("--oauth-app-id", default=_OAUTH.app_id, show_default=True, type=int,
              help="App id of the public (OAuth) app.")
@click.option("--oauth-client-id", default=_OAUTH.client_id, show_default=True,
              help="client_id of the OAuth app.")
@click.option("--oauth-client-secret", default=_OAUTH.client_secret,
              help="client_secret of the OAuth app (printed on start).")
@click.option("--oauth-redirect-uri", "oauth_redirect_uris", multiple=True,
              default=_OAUTH.redirect_uris, show_default=True,
              help="Registered redirect URL of the OAuth app; repeatable.")
@click.option("--oauth-scopes", default=",".join(sorted(_OAUTH.scopes)), show_default=True,
              help="Comma-separated scopes the OAuth app requires.")
@click.option("--oauth-optional-scopes", default="", show_default=True,
              help="Comma-separated optional scopes of the OAuth app.")
@click.option("--access-token-ttl", default=_DEFAULT.access_token_ttl_seconds,
              show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds an OAuth access token lives (expires_in).")
@click.option("--auth-code-ttl", default=_DEFAULT.auth_code_ttl_seconds, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Seconds an authorization code stays usable.")
@click.option("--oauth-window-limit", default=_DEFAULT.oauth_window_limit or 0,
              show_default=True, type=int,
              help="Requests per rolling 10 s per OAuth install (app, account); 0 = off.")
@click.option("--access-tokens-survive-uninstall", is_flag=True,
              help="Access tokens issued before an uninstall keep working until they expire.")
@click.option("--log-level", default="warning", show_default=True)
def sandbox_command(host: str, port: int, log_level: str, **options: Any) -> None:
    """Serve a local HubSpot Marketing Events sandbox and print its URL and token."""
    config = _config(options, _fault_data(options))
    app = config.apps[0]
    sock = bind_socket(host, port)
    url = url_of(sock)
    click.echo(f"HubSpot sandbox listening on {url}")
    click.echo(f"  base URL : {url}  (marketing events at {url}/marketing/v3/marketing-events)")
    click.echo(f"  token    : {app.token}  (app {app.app_id}; Authorization: Bearer <token>)")
    click.echo(f"  admin    : {url}/_sandbox/state, /_sandbox/counters, /_sandbox/faults")
    for oauth_app in config.oauth_apps:
        click.echo(
            f"  oauth    : client_id {oauth_app.client_id}  client_secret "
            f"{oauth_app.client_secret}  (app {oauth_app.app_id}; install at "
            f"{url}/oauth/authorize, tokens at {url}/oauth/v1/token)"
        )
    click.echo(f"  accounts : {_describe_accounts(config)}  (admin: {url}/_sandbox/installs)")
    server = uvicorn_server(create_app(config), log_level=log_level)
    server.run(sockets=[sock])


def _describe_accounts(config: SandboxConfig) -> str:
    """`62515 (default), 70000001, 70000002` (long lists shortened to first..last)."""
    default, *extra = config.hub_ids
    text = f"{default} (default)"
    if len(extra) > 4:
        return f"{text}, {extra[0]}..{extra[-1]} ({len(extra)} more)"
    return ", ".join([text, *map(str, extra)])


def _fault_data(options: Mapping[str, Any]) -> dict[str, object]:
    """The fault settings of the options, as FaultConfig.from_dict takes them."""
    data: dict[str, object] = {
        "seed": options["fault_seed"],
        "error_rate": options["error_rate"],
        "error_status": options["error_status"],
        "latency_model": _latency_data(options),
        "drop_rate": options["drop_rate"],
        "batch_input_failure_rate": options["batch_failure_rate"],
    }
    for name in ("outage", "storm"):
        raw = options[name]
        if raw:
            try:
                start_in, duration = (float(x) for x in raw.split(":", 1))
            except ValueError as exc:
                raise click.BadParameter(
                    "expected START_IN:DURATION", param_hint=f"--{name}"
                ) from exc
            data[name] = {"start_in": start_in, "duration": duration}
    if options["faults_json"]:
        data.update(json.loads(options["faults_json"]))
    return data


def _latency_data(options: Mapping[str, Any]) -> dict[str, object]:
    """The latency model of the options, as LatencyModel.from_dict takes it."""
    return {
        "base_seconds": options["latency_base"],
        "per_input_seconds": options["latency_per_input"],
        "jitter": options["latency_jitter"],
        "operations": dict(_operation_cost(spec) for spec in options["latency_operations"]),
    }


def _operation_cost(spec: str) -> tuple[str, dict[str, float]]:
    """`OP=BASE[:PER_INPUT]` -> (OP, its cost); an unset per-input cost keeps the global one."""
    name, _, costs = spec.partition("=")
    base, _, per_input = costs.partition(":")
    try:
        if not name.strip():
            raise ValueError("no operation name")
        cost = {"base_seconds": float(base)}
        if per_input:
            cost["per_input_seconds"] = float(per_input)
    except ValueError as exc:
        raise click.BadParameter(
            f"expected OP=BASE[:PER_INPUT], got {spec!r}", param_hint="--latency-operation"
        ) from exc
    return name.strip(), cost


def _config(options: Mapping[str, Any], fault_data: dict[str, object]) -> SandboxConfig:
    """The sandbox's configuration: the defaults with the options' app, limits and faults."""
    try:
        faults = FaultConfig.from_dict(fault_data, now=_DEFAULT.clock())
        app = AppConfig(
            app_id=options["app_id"],
            token=options["token"],
            client_secret=options["client_secret"],
            scopes=frozenset(s.strip() for s in options["scopes"].split(",") if s.strip()),
            name=_APP.name,
            developer_api_key=_APP.developer_api_key,
        )
        return _DEFAULT.replace(
            apps=(app,),
            window_limit=_limit(options["window_limit"]),
            daily_limit=_limit(options["daily_limit"]),
            persist_path=options["persist"],
            faults=faults,
            allow_insecure_callbacks=options["allow_http_callbacks"],
            emit_nulls=options["emit_nulls"],
            accounts=tuple(
                AccountConfig(FIRST_EXTRA_HUB_ID + i) for i in range(options["accounts"])
            ),
            oauth_apps=(_oauth_app(options),),
            access_token_ttl_seconds=options["access_token_ttl"],
            auth_code_ttl_seconds=options["auth_code_ttl"],
            oauth_window_limit=_limit(options["oauth_window_limit"]),
            access_tokens_survive_uninstall=options["access_tokens_survive_uninstall"],
        )
    except (ValueError, TypeError) as exc:
        raise click.UsageError(str(exc)) from exc


def _scope_set(text: str) -> frozenset[str]:
    return frozenset(s.strip() for s in text.split(",") if s.strip())


def _oauth_app(options: Mapping[str, Any]) -> OAuthAppConfig:
    """The public app of the options."""
    return OAuthAppConfig(
        app_id=options["oauth_app_id"],
        client_id=options["oauth_client_id"],
        client_secret=options["oauth_client_secret"],
        redirect_uris=tuple(options["oauth_redirect_uris"]),
        scopes=_scope_set(options["oauth_scopes"]),
        optional_scopes=_scope_set(options["oauth_optional_scopes"]),
        name=_OAUTH.name,
        developer_api_key=_OAUTH.developer_api_key,
    )
