"""The install page: `GET /oauth/authorize` and `/oauth/{hubId}/authorize` (reference: OAuth §1).

The sandbox's user approves at once and is sent to `redirect_uri?code=...&state=...`.
Which account installs: the `/oauth/{hubId}/authorize` path, else the sandbox-only query
`hub_id`, else the first account (the default one). A bad client_id, redirect_uri, account or
scope set is HubSpot's error page (HTML, 400), no redirect. The sandbox-only query `decline=1`
(or `error=access_denied`) plays a user who declines: `redirect_uri?error=access_denied&...`.
"""

from __future__ import annotations

import html
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from connector.sandbox.directory import OAUTH_SCOPE, AccountConfig, OAuthAppConfig
from connector.sandbox.errors import correlation_id
from connector.sandbox.routes.oauth import log_oauth
from connector.sandbox.runtime import Sandbox


class InstallRefused(Exception):
    """What the error page says."""


def _page(message: str) -> HTMLResponse:
    text = html.escape(message, quote=False)
    body = (
        "<!DOCTYPE html><html><head><title>HubSpot sandbox - install error</title></head>"
        f'<body><h1>Something went wrong</h1><p id="error">{text}</p></body></html>'
    )
    return HTMLResponse(body, status_code=400)


def _redirect(uri: str, params: dict[str, str]) -> RedirectResponse:
    separator = "&" if "?" in uri else "?"
    return RedirectResponse(f"{uri}{separator}{urlencode(params)}", status_code=302)


def _app(sb: Sandbox, request: Request) -> OAuthAppConfig:
    client_id = request.query_params.get("client_id")
    if not client_id:
        raise InstallRefused("The client_id parameter is missing.")
    app = sb.config.oauth_app_by_client_id(client_id)
    if app is None:
        raise InstallRefused(f"Unknown client_id {client_id}: no app has this client ID.")
    return app


def _redirect_uri(app: OAuthAppConfig, request: Request) -> str:
    uri = request.query_params.get("redirect_uri")
    if not uri:
        raise InstallRefused("The redirect_uri parameter is missing.")
    if uri not in app.redirect_uris:
        raise InstallRefused(f"The redirect_uri {uri} does not match the app's redirect URLs.")
    return uri


def _account(sb: Sandbox, request: Request) -> AccountConfig:
    raw = request.path_params.get("hubId", request.query_params.get("hub_id"))
    if raw is None or raw == "":
        return next(iter(sb.accounts.values())).config
    hub_id = int(raw) if str(raw).isdigit() else -1
    account = sb.account(hub_id)
    if account is None:
        raise InstallRefused(f"There is no HubSpot account {raw}.")
    return account.config


def _scopes(app: OAuthAppConfig, account: AccountConfig, request: Request) -> set[str]:
    """The scopes granted: every requested one, plus the optional ones the account has."""
    asked = set(request.query_params.get("scope", "").split())
    optional = set(request.query_params.get("optional_scope", "").split())
    if missing := app.scopes - asked:
        raise InstallRefused(
            f"The scope parameter lacks the app's required scopes: {' '.join(sorted(missing))}."
        )
    allowed = app.scopes | app.optional_scopes | {OAUTH_SCOPE}
    if unknown := (asked | optional) - allowed:
        raise InstallRefused(
            f"The app does not request these scopes in its settings: {' '.join(sorted(unknown))}."
        )
    if lacking := asked & account.unavailable_scopes:
        raise InstallRefused(
            f"Account {account.hub_id} does not have access to: {' '.join(sorted(lacking))}."
        )
    return asked | (optional - account.unavailable_scopes)


def _declined(request: Request) -> bool:
    query = request.query_params
    return query.get("decline", "").lower() in ("1", "true", "yes") or (
        query.get("error") == "access_denied"
    )


async def authorize(request: Request) -> Response:
    """Check the request, install the app, redirect with a fresh single-use code."""
    sb: Sandbox = request.app.state.sandbox
    cid = correlation_id()
    app: OAuthAppConfig | None = None
    account: AccountConfig | None = None
    state = request.query_params.get("state")
    try:
        app = _app(sb, request)
        redirect_uri = _redirect_uri(app, request)
        account = _account(sb, request)
        scopes = _scopes(app, account, request)
    except InstallRefused as exc:
        response: Response = _page(str(exc))
    else:
        params = {} if state is None else {"state": state}
        if _declined(request):
            response = _redirect(
                redirect_uri,
                {
                    "error": "access_denied",
                    "error_description": "The user declined to install the app.",
                    **params,
                },
            )
        else:
            code = sb.oauth.authorize(app, account.hub_id, redirect_uri, scopes)
            response = _redirect(redirect_uri, {"code": code, **params})
    log_oauth(
        request,
        "oauth.authorize",
        request.url.path,
        response.status_code,
        cid,
        app_id=app.app_id if app else None,
        hub_id=account.hub_id if account else None,
    )
    return response


def authorize_routes() -> list[BaseRoute]:
    """The install page, with and without an account in the path."""
    return [
        Route("/oauth/authorize", authorize, methods=["GET"]),
        Route("/oauth/{hubId:int}/authorize", authorize, methods=["GET"]),
    ]
