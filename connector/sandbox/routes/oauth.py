"""HubSpot's OAuth token API (reference: OAuth §2, §3): token exchange and refresh, v1 token
metadata, introspect, revoke, and the app's own uninstall (`/appinstalls/.../external-install`).

Token endpoints take form-encoded bodies (v1 also reads the query string, as its spec lists
query parameters). They run no fault injection and no rate limit; they are logged in the request
log with operation names `oauth.*` and templated paths (tokens never appear).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector.sandbox import oauth_errors as err
from connector.sandbox.directory import OAuthAppConfig
from connector.sandbox.errors import SandboxHTTPError, correlation_id
from connector.sandbox.oauth import AccessToken, Install, TokenSet
from connector.sandbox.oauth_errors import OAuthError
from connector.sandbox.pipeline import Ctx, no_content, operation
from connector.sandbox.runtime import Sandbox

TOKEN_VERSIONS = ("v1", "v3", "2026-03", "2026-09")
INTROSPECT_VERSIONS = ("v3", "2026-03", "2026-09")
REVOKE_VERSIONS = ("2026-03", "2026-09")
UNINSTALL_VERSIONS = ("v3", "2026-03")
FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store"}

Endpoint = Callable[[Request], Awaitable[Response]]


def _sandbox(request: Request) -> Sandbox:
    return request.app.state.sandbox


def log_oauth(
    request: Request,
    name: str,
    path: str,
    status: int,
    cid: str,
    *,
    app_id: int | None = None,
    hub_id: int | None = None,
) -> None:
    """Record an OAuth request in the request log (templated path: no tokens, no codes)."""
    sb = _sandbox(request)
    sb.log_request(
        {
            "time": sb.now(),
            "method": request.method,
            "path": path,
            "query": "",
            "operation": name,
            "appId": app_id,
            "hubId": hub_id,
            "auth": None,
            "correlationId": cid,
            "status": status,
        }
    )


async def _form(request: Request, *, with_query: bool) -> dict[str, str]:
    """The form body (400 invalid_request when the body is not form-encoded)."""
    fields: dict[str, str] = dict(request.query_params) if with_query else {}
    raw = await request.body()
    if raw:
        media = request.headers.get("content-type", FORM).split(";", 1)[0].strip().lower()
        if media != FORM:
            raise OAuthError(
                "invalid_request",
                f"the body must be {FORM}, not {media}",
                "BAD_REQUEST",
                "unsupported content type",
            )
        fields.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    return fields


def _require(fields: dict[str, str], name: str) -> str:
    value = fields.get(name)
    if not value:
        raise err.missing_parameter(name)
    return value


def _json(body: Any, status: int, cid: str) -> JSONResponse:
    return JSONResponse(
        body, status_code=status, headers={**NO_STORE, "X-HubSpot-Correlation-Id": cid}
    )


def _token_endpoint(version: str) -> Endpoint:
    path = f"/oauth/{version}/token"

    async def token(request: Request) -> Response:
        """POST /oauth/{version}/token: authorization_code or refresh_token grant."""
        sb = _sandbox(request)
        cid = correlation_id()
        app: OAuthAppConfig | None = None
        tokens: TokenSet | None = None
        try:
            fields = await _form(request, with_query=version == "v1")
            grant_type = _require(fields, "grant_type")
            if grant_type not in ("authorization_code", "refresh_token"):
                raise err.unsupported_grant_type(grant_type)
            app = sb.oauth.client(fields.get("client_id"), fields.get("client_secret"))
            if grant_type == "authorization_code":
                code = _require(fields, "code")
                tokens = sb.oauth.exchange_code(app, code, _require(fields, "redirect_uri"))
            else:
                tokens = sb.oauth.refresh(app, _require(fields, "refresh_token"))
            response = _json(tokens.body(), 200, cid)
        except OAuthError as exc:
            response = _json(exc.body(cid), exc.http_status, cid)
        hub_id = tokens.access.grant.hub_id if tokens else None
        log_oauth(
            request,
            "oauth.token",
            path,
            response.status_code,
            cid,
            app_id=app.app_id if app else None,
            hub_id=hub_id,
        )
        return response

    return token


def _not_found(kind: str, cid: str) -> JSONResponse:
    body = {
        "status": "error",
        "message": f"{kind} token not found, expired or revoked",
        "correlationId": cid,
        "category": "OBJECT_NOT_FOUND",
    }
    return _json(body, 404, cid)


def _described(sb: Sandbox, install_or_access: Install | AccessToken, token: str) -> dict[str, Any]:
    """Fields every token description shares."""
    grant = install_or_access.grant
    account = sb.accounts[grant.hub_id].config
    return {
        "token": token,
        "user": grant.user,
        "hub_domain": account.domain,
        "scopes": list(grant.scopes),
        "hub_id": grant.hub_id,
        "user_id": grant.user_id,
    }


async def access_token_info(request: Request) -> Response:
    """GET /oauth/v1/access-tokens/{token}: a live access token's metadata (404 otherwise)."""
    sb = _sandbox(request)
    cid = correlation_id()
    token = request.path_params["token"]
    access = sb.oauth.access_token(token)
    if access is None or sb.oauth.is_expired(access):
        response = _not_found("access", cid)
    else:
        body = {
            **_described(sb, access, token),
            "app_id": access.grant.app_id,
            "expires_in": sb.oauth.seconds_left(access),
            "token_type": "access",
        }
        response = _json(body, 200, cid)
    grant = access.grant if access else None
    log_oauth(
        request,
        "oauth.access_token_info",
        "/oauth/v1/access-tokens/{token}",
        response.status_code,
        cid,
        app_id=grant.app_id if grant else None,
        hub_id=grant.hub_id if grant else None,
    )
    return response


