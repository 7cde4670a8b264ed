"""Who is calling: a request's credentials -> `Caller` (app, account, scopes), `ExpiredToken`, or
None (unknown: 401 INVALID_AUTHENTICATION).

Private-app tokens address the default account; OAuth access tokens the account they were
issued for; a developer key (`hapikey`, settings endpoints only) names an app, not an account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from connector.sandbox.directory import AnyApp

if TYPE_CHECKING:
    from connector.sandbox.runtime import Sandbox

PRIVATE = "private_app"
OAUTH = "oauth"


@dataclass(frozen=True)
class Caller:
    """The authenticated party of one request."""

    app_id: int
    name: str
    client_secret: str
    scopes: frozenset[str]
    hub_id: int
    kind: str = PRIVATE

    @property
    def is_oauth(self) -> bool:
        """Whether an OAuth access token authenticated the request."""
        return self.kind == OAUTH

    def has_scope(self, scope: str) -> bool:
        """Whether the credentials were granted `scope`."""
        return scope in self.scopes

    @classmethod
    def of_app(cls, app: AnyApp, hub_id: int) -> Caller:
        """A private app (its token) or any app (its developer key) in the default account."""
        return cls(app.app_id, app.name, app.client_secret, frozenset(app.scopes), hub_id)


@dataclass(frozen=True)
class ExpiredToken:
    """A known OAuth access token past its life."""

    expired_at: float


Authentication = Caller | ExpiredToken | None
AuthResolver = Callable[[Request, "Sandbox"], Authentication]


def bearer(request: Request) -> str | None:
    """The request's bearer token."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def caller_of_token(token: str, sandbox: Sandbox) -> Authentication:
    """A private-app token, else a live OAuth access token of an installed app."""
    private = sandbox.private_callers.get(token)
    if private is not None:
        return private
    access = sandbox.oauth.access_token(token)
    if access is None:
        return None
    if sandbox.oauth.is_expired(access):
        return ExpiredToken(access.expires_at)
    oauth_app = sandbox.oauth.app_by_id(access.grant.app_id)
    if oauth_app is None:  # pragma: no cover - tokens are only issued to configured apps
        return None
    grant = access.grant
    return Caller(
        grant.app_id,
        oauth_app.name,
        oauth_app.client_secret,
        frozenset(grant.scopes),
        grant.hub_id,
        OAUTH,
    )


def bearer_app(request: Request, sandbox: Sandbox) -> Authentication:
    """The caller of the request's bearer token."""
    token = bearer(request)
    return caller_of_token(token, sandbox) if token else None


def bearer_or_developer_key(request: Request, sandbox: Sandbox) -> Authentication:
    """Bearer token, or a developer API key in `hapikey` (settings endpoints)."""
    found = bearer_app(request, sandbox)
    if found is None and (key := request.query_params.get("hapikey")):
        app = sandbox.config.app_by_developer_key(key)
        if app is not None:
            return Caller.of_app(app, sandbox.config.portal_id)
    return found
