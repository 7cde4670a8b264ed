"""`/_sandbox/accounts`, `/_sandbox/installs`, `/_sandbox/tokens/expire`: inspect and steer the
accounts and OAuth installs. No tokens are ever shown."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector.sandbox.runtime import Sandbox


def _sandbox(request: Request) -> Sandbox:
    return request.app.state.sandbox


async def accounts(request: Request) -> Response:
    """Every account: hub id, domain, user, whether it is the default (private-app) account."""
    sb = _sandbox(request)
    return JSONResponse(
        [
            {
                "hubId": a.hub_id,
                "domain": a.config.domain,
                "user": a.config.user,
                "userId": a.config.user_id,
                "default": a is sb.default_account,
                "events": len(a.store.events),
            }
            for a in sb.accounts.values()
        ]
    )


async def installs(request: Request) -> Response:
    """Every install (hub, app, scopes, status); `?hub_id=` / `?app_id=` filter."""
    rows = [i.as_admin() for i in _sandbox(request).oauth.installs.values()]
    for name, key in (("hub_id", "hubId"), ("app_id", "appId")):
        raw = request.query_params.get(name)
        if raw is not None:
            rows = [r for r in rows if str(r[key]) == raw]
    return JSONResponse(rows)


async def _app_id(request: Request, sb: Sandbox) -> int | str:
    """`app_id` from the query or JSON body; default: the only OAuth app. A str is an error."""
    raw: object = request.query_params.get("app_id")
    if raw is None and (body := await request.body()):
        try:
            data = json.loads(body)
        except ValueError:
            return "body must be JSON"
        raw = data.get("app_id") if isinstance(data, dict) else None
    if raw is None:
        if len(sb.config.oauth_apps) != 1:
            return "app_id is required when there is not exactly one OAuth app"
        return sb.config.oauth_apps[0].app_id
    try:
        return int(str(raw))
    except ValueError:
        return f"app_id must be an integer, got {raw!r}"


async def uninstall(request: Request) -> Response:
    """POST /_sandbox/installs/{hubId}/uninstall [app_id]: an admin uninstalls the app from
    the account. Refresh tokens die; access tokens too unless configured to survive."""
    sb = _sandbox(request)
    app_id = await _app_id(request, sb)
    if isinstance(app_id, str):
        return JSONResponse({"error": app_id}, status_code=400)
    hub_id = int(request.path_params["hubId"])
    install = sb.oauth.uninstall(app_id, hub_id)
    if install is None:
        return JSONResponse(
            {"error": f"app {app_id} is not installed in account {hub_id}"}, status_code=404
        )
    return JSONResponse(install.as_admin())


async def expire_tokens(request: Request) -> Response:
    """POST /_sandbox/tokens/expire: every live access token expires now (refresh tokens stay),
    so a client must refresh without anyone waiting."""
    return JSONResponse({"expired": _sandbox(request).oauth.expire_access_tokens()})


def install_routes(prefix: str = "/_sandbox") -> list[BaseRoute]:
    """The account and install admin routes."""
    return [
        Route(f"{prefix}/accounts", accounts, methods=["GET"]),
        Route(f"{prefix}/installs", installs, methods=["GET"]),
        Route(f"{prefix}/installs/{{hubId:int}}/uninstall", uninstall, methods=["POST"]),
        Route(f"{prefix}/tokens/expire", expire_tokens, methods=["POST"]),
    ]