async def refresh_token_info(request: Request) -> Response:
    """GET /oauth/v1/refresh-tokens/{token}: metadata; DELETE: kill this refresh token only
    (204; access tokens and the install stay)."""
    sb = _sandbox(request)
    cid = correlation_id()
    token = request.path_params["token"]
    install = sb.oauth.install_of_refresh_token(token)
    if install is None:
        response: Response = _not_found("refresh", cid)
    elif request.method == "DELETE":
        sb.oauth.delete_refresh_token(token)
        response = Response(status_code=204, headers={"X-HubSpot-Correlation-Id": cid})
    else:
        app = sb.oauth.app_by_id(install.grant.app_id)
        body = {
            **_described(sb, install, token),
            "client_id": app.client_id if app else "",
            "token_type": "refresh",
        }
        response = _json(body, 200, cid)
    deleting = request.method == "DELETE"
    name = "oauth.refresh_token_delete" if deleting else "oauth.refresh_token_info"
    log_oauth(
        request,
        name,
        "/oauth/v1/refresh-tokens/{token}",
        response.status_code,
        cid,
        app_id=install.grant.app_id if install else None,
        hub_id=install.grant.hub_id if install else None,
    )
    return response


def _introspect_endpoint(version: str) -> Endpoint:
    path = f"/oauth/{version}/token/introspect"

    async def introspect(request: Request) -> Response:
        """POST .../token/introspect: {active: true, ...} for the app's live tokens, else
        {active: false} (200); bad client credentials are 400 invalid_client."""
        sb = _sandbox(request)
        cid = correlation_id()
        app: OAuthAppConfig | None = None
        hub_id: int | None = None
        try:
            fields = await _form(request, with_query=False)
            app = sb.oauth.client(fields.get("client_id"), fields.get("client_secret"))
            token = _require(fields, "token")
            body: dict[str, Any] = {"active": False}
            access = sb.oauth.access_token(token)
            install = sb.oauth.install_of_refresh_token(token)
            if access is not None and not sb.oauth.is_expired(access):
                if access.grant.app_id == app.app_id:
                    body = {
                        "active": True,
                        **_described(sb, access, token),
                        "app_id": app.app_id,
                        "client_id": app.client_id,
                        "expires_in": sb.oauth.seconds_left(access),
                        "token_use": "access_token",
                        "token_type": "Bearer",
                    }
                    hub_id = access.grant.hub_id
            elif install is not None and install.grant.app_id == app.app_id:
                body = {
                    "active": True,
                    **_described(sb, install, token),
                    "app_id": app.app_id,
                    "client_id": app.client_id,
                    "token_use": "refresh_token",
                    "token_type": "Bearer",
                }
                hub_id = install.grant.hub_id
            response = _json(body, 200, cid)
        except OAuthError as exc:
            response = _json(exc.body(cid), exc.http_status, cid)
        log_oauth(
            request,
            "oauth.introspect",
            path,
            response.status_code,
            cid,
            app_id=app.app_id if app else None,
            hub_id=hub_id,
        )
        return response

    return introspect


def _revoke_endpoint(version: str) -> Endpoint:
    path = f"/oauth/{version}/token/revoke"

    async def revoke(request: Request) -> Response:
        """POST .../token/revoke: always 200. The token (refresh: like DELETE v1; access: that
        token alone) dies only when the client credentials are its app's."""
        sb = _sandbox(request)
        cid = correlation_id()
        app_id: int | None = None
        try:
            fields = await _form(request, with_query=False)
            app = sb.oauth.client(fields.get("client_id"), fields.get("client_secret"))
            app_id = app.app_id
            token = fields.get("token") or ""
            access = sb.oauth.access_token(token)
            install = sb.oauth.install_of_refresh_token(token)
            owner = access.grant if access else install.grant if install else None
            if owner is not None and owner.app_id == app.app_id:
                sb.oauth.revoke(token)
        except OAuthError:
            pass  # observed: 200 whatever is sent
        response = Response(status_code=200, headers={"X-HubSpot-Correlation-Id": cid})
        log_oauth(request, "oauth.revoke", path, 200, cid, app_id=app_id)
        return response

    return revoke


async def external_uninstall(ctx: Ctx) -> Response:
    """DELETE /appinstalls/{v3,2026-03}/external-install with the install's access token:
    the app uninstalls itself from the account (204)."""
    if not ctx.app.is_oauth:
        raise SandboxHTTPError(
            403, "FORBIDDEN", "Only an OAuth access token of an installed app can uninstall it"
        )
    ctx.sandbox.oauth.uninstall(ctx.app.app_id, ctx.app.hub_id)
    return no_content()


def oauth_routes() -> list[BaseRoute]:
    """The OAuth token API routes."""
    routes: list[BaseRoute] = [
        Route(f"/oauth/{v}/token", _token_endpoint(v), methods=["POST"]) for v in TOKEN_VERSIONS
    ]
    routes += [
        Route(f"/oauth/{v}/token/introspect", _introspect_endpoint(v), methods=["POST"])
        for v in INTROSPECT_VERSIONS
    ]
    routes += [
        Route(f"/oauth/{v}/token/revoke", _revoke_endpoint(v), methods=["POST"])
        for v in REVOKE_VERSIONS
    ]
    routes += [
        Route("/oauth/v1/access-tokens/{token}", access_token_info, methods=["GET"]),
        Route(
            "/oauth/v1/refresh-tokens/{token}", refresh_token_info, methods=["GET", "DELETE"]
        ),
    ]
    uninstall = operation("appinstalls.uninstall", None, external_uninstall)
    routes += [
        Route(f"/appinstalls/{v}/external-install", uninstall, methods=["DELETE"])
        for v in UNINSTALL_VERSIONS
    ]
    return routes
